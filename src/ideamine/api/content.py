"""What runs produce: artifacts (listed, and each with its content), the Q/A/V loop's
questions, answers and assumptions (and a person's answer to an open question), and the
release dossier in each format."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import asdict
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.responses import Response

from ideamine import service_quality
from ideamine.api.bodies import AnswerBody
from ideamine.api.problems import ApiProblem
from ideamine.api.runs import ERRORS
from ideamine.api.state import ServerState
from ideamine.api.views import AnswerReceipt, QuestionsView, problems
from ideamine.cli.views import artifact_view
from ideamine.dossier.compile import compile_run
from ideamine.dossier.export_html import render_html
from ideamine.dossier.export_json import render_json
from ideamine.dossier.export_md import render_markdown
from ideamine.dossier.export_pdf import render_pdf
from ideamine.stores.knowledge import Knowledge

__all__ = ["DOSSIER_FORMATS", "content_router", "dossier_router"]

DossierFormat = Literal["json", "html", "pdf", "md"]
DOSSIER_FORMATS: Mapping[str, tuple[str, Callable[[Mapping[str, object]], str | bytes]]] = {
    "json": ("application/json", render_json),
    "html": ("text/html; charset=utf-8", render_html),
    "pdf": ("application/pdf", render_pdf),
    "md": ("text/markdown; charset=utf-8", render_markdown),
}


def content_router(state: ServerState) -> APIRouter:
    """Artifacts and questions of a run."""
    router = APIRouter(prefix="/runs/{run_id}", responses=ERRORS)

    @router.get("/artifacts", tags=["artifacts"], summary="Every artifact version of a run")
    async def artifacts(run_id: str) -> list[dict[str, object]]:
        store = await state.store()
        await store.get_run(run_id)
        return [artifact_view(r) for r in await store.artifacts(run_id)]

    @router.get(
        "/artifacts/{artifact_id}", tags=["artifacts"], summary="One artifact with its content"
    )
    async def artifact(run_id: str, artifact_id: str) -> dict[str, object]:
        store = await state.store()
        await store.get_run(run_id)
        for record in await store.artifacts(run_id):
            if record.id == artifact_id:
                return {**artifact_view(record), "content": await store.blob(record.content_hash)}
        raise ApiProblem(
            404,
            "artifact_not_found",
            f"run {run_id} has no artifact {artifact_id!r}",
            hint=f"GET /runs/{run_id}/artifacts lists them",
            run_id=run_id,
        )

    @router.get(
        "/questions",
        tags=["questions"],
        summary="Questions, answers and assumptions",
        response_model=QuestionsView,
    )
    async def questions(run_id: str) -> dict[str, object]:
        """Every question the Q/A/V loop asked, with its status (``open`` ones wait for a
        person: runs started with ``ask``), every answer given (the answer agent's, with its
        validation, and people's) and every assumption the run went on with."""
        store = await state.store()
        await store.get_run(run_id)
        knowledge = Knowledge(store)
        asked = await knowledge.questions(run_id)
        return {
            "questions": [asdict(q) for q in asked],
            "answers": [asdict(a) for a in await knowledge.answers(run_id)],
            "assumptions": [asdict(a) for a in await knowledge.assumptions(run_id)],
            "open": sum(1 for q in asked if q.status == "open"),
        }

    @router.post(
        "/questions/{question_id}/answer",
        tags=["questions"],
        summary="Answer an open question",
        status_code=201,
        response_model=AnswerReceipt,
        responses=problems(
            {
                400: (
                    "The run has no such open question (it was answered, or the run was not "
                    "started with `ask`), or the answer is blank or over 5,000 characters.",
                    {
                        "error": "bad_request",
                        "message": "run 61d69dac6374 has no open question 'q1'",
                        "hint": "open questions: intake.1.Q1.3, intake.1.Q1.4 "
                        "(`ideamine questions 61d69dac6374`)",
                    },
                ),
                422: (
                    'The body is not `{"text": …}`; `fields` names each bad field.',
                    {
                        "error": "invalid_request",
                        "message": "invalid request: text: Field required",
                        "hint": "see /openapi.json for the expected fields",
                        "fields": [{"field": "text", "message": "Field required"}],
                    },
                ),
            }
        ),
    )
    async def answer(run_id: str, question_id: str, body: AnswerBody) -> dict[str, object]:
        """Record a person's answer to one open question (it is bound like an accepted
        answer: a binding and a knowledge frame). When it was the run's last open question
        the run is set running again and this server carries it on; only the phase that
        waited is judged again."""
        store = await state.store()
        resumed = await service_quality.answer_question(store, run_id, question_id, body.text)
        if resumed:
            state.drive(store, run_id)
        left = await service_quality.open_questions(store, run_id)
        return {"question_id": question_id, "resumed": resumed, "open": len(left)}

    return router


def dossier_router(state: ServerState) -> APIRouter:
    """The release dossier of a run, in each export format."""
    router = APIRouter(prefix="/runs/{run_id}", responses=ERRORS)

    @router.get(
        "/dossier",
        tags=["dossier"],
        summary="Download the release dossier",
        response_class=Response,
        responses={200: {"content": {t: {} for t, _ in DOSSIER_FORMATS.values()}}},
    )
    async def dossier(
        run_id: str,
        format: Annotated[DossierFormat, Query()] = "json",
    ) -> Response:
        """Compiles the dossier (or reuses it while the run is unchanged) and renders it."""
        compiled = await compile_run(await state.store(), run_id)
        media, render = DOSSIER_FORMATS[format]
        data = await asyncio.to_thread(render, compiled.document)
        name = f"dossier-{run_id}-{compiled.record.version}.{format}"
        disposition = "inline" if format == "html" else "attachment"
        return Response(
            data,
            media_type=media,
            headers={
                "Content-Disposition": f'{disposition}; filename="{name}"',
                "X-Dossier-SHA256": compiled.record.sha256,
            },
        )

    return router
