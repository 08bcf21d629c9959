"""What runs produce: artifacts (listed, and each with its content), questions and answers
(not asked yet by this version: an empty list with a note), and the release dossier in each
format."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.responses import Response

from ideamine.api.bodies import AnswerBody
from ideamine.api.problems import ApiProblem
from ideamine.api.runs import ERRORS
from ideamine.api.state import ServerState
from ideamine.cli.views import artifact_view
from ideamine.dossier.compile import compile_run
from ideamine.dossier.export_html import render_html
from ideamine.dossier.export_json import render_json
from ideamine.dossier.export_md import render_markdown
from ideamine.dossier.export_pdf import render_pdf

__all__ = ["DOSSIER_FORMATS", "NO_QUESTIONS", "content_router", "dossier_router"]

DossierFormat = Literal["json", "html", "pdf", "md"]
DOSSIER_FORMATS: Mapping[str, tuple[str, Callable[[Mapping[str, object]], str | bytes]]] = {
    "json": ("application/json", render_json),
    "html": ("text/html; charset=utf-8", render_html),
    "pdf": ("application/pdf", render_pdf),
    "md": ("text/markdown; charset=utf-8", render_markdown),
}
NO_QUESTIONS = (
    "no questions: the Q/A/V quality loop (question, answer and validator agents, SPEC §5) "
    "is not built in this version, so runs do not ask any; they go on with the assumptions "
    "intake records"
)


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

    @router.get("/questions", tags=["questions"], summary="Open and answered questions")
    async def questions(run_id: str) -> dict[str, object]:
        await (await state.store()).get_run(run_id)
        return {"questions": [], "note": NO_QUESTIONS}

    @router.post(
        "/questions/{question_id}/answer",
        tags=["questions"],
        summary="Answer an open question",
    )
    async def answer(run_id: str, question_id: str, body: AnswerBody) -> dict[str, object]:
        await (await state.store()).get_run(run_id)
        raise ApiProblem(
            404,
            "question_not_found",
            f"run {run_id} has no question {question_id!r}: this version's runs ask none "
            "(the Q/A/V quality loop is not built yet)",
            hint=f"GET /runs/{run_id}/questions lists open questions",
            run_id=run_id,
        )

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
