"""A run's ledger: pages by event id, and a live server-sent-event stream.

The stream polls the store, so it shows events written by any process (``ideamine run``,
workers elsewhere, this server); it resumes after ``Last-Event-ID`` (or ``?after=``) and ends
with an ``end`` event once the run has finished and every event was sent.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import StreamingResponse

from ideamine.api.runs import ERRORS
from ideamine.api.state import ServerState
from ideamine.cli.views import event_view
from ideamine.engine.states import RunStatus
from ideamine.stores.base import Store

__all__ = ["events_router", "sse_lines"]

POLL_SECONDS = 0.3
KEEPALIVE_SECONDS = 15.0
PAGE = 500
_LIVE = (RunStatus.CREATED, RunStatus.RUNNING, RunStatus.PAUSED, RunStatus.NEEDS_ATTENTION)


def events_router(state: ServerState) -> APIRouter:
    router = APIRouter(prefix="/runs/{run_id}/events", tags=["events"], responses=ERRORS)

    @router.get("", summary="A page of a run's events")
    async def list_events(
        run_id: str,
        after: Annotated[int, Query(ge=0, description="Only events after this id.")] = 0,
        limit: Annotated[int, Query(ge=1, le=5000)] = 500,
    ) -> dict[str, object]:
        store = await state.store()
        await store.get_run(run_id)
        page = await store.events(run_id, after_id=after, limit=limit)
        return {
            "events": [event_view(e) for e in page],
            "next_after": page[-1].id if page else after,
            "more": len(page) == limit,
        }

    @router.get(
        "/stream",
        summary="Live events as server-sent events",
        response_class=StreamingResponse,
        responses={200: {"content": {"text/event-stream": {}}}},
    )
    async def stream(
        run_id: str,
        request: Request,
        after: Annotated[int, Query(ge=0)] = 0,
        last_event_id: Annotated[str | None, Header()] = None,
    ) -> StreamingResponse:
        """Each event as ``id: N`` / ``event: TYPE`` / ``data: JSON``; resumable with
        ``Last-Event-ID``; an ``end`` event once the run has finished."""
        store = await state.store()
        await store.get_run(run_id)
        start = int(last_event_id) if last_event_id and last_event_id.isdigit() else after
        return StreamingResponse(
            _stream(store, run_id, start, request, state),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    return router


async def _stream(
    store: Store, run_id: str, last: int, request: Request, state: ServerState
) -> AsyncIterator[str]:
    """Until the run has finished, the client has gone or the server stops (the browser then
    reconnects with ``Last-Event-ID`` once a server answers again)."""
    yield "retry: 2000\n\n"
    quiet_since = time.monotonic()
    while not state.stopping and not await request.is_disconnected():
        page = await store.events(run_id, after_id=last, limit=PAGE)
        for event in page:
            yield sse_lines(event.id, event.type, event_view(event))
            last = event.id
        if page:
            quiet_since = time.monotonic()
            if len(page) == PAGE:
                continue
        run = await store.get_run(run_id)
        if run.status not in _LIVE and not page:
            yield sse_lines(None, "end", {"run_id": run_id, "status": run.status.value})
            return
        if time.monotonic() - quiet_since > KEEPALIVE_SECONDS:
            yield ": keep-alive\n\n"
            quiet_since = time.monotonic()
        await asyncio.sleep(POLL_SECONDS)


def sse_lines(event_id: int | None, event_type: str, data: object) -> str:
    """One server-sent event (the JSON on one ``data:`` line)."""
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {event_type}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"
