"""The dashboard's pages: server-rendered HTML (Jinja2) with a small script (``live.js``)
that swaps in fresh fragments when the run's event stream says something happened."""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable, Mapping
from importlib import resources

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response
from jinja2 import Environment, PackageLoader, select_autoescape

from ideamine import service_api
from ideamine.dashboard import views
from ideamine.engine.states import RunStatus
from ideamine.errors import RunNotFoundError
from ideamine.stores.base import Store
from ideamine.stores.dossiers import DossierStore

__all__ = ["StoreSource", "dashboard_router"]

StoreSource = Callable[[], Awaitable[Store]]
STATIC = {"style.css": "text/css", "live.js": "text/javascript"}
NO_GATE = "No gate has judged this run yet"
NO_QAV = (
    "The Q/A/V quality loop is not built in this version, so no questions were asked, "
    "answered or validated; the run goes on with the assumptions intake recorded (below)."
)
FORMATS = (("html", "HTML"), ("pdf", "PDF"), ("md", "Markdown"), ("json", "JSON"))


def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("ideamine.dashboard", "templates"),
        autoescape=select_autoescape(default=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["duration"] = views.duration
    env.filters["pretty"] = _pretty
    return env


def _pretty(value: object) -> str:
    plain = dict(value) if isinstance(value, Mapping) else value
    return json.dumps(plain, indent=2, ensure_ascii=False, sort_keys=True, default=str)


def dashboard_router(store: StoreSource) -> APIRouter:
    """The dashboard's routes under ``/dashboard``."""
    router = APIRouter(prefix="/dashboard", include_in_schema=False)
    env = _environment()

    def page(name: str, context: Mapping[str, object], status: int = 200) -> HTMLResponse:
        return HTMLResponse(env.get_template(name).render(**context), status_code=status)

    @router.get("/")
    async def runs_page(status: RunStatus | None = None) -> HTMLResponse:
        return page("runs.html", await _runs_context(await store(), status))

    @router.get("/fragments/runs")
    async def runs_fragment(status: RunStatus | None = None) -> HTMLResponse:
        return page("_runs_table.html", await _runs_context(await store(), status))

    @router.get("/runs/{run_id}")
    async def run_page(run_id: str) -> HTMLResponse:
        source = await store()
        try:
            context = await _run_context(source, run_id)
        except RunNotFoundError:
            return page("missing.html", {"run": None, "what": f"run {run_id}"}, 404)
        context["assumptions"] = await service_api.assumptions(source, run_id)
        context["artifacts"] = sorted(
            await source.artifacts(run_id), key=lambda a: (a.phase, a.type, -a.version)
        )
        return page("run.html", context)

    @router.get("/runs/{run_id}/live")
    async def run_fragment(run_id: str) -> HTMLResponse:
        return page("_live.html", await _run_context(await store(), run_id))

    @router.get("/runs/{run_id}/artifacts/{artifact_id}")
    async def artifact_page(run_id: str, artifact_id: str) -> HTMLResponse:
        source = await store()
        run = await source.get_run(run_id)
        for record in await source.artifacts(run_id):
            if record.id == artifact_id:
                content = await source.blob(record.content_hash)
                return page("artifact.html", {"run": run, "artifact": record, "content": content})
        return page("missing.html", {"run": run, "what": f"artifact {artifact_id}"}, 404)

    @router.get("/static/{name}")
    async def static(name: str) -> Response:
        if name not in STATIC:
            return Response("not found", status_code=404)
        data = resources.files("ideamine.dashboard").joinpath("static", name).read_bytes()
        return Response(data, media_type=STATIC[name], headers={"Cache-Control": "max-age=60"})

    return router


async def _runs_context(store: Store, status: RunStatus | None) -> dict[str, object]:
    runs = await service_api.find_runs(store, status=status, project=None, limit=100)
    details = [await service_api.run_detail(store, r.id) for r in runs]
    return {"details": details, "status": status, "statuses": list(RunStatus)}


async def _run_context(store: Store, run_id: str) -> dict[str, object]:
    now = time.time()
    detail = await service_api.run_detail(store, run_id, now=now)
    bars, span = views.gantt(detail, now)
    pipeline = await service_api.pinned_pipeline(store, detail.run)
    verdicts = await DossierStore(store).gate_evaluations(run_id)
    errors = await service_api.error_events(store, run_id)
    qav = [(spec.name, spec.qav) for spec in pipeline.phases] if pipeline else []
    return {
        "run": detail.run,
        "detail": detail,
        "bars": bars,
        "span": span,
        "counts": views.status_counts(detail),
        "budgets": views.budget_rows(detail),
        "gates": views.gate_rows(pipeline, verdicts),
        "judged": bool(verdicts),
        "no_gate": NO_GATE,
        "errors": views.error_rows(errors),
        "qav": qav,
        "no_qav": NO_QAV,
        "formats": FORMATS,
        "live": not detail.run.status.finished,
        "elapsed": views.duration(span),
    }
