"""Runs: create (202 + id), list and filter, get with phases and budgets, pause, resume,
cancel, retry a phase, gates and waivers."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Query
from fastapi.responses import JSONResponse

from ideamine import service, service_api
from ideamine.api.bodies import CancelBody, RunBody, WaiveBody
from ideamine.api.problems import ApiProblem
from ideamine.api.state import ServerState
from ideamine.api.views import run_detail_view, run_links, run_list_view
from ideamine.cli.views import run_summary
from ideamine.engine.states import RunStatus
from ideamine.stores.dossiers import DossierStore

__all__ = ["ERRORS", "runs_router", "signals_router"]

ERRORS: dict[int | str, dict[str, object]] = {
    404: {"description": "No such run (or phase, artifact, question)."},
    409: {"description": "The run cannot do that in its current state."},
    422: {"description": "A field of the request is invalid; `fields` names it."},
    503: {"description": "The store is unreachable; `hint` says what to check."},
}
Detach = Annotated[
    bool, Query(description="Leave the run to `ideamine worker` processes instead of this server.")
]


def runs_router(state: ServerState) -> APIRouter:
    """Create, list and read runs."""
    router = APIRouter(prefix="/runs", tags=["runs"], responses=ERRORS)

    @router.post("", status_code=202, summary="Create a run")
    async def create_run(body: RunBody, detach: Detach = False) -> JSONResponse:
        """Store a new run pinned to the server's configuration; this server drives it in
        the background unless ``detach=true``."""
        store = await state.store()
        pipeline = state.pipeline()
        run = await service_api.submit_run(
            store, pipeline, body.to_value(), config_dir=state.settings.config_dir
        )
        if not detach:
            state.drive(store, run.id, pipeline.with_model(body.model))
        view = {**run_summary(run), "driven_by": "workers" if detach else "server"}
        return JSONResponse({**view, "links": run_links(run.id)}, status_code=202)

    @router.get("", summary="List runs")
    async def list_runs(
        status: RunStatus | None = None,
        project: Annotated[str | None, Query(max_length=200)] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
    ) -> list[dict[str, object]]:
        """The newest runs first, with progress and cost; filters look at the newest
        1000 runs."""
        store = await state.store()
        runs = await service_api.find_runs(store, status=status, project=project, limit=limit)
        return [run_list_view(await service_api.run_detail(store, r.id)) for r in runs]

    @router.get("/{run_id}", summary="Get a run with its phases and budgets")
    async def get_run(run_id: str) -> dict[str, object]:
        return run_detail_view(await service_api.run_detail(await state.store(), run_id))

    @router.get("/{run_id}/phases", summary="Every phase attempt of a run")
    async def phases(run_id: str) -> list[dict[str, object]]:
        _, records, _ = await (await state.store()).run_rows(run_id)
        return [
            {
                "phase": p.phase,
                "attempt": p.attempt,
                "status": p.status.value,
                "started_at": p.started_at,
                "finished_at": p.finished_at,
                "error": p.error,
            }
            for p in sorted(records, key=lambda p: (p.started_at, p.attempt))
        ]

    return router


def signals_router(state: ServerState) -> APIRouter:
    """Pause, cancel, resume, retry a phase, gates and waivers of a run."""
    router = APIRouter(prefix="/runs", tags=["runs"], responses=ERRORS)

    @router.post("/{run_id}/pause", summary="Pause a running run")
    async def pause(run_id: str) -> dict[str, object]:
        return run_summary(await service_api.pause_run(await state.store(), run_id))

    @router.post("/{run_id}/cancel", summary="Cancel a run for good")
    async def cancel(
        run_id: str, body: Annotated[CancelBody | None, Body()] = None
    ) -> dict[str, object]:
        reason = (body or CancelBody()).reason
        return run_summary(await service_api.cancel_run(await state.store(), run_id, reason=reason))

    @router.post("/{run_id}/resume", status_code=202, summary="Resume a paused or failed run")
    async def resume(run_id: str, detach: Detach = False, migrate: bool = False) -> JSONResponse:
        """Reopen the run (reclaiming tasks of dead processes) and drive it here unless
        ``detach=true``; ``migrate=true`` adopts a changed configuration."""
        store = await state.store()
        prepared = await service.prepare_resume(store, run_id, migrate=migrate)
        if not detach:
            state.drive(store, run_id, prepared.pipeline)
        body = {**run_summary(prepared.run), "reclaimed_tasks": prepared.reclaimed}
        return JSONResponse(body, status_code=202)

    @router.post("/{run_id}/phases/{phase}/retry", status_code=202, summary="Retry a failed phase")
    async def retry(run_id: str, phase: str, detach: Detach = False) -> JSONResponse:
        store = await state.store()
        pipeline = await service_api.pinned_pipeline(store, await store.get_run(run_id))
        if pipeline is not None and phase not in {spec.name for spec in pipeline.phases}:
            raise ApiProblem(
                404,
                "phase_not_found",
                f"run {run_id} has no phase {phase!r}",
                hint="its phases: " + ", ".join(spec.name for spec in pipeline.phases),
                run_id=run_id,
            )
        attempt = await service_api.retry_phase(store, run_id, phase, reason="retried over the API")
        if not detach:
            state.drive(store, run_id)
        return JSONResponse({"run_id": run_id, "phase": phase, "attempt": attempt}, 202)

    @router.get("/{run_id}/gates", summary="Gate verdicts of a run")
    async def gates(run_id: str) -> dict[str, object]:
        store = await state.store()
        await store.get_run(run_id)
        verdicts = await DossierStore(store).gate_evaluations(run_id)
        return {
            "gates": [
                {
                    "phase": v.phase,
                    "attempt": v.attempt,
                    "passed": v.passed,
                    "score": v.score,
                    "threshold": v.threshold,
                    "result": dict(v.result),
                    "created_at": v.created_at,
                }
                for v in verdicts
            ],
            "note": None if verdicts else NO_GATES,
        }

    @router.post(
        "/{run_id}/phases/{phase}/waive",
        summary="Waive a failed gate (not available yet: 501)",
        responses={501: {"description": "The quality loop that waivers belong to is missing."}},
    )
    async def waive(run_id: str, phase: str, body: WaiveBody) -> JSONResponse:
        await (await state.store()).get_run(run_id)
        raise ApiProblem(
            501,
            "not_implemented",
            "waivers are not available: this version has no quality loop (gates with "
            "rubrics and guards, SPEC §5), so no gate can fail and nothing can be waived",
            hint="retry the phase (POST …/retry) or cancel the run",
            run_id=run_id,
        )

    return router


NO_GATES = (
    "no gate has judged this run: the quality loop (guards, rubric scoring, auto-fix) is "
    "not built in this version; a phase passes when its required artifacts are present"
)
