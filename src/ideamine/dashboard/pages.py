"""The dashboard's pages: server-rendered HTML (Jinja2) with a small script (``live.js``)
that swaps in fresh fragments when the run's event stream says something happened, and sends
the forms (answers, waivers) to the HTTP API as JSON."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from importlib import resources

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response
from jinja2 import Environment, PackageLoader, select_autoescape

from ideamine import service, service_api, service_quality
from ideamine.config.model import PipelineSpec
from ideamine.dashboard import quality, views
from ideamine.engine.states import RunStatus
from ideamine.errors import RunNotFoundError
from ideamine.stores.base import Store
from ideamine.stores.dossiers import DossierStore
from ideamine.stores.knowledge import Knowledge, QuestionRecord
from ideamine.stores.records import PhaseRecord

__all__ = ["StoreSource", "dashboard_router"]

StoreSource = Callable[[], Awaitable[Store]]
STATIC = {"style.css": "text/css", "live.js": "text/javascript"}
NO_GATE = "No gate has judged this run yet: each phase is judged once its agents finish"
FORMATS = (("html", "HTML"), ("pdf", "PDF"), ("md", "Markdown"), ("json", "JSON"))
WAIVER_DAYS = 30  # the expiry a waiver form suggests


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
            # read first: the page shows at least this much, so its stream starts after it
            seen = await service.all_events(source, run_id)
            context = await _run_context(source, run_id)
        except RunNotFoundError:
            return page("missing.html", {"run": None, "what": f"run {run_id}"}, 404)
        context |= await _quality_context(source, run_id)
        context["after"] = seen[-1].id if seen else 0
        context["artifacts"] = sorted(
            await source.artifacts(run_id), key=lambda a: (a.phase, a.type, -a.version)
        )
        return page("run.html", context)

    @router.get("/runs/{run_id}/live")
    async def run_fragment(run_id: str) -> HTMLResponse:
        return page("_live.html", await _run_context(await store(), run_id))

    @router.get("/runs/{run_id}/attention")
    async def attention_fragment(run_id: str) -> HTMLResponse:
        return page("_attention.html", await _quality_context(await store(), run_id))

    @router.get("/runs/{run_id}/quality")
    async def quality_fragment(run_id: str) -> HTMLResponse:
        return page("_quality.html", await _quality_context(await store(), run_id))

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
    """The live fragment: status cards, Gantt, gate readiness, budget burn, errors."""
    now = time.time()
    detail = await service_api.run_detail(store, run_id, now=now)
    bars, span = views.gantt(detail, now)
    pipeline = await service_api.pinned_pipeline(store, detail.run)
    questions = await Knowledge(store).questions(run_id)
    gates = await _gates(store, run_id, pipeline, detail.phases, questions)
    errors = await service_api.error_events(store, run_id)
    return {
        "run": detail.run,
        "detail": detail,
        "bars": bars,
        "span": span,
        "counts": views.status_counts(detail),
        "budgets": views.budget_rows(detail),
        "gates": gates,
        "judged": any(g.verdict for g in gates),
        "no_gate": NO_GATE,
        "errors": views.error_rows(errors),
        "formats": FORMATS,
        "live": not detail.run.status.finished,
        "elapsed": views.duration(span),
    }


async def _gates(
    store: Store,
    run_id: str,
    pipeline: PipelineSpec | None,
    phases: Sequence[PhaseRecord],
    questions: Sequence[QuestionRecord],
) -> list[quality.GateRow]:
    verdicts = await DossierStore(store).gate_evaluations(run_id)
    history = await service_quality.gate_history(store, run_id)
    asking = sorted(quality.open_questions(questions))
    return quality.gate_rows(pipeline, verdicts, history, phases, asking)


async def _quality_context(store: Store, run_id: str) -> dict[str, object]:
    """What needs a person (open questions, failed gates), Q/A/V coverage, assumptions."""
    run, phases, _ = await store.run_rows(run_id)
    pipeline = await service_api.pinned_pipeline(store, run)
    knowledge = Knowledge(store)
    questions = await knowledge.questions(run_id)
    made = await knowledge.assumptions(run_id)
    frames = Counter(b.phase for b in await knowledge.bindings(run_id))
    verdicts = await DossierStore(store).gate_evaluations(run_id)
    order = [s.name for s in pipeline.phases] if pipeline else sorted({p.phase for p in phases})
    rows = quality.qav_rows(pipeline, order, questions, frames, made, verdicts)
    asking = quality.open_questions(questions)
    gates = await _gates(store, run_id, pipeline, phases, questions)
    waivable = [g for g in gates if g.waivable]
    today = datetime.now(UTC).date()
    return {
        "run": run,
        "qav_rows": rows,
        "qav_total": quality.qav_total(rows),
        "asking": asking,
        "waivable": waivable,
        "attention": run.status is RunStatus.NEEDS_ATTENTION or bool(asking or waivable),
        "tomorrow": (today + timedelta(days=1)).isoformat(),
        "expiry": (today + timedelta(days=WAIVER_DAYS)).isoformat(),
        "assumptions": await service_api.assumptions(store, run_id),
        "qav_assumptions": quality.assumption_groups(
            made, questions, await knowledge.answers(run_id)
        ),
    }
