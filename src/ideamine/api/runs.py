"""Runs: create (202 + id), list and filter, get with phases and budgets, pause, resume,
cancel, retry a phase, gates and waivers."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Body, Query
from fastapi.responses import JSONResponse

from ideamine import service, service_api, service_quality
from ideamine.api.bodies import CancelBody, RunBody, WaiveBody
from ideamine.api.problems import ApiProblem
from ideamine.api.state import ServerState
from ideamine.api.views import (
    GatesView,
    WaiveReceipt,
    problems,
    run_detail_view,
    run_links,
    run_list_view,
)
from ideamine.cli.views import run_summary
from ideamine.engine.states import RunStatus
from ideamine.stores.dossiers import DossierStore
from ideamine.stores.knowledge import Knowledge
from ideamine.stores.verdicts import VerdictStore

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

    @router.get("/{run_id}", summary="Get a run with its phases, budgets, gates and questions")
    async def get_run(run_id: str) -> dict[str, object]:
        """``ideamine status --json`` plus budgets, each judged phase's latest gate verdict
        (``gates``) and the run's questions counted by status (``questions.open``: waiting
        for a person)."""
        store = await state.store()
        detail = await service_api.run_detail(store, run_id)
        history = await service_quality.gate_history(store, run_id)
        asked = await Knowledge(store).questions(run_id)
        return run_detail_view(detail, gates=history, questions=asked)

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

    @router.get(
        "/{run_id}/gates",
        summary="Gate verdicts of a run",
        response_model=GatesView,
    )
    async def gates(run_id: str) -> dict[str, object]:
        """Every gate verdict (one per judged phase attempt): the score against the
        threshold, the GateResult with its rubric scores, reasons, evidence gaps and issues,
        and the waiver when a person waived it."""
        store = await state.store()
        await store.get_run(run_id)
        verdicts = await DossierStore(store).gate_evaluations(run_id)
        waivers = {(w["phase"], w["attempt"]): w for w in await VerdictStore(store).waivers(run_id)}
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
                    "waiver": waivers.get((v.phase, v.attempt)),
                }
                for v in verdicts
            ],
            "note": None if verdicts else "no gate has judged this run yet",
        }

    @router.post(
        "/{run_id}/phases/{phase}/waive",
        status_code=202,
        summary="Waive a failed gate",
        response_model=WaiveReceipt,
        responses=problems(
            {
                400: (
                    "The justification is blank.",
                    {"error": "bad_request", "message": "a waiver needs a justification"},
                ),
                409: (
                    "The phase's latest attempt did not fail its gate (it passed, was "
                    "waived already, or is running), or it failed on what can never be "
                    "waived: a critical CVE or a secret.",
                    {
                        "error": "illegal_state",
                        "message": "phase security's gate failed on what can never be "
                        "waived: 1 secret(s) found (limit 0): app/settings.py:3",
                        "hint": "fix the finding (critical CVEs and secrets cannot be "
                        "waived), then `ideamine retry-phase 327d0ef68e23 security`",
                        "run_id": "327d0ef68e23",
                    },
                ),
                422: (
                    "A field is invalid: `justification` shorter than 10 characters, "
                    "`expires_at` not a date and time or not in the future.",
                    {
                        "error": "invalid_request",
                        "message": "invalid request: expires_at: must be in the future",
                        "hint": "a waiver must expire later than now",
                        "fields": [{"field": "expires_at", "message": "must be in the future"}],
                    },
                ),
            }
        ),
    )
    async def waive(
        run_id: str, phase: str, body: WaiveBody, detach: Detach = False
    ) -> dict[str, object]:
        """Pass the phase's failed gate on a person's justification, until ``expires_at``
        (a time without a zone is UTC). The run goes on (this server drives it unless
        ``detach=true``). Critical CVEs and secrets can never be waived."""
        store = await state.store()
        expires = _expiry(body.expires_at)
        attempt = await service_quality.waive_phase(
            store, run_id, phase, reason=body.justification, expires=expires
        )
        if not detach:
            state.drive(store, run_id)
        return {"run_id": run_id, "phase": phase, "attempt": attempt}

    return router


def _expiry(value: datetime) -> str:
    """A waiver's ``expires_at`` in UTC (a time without a zone is UTC), in ISO 8601.

    Raises:
        ApiProblem: 422 naming the field when it is not in the future or out of range.
    """
    try:
        expires = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except OverflowError:
        expires = None
    problem = "is out of range" if expires is None else "must be in the future"
    if expires is None or expires <= datetime.now(UTC):
        raise ApiProblem(
            422,
            "invalid_request",
            f"invalid request: expires_at: {problem}",
            hint="a waiver must expire later than now, e.g. 2030-01-31T23:59:59Z",
            fields=[{"field": "expires_at", "message": problem}],
        )
    return expires.isoformat()
