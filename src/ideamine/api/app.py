"""The FastAPI application of ``ideamine serve``: routes, auth and error mapping, with the
store opened and the background drives stopped by the app's lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from importlib.metadata import version

from fastapi import APIRouter, Depends, FastAPI
from fastapi.responses import RedirectResponse

from ideamine.api.auth import TokenGuard, install_login
from ideamine.api.content import content_router, dossier_router
from ideamine.api.events import events_router
from ideamine.api.ops import ops_router
from ideamine.api.problems import install_handlers
from ideamine.api.runs import runs_router, signals_router
from ideamine.api.state import ServerState

__all__ = ["create_app"]

DESCRIPTION = """IdeaMine turns a software idea into reviewed product artifacts, durably.

This API reads and writes the same store as the `ideamine` CLI and its workers, so runs
started anywhere appear here live. Errors are JSON: `{"error", "message", "hint", …}`;
see docs/api.md."""


def create_app(state: ServerState, *, extra: Sequence[APIRouter] = ()) -> FastAPI:
    """The app over ``state``; ``extra`` routers (the dashboard) share its auth."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await state.start()
        try:
            yield
        finally:
            await state.stop()

    guard = TokenGuard(state.settings.token)
    app = FastAPI(
        title="IdeaMine",
        version=version("ideamine"),
        description=DESCRIPTION,
        lifespan=lifespan,
        dependencies=[Depends(guard)],
    )
    install_handlers(app)
    install_login(app, guard)
    for router in (
        ops_router(state),
        runs_router(state),
        signals_router(state),
        events_router(state),
        content_router(state),
        dossier_router(state),
        *extra,
    ):
        app.include_router(router)

    @app.get("/", include_in_schema=False)
    async def home() -> RedirectResponse:
        return RedirectResponse("/dashboard/")

    return app
