"""``ideamine serve``: the HTTP API, the dashboard and ``/metrics`` in one process."""

from __future__ import annotations

import socket
from pathlib import Path
from types import FrameType

import click
import uvicorn

from ideamine import service
from ideamine.api import ServerSettings, ServerState, create_app
from ideamine.api.auth import TOKEN_ENV, check_bind
from ideamine.cli.app import STORE_OPTION, err, escape, runs_async
from ideamine.dashboard import dashboard_router
from ideamine.observability.tracing import configure_from_env
from ideamine.runtime.runner import DEFAULT_CONCURRENCY

__all__ = ["STOP_SECONDS", "build_app", "serve"]

STOP_SECONDS = 5  # how long a stopping server waits for requests under way


class _Server(uvicorn.Server):
    """uvicorn's server over ``state``: on SIGTERM or Ctrl-C it first tells the app's event
    streams to end (uvicorn waits for open requests before the app's shutdown, and a live
    run's stream would otherwise be cut after ``STOP_SECONDS`` with a traceback), and says so
    once it has shut down (uvicorn then raises the signal again, so a supervisor sees it and
    code after ``serve()`` never runs)."""

    def __init__(self, config: uvicorn.Config, state: ServerState, stopped: str) -> None:
        super().__init__(config)
        self._state = state
        self._stopped = stopped

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self._state.stopping = True
        super().handle_exit(sig, frame)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        await super().shutdown(sockets)  # the app's lifespan has stopped its runs by now
        err.print(self._stopped)


def build_app(state: ServerState) -> object:
    """The API with the dashboard mounted, over one shared state."""
    return create_app(state, extra=[dashboard_router(state.store)])


@click.command()
@STORE_OPTION
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True)
@click.option(
    "--token",
    envvar=TOKEN_ENV,
    metavar="TOKEN",
    default=None,
    help=f"Bearer token every request must carry (${TOKEN_ENV}); required beyond loopback.",
)
@click.option(
    "--config",
    "config_dir",
    metavar="DIR",
    type=click.Path(path_type=Path),
    default=None,
    help="Folder overlaying the shipped config for runs created here ($IDEAMINE_CONFIG).",
)
@click.option(
    "--concurrency",
    type=click.IntRange(1, 1024),
    default=DEFAULT_CONCURRENCY,
    show_default=True,
    help="Tasks each run driven by this server runs at once.",
)
@click.option(
    "--trace",
    type=click.Choice(["console", "none"]),
    default=None,
    help="Print spans to stderr (default: $OTEL_TRACES_EXPORTER, else off).",
)
@runs_async
async def serve(
    store_ref: str | None,
    host: str,
    port: int,
    token: str | None,
    config_dir: Path | None,
    concurrency: int,
    trace: str | None,
) -> None:
    """Serve the HTTP API (OpenAPI at /openapi.json), the dashboard and /metrics."""
    token = token or None
    check_bind(host, token)
    service.check_store(store_ref)  # the app opens it later, retrying what a retry can fix
    configure_from_env(trace)
    settings = ServerSettings(
        store_ref=store_ref,
        host=host,
        port=port,
        token=token,
        config_dir=service.config_folder(config_dir),
        concurrency=concurrency,
    )
    state = ServerState(settings)
    app = build_app(state)
    shown = f"[{host}]" if ":" in host else host
    err.print(
        f"serving http://{shown}:{port}/ (dashboard /dashboard/, API docs /docs, "
        f"metrics /metrics){' with token auth' if token else ''}; Ctrl-C stops"
    )
    config = uvicorn.Config(
        app,  # type: ignore[arg-type]
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        lifespan="on",
        # Requests still under way this long after SIGTERM or Ctrl-C are cut (event streams
        # end by themselves within a poll: `_Server.handle_exit`).
        timeout_graceful_shutdown=STOP_SECONDS,
    )
    await _Server(config, state, f"server on {escape(shown)}:{port} stopped").serve()
