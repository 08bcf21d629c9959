"""Errors as HTTP responses, mapped once: every error body is
``{"error": CODE, "message": …, "hint": …}`` plus the ids the error carries.

| error                                   | status |
|-----------------------------------------|--------|
| request body or query fails validation  | 422 (``fields`` names each bad field) |
| ``RunNotFoundError`` / unknown resource | 404 |
| ``InvalidIdeaError``, ``ConfigError``   | 422 |
| other ``UsageError``                    | 400 |
| ``RunStateError``, ``IllegalTransitionError`` | 409 |
| ``StoreError``                          | 503 (with the store's hint) |
| a missing or wrong bearer token         | 401 |
| a feature this version does not have    | 501 |
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ideamine.errors import (
    ConfigError,
    IdeaMineError,
    IllegalTransitionError,
    InvalidIdeaError,
    RunNotFoundError,
    RunStateError,
    StoreError,
    UsageError,
)

__all__ = ["ApiProblem", "error_response", "install_handlers"]


class ApiProblem(Exception):
    """An HTTP-level problem that is not an IdeaMine error (unknown artifact, not built)."""

    def __init__(
        self, status: int, code: str, message: str, *, hint: str = "", **ids: object
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.hint, self.ids = status, code, message, hint, ids


def error_response(
    status: int, code: str, message: str, hint: str = "", **extra: object
) -> JSONResponse:
    body: dict[str, object] = {"error": code, "message": message, "hint": hint, **extra}
    headers = {"WWW-Authenticate": 'Bearer realm="ideamine"'} if status == 401 else None
    return JSONResponse(body, status_code=status, headers=headers)


def _status(error: IdeaMineError) -> tuple[int, str]:
    if isinstance(error, RunNotFoundError):
        return 404, "run_not_found"
    if isinstance(error, InvalidIdeaError | ConfigError):
        return 422, "invalid_input"
    if isinstance(error, UsageError):
        return 400, "bad_request"
    if isinstance(error, RunStateError | IllegalTransitionError):
        return 409, "illegal_state"
    if isinstance(error, StoreError):
        return 503, "store_unavailable"
    return 500, "internal_error"


def _ids(error: IdeaMineError) -> dict[str, object]:
    ids: dict[str, object] = {}
    for name in ("run_id", "task_id"):
        if hasattr(error, name):
            ids[name] = getattr(error, name)
    if isinstance(error, ConfigError):
        ids["problems"] = [str(problem) for problem in error.problems]
    return ids


def field_errors(errors: Sequence[Mapping[str, object]]) -> list[dict[str, str]]:
    """Pydantic errors as ``{"field": "constraints.budget_usd", "message": …}``."""
    found = []
    for item in errors:
        loc = item.get("loc", ())
        parts = loc if isinstance(loc, tuple | list) else ()
        location = [str(part) for part in parts if part != "body"]
        found.append({"field": ".".join(location) or "(body)", "message": str(item.get("msg"))})
    return found


async def _on_ideamine(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, IdeaMineError)
    status, code = _status(error)
    return error_response(status, code, error.message, error.hint, **_ids(error))


async def _on_problem(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, ApiProblem)
    return error_response(error.status, error.code, error.message, error.hint, **error.ids)


async def _on_validation(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    fields = field_errors(error.errors())
    named = "; ".join(f"{f['field']}: {f['message']}" for f in fields)
    return error_response(
        422,
        "invalid_request",
        f"invalid request: {named}",
        "see /openapi.json for the expected fields",
        fields=fields,
    )


async def _on_http(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, StarletteHTTPException)
    code = {404: "not_found", 405: "method_not_allowed"}.get(error.status_code, "http_error")
    return error_response(error.status_code, code, str(error.detail))


def install_handlers(app: FastAPI) -> None:
    """Register the mapping on the app."""
    app.add_exception_handler(IdeaMineError, _on_ideamine)
    app.add_exception_handler(ApiProblem, _on_problem)
    app.add_exception_handler(RequestValidationError, _on_validation)
    app.add_exception_handler(StarletteHTTPException, _on_http)
