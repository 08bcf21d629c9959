"""Bearer-token auth. Off when the server has no token (only allowed on loopback); with a
token every route but ``/health`` and ``/login`` needs ``Authorization: Bearer TOKEN``, or
the cookie the dashboard's login form sets (so the browser's pages and event streams carry it).
"""

from __future__ import annotations

import hmac
import html
import ipaddress
from urllib.parse import parse_qs

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ideamine.api.problems import ApiProblem, error_response
from ideamine.errors import UsageError

__all__ = ["COOKIE", "TOKEN_ENV", "TokenGuard", "check_bind", "install_login", "is_loopback"]

COOKIE = "ideamine_token"
TOKEN_ENV = "IDEAMINE_API_TOKEN"
OPEN_PATHS = frozenset({"/health", "/login"})
_bearer = HTTPBearer(auto_error=False, description="The server's --token / $IDEAMINE_API_TOKEN")


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(host: str, token: str | None) -> None:
    """Refuse to serve beyond loopback without a token.

    Raises:
        UsageError: ``host`` is not a loopback address and there is no token.
    """
    if token is None and not is_loopback(host):
        raise UsageError(
            f"refusing to serve on {host} without a token: anyone who can reach it could "
            "start, cancel and read runs",
            hint=f"pass --token TOKEN (or set ${TOKEN_ENV}), or bind to 127.0.0.1",
        )


class LoginRequired(ApiProblem):
    """No valid token: 401 for the API, the login form for dashboard pages."""


class TokenGuard:
    """The app-wide dependency that checks the token (a no-op without one)."""

    def __init__(self, token: str | None) -> None:
        self.token = token

    async def __call__(self, request: Request) -> None:
        if self.token is None or request.url.path in OPEN_PATHS:
            return
        credentials: HTTPAuthorizationCredentials | None = await _bearer(request)
        supplied = credentials.credentials if credentials else request.cookies.get(COOKIE)
        if supplied is None:
            raise LoginRequired(401, "unauthorized", "this server needs a bearer token", hint=_HINT)
        if not self.accepts(supplied):
            raise LoginRequired(401, "unauthorized", "the bearer token is wrong", hint=_HINT)

    def accepts(self, supplied: str) -> bool:
        assert self.token is not None
        return hmac.compare_digest(supplied.encode(), self.token.encode())


_HINT = "send `Authorization: Bearer TOKEN` with the server's --token / $IDEAMINE_API_TOKEN"


def install_login(app: FastAPI, guard: TokenGuard) -> None:
    """The login form (``/login``) and the 401 handler that shows it to browsers."""

    async def on_login_required(request: Request, error: Exception) -> Response:
        assert isinstance(error, LoginRequired)
        if request.url.path.startswith("/dashboard") and request.method == "GET":
            return _login_page(request.url.path, error.message, status=401)
        return error_response(401, error.code, error.message, error.hint)

    app.add_exception_handler(LoginRequired, on_login_required)

    @app.get("/login", include_in_schema=False)
    async def login_form(next: str = "/dashboard/") -> HTMLResponse:
        return _login_page(next, "")

    @app.post("/login", include_in_schema=False)
    async def login(request: Request) -> Response:
        form = parse_qs((await request.body()).decode("utf-8", "replace"))
        token = (form.get("token") or [""])[0]
        target = (form.get("next") or ["/dashboard/"])[0]
        if not target.startswith("/dashboard"):
            target = "/dashboard/"
        if guard.token is None or not guard.accepts(token):
            return _login_page(target, "That token is not right.", status=401)
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(COOKIE, token, httponly=True, samesite="strict")
        return response


def _login_page(target: str, message: str, *, status: int = 200) -> HTMLResponse:
    note = f'<p class="login-error">{html.escape(message)}</p>' if message else ""
    body = f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>IdeaMine · sign in</title><link rel="stylesheet" href="/dashboard/static/style.css">
</head><body><main class="login"><h1>IdeaMine</h1>
<p>This server needs its access token.</p>{note}
<form method="post" action="/login"><input type="hidden" name="next" value="{html.escape(target)}">
<label>Token <input type="password" name="token" autocomplete="current-password" required></label>
<button type="submit">Sign in</button></form></main></body></html>"""
    return HTMLResponse(body, status_code=status)
