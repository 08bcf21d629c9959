"""``/health`` (is the store reachable?) and ``/metrics`` (Prometheus, from the store)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST

from ideamine.api.state import ServerState
from ideamine.errors import StoreError
from ideamine.observability.metrics import MetricsReader, render

__all__ = ["ops_router"]


def ops_router(state: ServerState) -> APIRouter:
    router = APIRouter(tags=["operations"])
    reader = MetricsReader()

    @router.get(
        "/health",
        summary="Is the store reachable?",
        responses={503: {"description": "The store is unreachable; `hint` says what to check."}},
    )
    async def health() -> JSONResponse:
        """200 when the store answers a read, else 503 with the reason (no token needed)."""
        try:
            store = await state.store()
            await store.list_runs(1)
        except StoreError as exc:
            body = {"status": "unavailable", "store": "unreachable", "message": exc.message}
            return JSONResponse({**body, "hint": exc.hint}, status_code=503)
        return JSONResponse({"status": "ok", "store": repr(store)})

    @router.get(
        "/metrics",
        summary="Prometheus metrics",
        response_class=Response,
        responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}},
    )
    async def metrics() -> Response:
        """Every ``ideamine_`` series, derived from the store at scrape time."""
        snapshot = await reader.snapshot(await state.store())
        return Response(render(snapshot), media_type=CONTENT_TYPE_LATEST)

    return router
