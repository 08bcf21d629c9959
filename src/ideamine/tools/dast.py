"""DAST probes of a running service → SecurityPack's ``dast``.

Like a scanner with a short rule list, from outside over HTTP: security headers and version
banners on the home page and the first collection; crafted input (unknown paths, malformed
JSON, non-numeric and out-of-range ids) that must give a clean 4xx, never a 5xx, a traceback
or a database error; TRACE and methods the contract does not declare, which must be refused.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from ideamine.tools.openapi import Collection, collections
from ideamine.tools.service import Service, http_client, timed_check

__all__ = ["dast_probes"]

_LEAKS = ("Traceback (most recent call last)", 'File "', "sqlite3.", "OperationalError")


_HEADERS = (
    ("x-content-type-options", "nosniff", "medium", "X-Content-Type-Options: nosniff missing"),
    ("content-security-policy", "", "medium", "Content-Security-Policy missing"),
    ("x-frame-options", "", "medium", "X-Frame-Options missing (clickjacking)"),
    ("referrer-policy", "", "low", "Referrer-Policy missing"),
)


async def dast_probes(
    service: Service, openapi: Mapping[str, Any], *, limit_s: float = 60
) -> dict[str, object]:
    """Probe the running service from outside, like a scanner with a short rule list.

    Returns:
        SecurityPack's ``dast``: ``{"target", "findings": [{"check", "path", "detail",
        "severity"}], "checks": [{"check", "path", "status"}], "evidence"}``.
    """
    found = collections(openapi)

    async def run() -> dict[str, Any]:
        findings: list[dict[str, object]] = []
        checks: list[dict[str, object]] = []
        async with http_client(service.base_url) as client:
            for probe in (_header_probes, _error_probes, _method_probes):
                await probe(client, found, findings, checks)
        return {"findings": findings, "checks": checks, "_failed": bool(findings)}

    result, envelope = await timed_check(run, service, tool="dast-http", limit=limit_s)
    return {**(result or {"findings": [], "checks": []}), "target": service.base_url,
            "evidence": envelope}  # fmt: skip


Findings = list[dict[str, object]]


async def _header_probes(
    client: httpx.AsyncClient, found: Sequence[Collection], findings: Findings, checks: Findings
) -> None:
    """Security headers and server banners on the home page and the first collection."""
    for path in ["/", *[c.path for c in found if c.listable][:1]]:
        response = await client.get(path)
        checks.append({"check": "security-headers", "path": path, "status": response.status_code})
        for name, value, severity, detail in _HEADERS:
            got = response.headers.get(name, "")
            if not got or (value and got.lower() != value):
                findings.append(_finding("security-headers", path, detail, severity))
        for banner in ("server", "x-powered-by"):
            if any(ch.isdigit() for ch in response.headers.get(banner, "")):
                shown = f"{banner}: {response.headers[banner]} discloses a version"
                findings.append(_finding("server-banner", path, shown, "low"))


async def _error_probes(
    client: httpx.AsyncClient, found: Sequence[Collection], findings: Findings, checks: Findings
) -> None:
    """Crafted input must give a clean 4xx: never a 5xx, never a traceback or SQL error."""
    probes: list[tuple[str, str, dict[str, Any]]] = [("GET", "/no-such-page-ideamine", {})]
    for collection in found:
        if collection.create_schema is not None:
            malformed = {"content": b"{", "headers": {"content-type": "application/json"}}
            probes.append(("POST", collection.path, malformed))
        if collection.item_path is not None:
            probes += [("GET", collection.item("not-a-number"), {})]
            probes += [("GET", collection.item(10**30), {})]
    for method, path, extra in probes:
        response = await client.request(method, path, **extra)
        checks.append({"check": "error-handling", "path": f"{method} {path}",
                       "status": response.status_code})  # fmt: skip
        leaked = [marker for marker in _LEAKS if marker in response.text]
        if leaked:
            detail = f"{method} answered {response.status_code} showing {leaked[0]!r}"
            findings.append(_finding("error-leak", path, detail, "high"))
        elif response.status_code >= 500:
            detail = f"{method} with crafted input answered {response.status_code}"
            findings.append(_finding("server-error", path, detail, "medium"))


async def _method_probes(
    client: httpx.AsyncClient, found: Sequence[Collection], findings: Findings, checks: Findings
) -> None:
    """TRACE and undocumented methods must be refused (405, or 404 where nothing is)."""
    probes = [("TRACE", "/")]
    probes += [(m, c.path) for c in found for m in ("PUT", "PATCH") if m not in c.methods]
    for method, path in probes:
        response = await client.request(method, path)
        checks.append({"check": "methods", "path": f"{method} {path}",
                       "status": response.status_code})  # fmt: skip
        if response.status_code < 400 or response.status_code >= 500:
            detail = f"{method} answered {response.status_code}; expected 405"
            findings.append(_finding("unexpected-method", path, detail, "medium"))


def _finding(check: str, path: str, detail: str, severity: str) -> dict[str, object]:
    return {"check": check, "path": path, "detail": detail, "severity": severity}
