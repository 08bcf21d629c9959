"""ideamine.tools.service, dast, a11y and openapi against small real services (uvicorn
subprocesses on loopback): start and always stop, end-to-end cases, load, probes, page checks."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from ideamine.tools.a11y import a11y_audit, audit_page, contrast_ratio
from ideamine.tools.dast import dast_probes
from ideamine.tools.openapi import collections, sample_body
from ideamine.tools.service import (
    Service,
    ServiceError,
    e2e_tests,
    latency,
    load_test,
    running_service,
    seed,
)

T = TypeVar("T")

GOOD_APP = """\
import subprocess
import sys
from pathlib import Path

from fastapi import FastAPI, HTTPException, Response
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field

HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "content-security-policy": "default-src 'self'",
}
app = FastAPI(docs_url=None, redoc_url=None)
THINGS: dict[int, dict] = {}
OWNERS: dict[int, dict] = {}
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
Path(__file__).with_name("child.pid").write_text(str(child.pid))


@app.middleware("http")
async def headers(request, call_next):
    response = await call_next(request)
    response.headers.update(HEADERS)
    return response


class OwnerCreate(BaseModel):
    name: str = Field(min_length=1)


class Owner(OwnerCreate):
    id: int


class ThingCreate(BaseModel):
    title: str = Field(min_length=1)
    owner_id: int


class Thing(ThingCreate):
    id: int


@app.get("/", response_class=HTMLResponse)
def home() -> str:
    return (
        '<!doctype html><html lang="en"><head><title>Things</title></head><body>'
        '<h1>Things</h1><a href="/about">About</a><form><label>Title <input name="t">'
        '</label><button>Add</button></form></body></html>'
    )


@app.get("/about", response_class=HTMLResponse)
def about() -> str:
    return (
        "<html><head><title>About</title></head>"
        '<body><h3>About</h3><img src="x.png"></body></html>'
    )


@app.post("/owners", response_model=Owner, status_code=201)
def create_owner(body: OwnerCreate) -> Owner:
    owner = Owner(id=len(OWNERS) + 1, **body.model_dump())
    OWNERS[owner.id] = owner.model_dump()
    return owner


@app.get("/owners", response_model=list[Owner])
def list_owners() -> list[dict]:
    return list(OWNERS.values())


@app.post("/things", response_model=Thing, status_code=201)
def create_thing(body: ThingCreate) -> Thing:
    if body.owner_id not in OWNERS:
        raise HTTPException(422, "no such owner")
    thing = Thing(id=len(THINGS) + 1, **body.model_dump())
    THINGS[thing.id] = thing.model_dump()
    return thing


@app.get("/things", response_model=list[Thing])
def list_things() -> list[dict]:
    return list(THINGS.values())


@app.get("/things/{id}", response_model=Thing)
def get_thing(id: int) -> dict:
    if id not in THINGS:
        raise HTTPException(404, "not found")
    return THINGS[id]


@app.delete("/things/{id}", status_code=204)
def delete_thing(id: int) -> Response:
    if THINGS.pop(id, None) is None:
        raise HTTPException(404, "not found")
    return Response(status_code=DELETE_STATUS)
"""

BAD_APP = """\
import traceback

from starlette.applications import Starlette
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route


async def items(request):
    if request.method == "POST":
        return JSONResponse({"id": 1}, status_code=201)
    return JSONResponse([])


async def item(request):
    try:
        int(request.path_params["id"])
    except ValueError:
        return PlainTextResponse(traceback.format_exc(), status_code=500)
    return JSONResponse({"id": 1})


async def home(request):
    return PlainTextResponse("home", headers={"server": "bad-server/1.2.3"})


app = Starlette(routes=[
    Route("/", home, methods=["GET", "TRACE"]),
    Route("/items", items, methods=["GET", "POST", "PUT"]),
    Route("/items/{id}", item),
])
"""

BAD_OPENAPI: dict[str, Any] = {
    "paths": {
        "/items": {
            "get": {"responses": {"200": {"description": "ok"}}, "tags": ["Item"]},
            "post": {
                "requestBody": {
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/X"}}}
                },
                "responses": {"201": {"description": "created"}},
                "tags": ["Item"],
            },
        },
        "/items/{id}": {"get": {"responses": {"200": {"description": "ok"}}}},
    },
    "components": {
        "schemas": {"X": {"type": "object", "properties": {"name": {"type": "string"}}}}
    },
}


def _project(root: Path, source: str) -> Path:
    project = root / "backend"
    (project / "app").mkdir(parents=True)
    (project / "app" / "__init__.py").write_text("")
    (project / "app" / "main.py").write_text(source)
    return project


def _good(root: Path, delete_status: int = 204) -> Path:
    """The correct service; ``delete_status`` other than 204 breaks its DELETE (the contract
    still says 204)."""
    return _project(root, GOOD_APP.replace("DELETE_STATUS", str(delete_status)))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _gone(pid: int, within: float = 5.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.05)
    return False


def _with_service(project: Path, check: Callable[[Service], Awaitable[T]]) -> T:
    async def main() -> T:
        async with running_service(project) as service:
            return await check(service)

    return asyncio.run(main())


def test_service_answers_and_is_killed_with_its_children_on_exit(tmp_path: Path) -> None:
    project = _good(tmp_path)

    async def check(service: Service) -> tuple[int, int]:
        async with httpx.AsyncClient(base_url=service.base_url) as client:
            assert (await client.get("/owners")).status_code == 200
        assert service.base_url.startswith("http://127.0.0.1:")
        return service.pid, int((project / "app" / "child.pid").read_text())

    pid, child = _with_service(project, check)
    assert _gone(pid)
    assert _gone(child)  # the whole process group went with it


def test_service_is_killed_even_when_the_body_raises(tmp_path: Path) -> None:
    project = _good(tmp_path)
    seen: list[int] = []

    async def main() -> None:
        async with running_service(project) as service:
            seen.append(service.pid)
            raise RuntimeError("the check blew up")

    with pytest.raises(RuntimeError, match="blew up"):
        asyncio.run(main())
    child = int((project / "app" / "child.pid").read_text())
    assert _gone(seen[0])
    assert _gone(child)


def test_a_service_that_cannot_import_is_a_service_error_with_its_output(tmp_path: Path) -> None:
    project = _project(tmp_path, "raise SystemExit('no database configured')\n")

    async def main() -> None:
        async with running_service(project):
            pytest.fail("the service must not start")

    with pytest.raises(ServiceError, match="no database configured"):
        asyncio.run(main())


def test_a_service_that_never_answers_is_cut_and_killed(tmp_path: Path) -> None:
    project = _project(tmp_path, "import time\ntime.sleep(60)\n")

    async def main() -> None:
        async with running_service(project, startup_s=1.0):
            pytest.fail("the service must not start")

    started = time.monotonic()
    with pytest.raises(ServiceError, match="did not answer within 1 s"):
        asyncio.run(main())
    assert time.monotonic() - started < 15


def _openapi(service: Service) -> dict[str, Any]:
    response = httpx.get(service.base_url + "/openapi.json")
    data: dict[str, Any] = response.json()
    return data


def test_e2e_cases_come_from_the_contract_and_all_pass_on_a_correct_service(
    tmp_path: Path,
) -> None:
    async def check(service: Service) -> dict[str, object]:
        return await e2e_tests(service, _openapi(service))

    report = _with_service(_good(tmp_path), check)
    names = [case["name"] for case in report["cases"]]  # type: ignore[attr-defined, index]
    assert "create thing" in names and "delete thing" in names
    assert "get an unknown thing" in names and "create thing with an empty body" in names
    assert report["failed"] == 0
    assert report["passed"] == report["total"] == len(names)
    assert report["pass_rate"] == 1.0
    assert report["evidence"]["executed"] is True  # type: ignore[index]
    assert report["evidence"]["exit_code"] == 0  # type: ignore[index]


def test_e2e_reports_a_wrong_status_as_a_failed_case(tmp_path: Path) -> None:
    async def check(service: Service) -> dict[str, object]:
        return await e2e_tests(service, _openapi(service))

    report = _with_service(_good(tmp_path, delete_status=200), check)
    failed = [case for case in report["cases"] if not case["passed"]]  # type: ignore[attr-defined]
    assert failed, report
    assert {case["name"] for case in failed} == {"delete thing"}
    assert failed[0]["status"] == 200
    assert report["evidence"]["exit_code"] == 1  # type: ignore[index]


def test_latency_and_load_are_measured_and_bounded(tmp_path: Path) -> None:
    async def check(service: Service) -> tuple[dict[str, object], dict[str, object], list[str]]:
        paths = await seed(service, _openapi(service))
        timed = await latency(service, paths, samples=5)
        loaded = await load_test(service, paths, duration_s=0.5, concurrency=4, max_requests=300)
        return timed, loaded, paths

    started = time.monotonic()
    timed, loaded, paths = _with_service(_good(tmp_path), check)
    assert time.monotonic() - started < 60
    assert "/things" in paths and "/things/1" in paths
    endpoints = timed["endpoints"]
    assert [e["path"] for e in endpoints] == paths  # type: ignore[attr-defined]
    assert all(e["errors"] == 0 and e["p95_ms"] >= e["p50_ms"] > 0 for e in endpoints)  # type: ignore[attr-defined]
    requests = loaded["requests"]
    assert isinstance(requests, int) and 0 < requests <= 300 + 4
    assert loaded["errors"] == 0
    assert loaded["concurrency"] == 4
    assert loaded["p95_ms"] >= loaded["p50_ms"] > 0  # type: ignore[operator]
    assert loaded["rps"] == pytest.approx(requests / loaded["duration_s"], rel=0.01)  # type: ignore[operator]
    assert loaded["budget"] == {"p95_ms": 1000, "rps": 100}
    assert loaded["evidence"]["timed_out"] is False  # type: ignore[index]


def test_a_check_cut_by_its_time_limit_reports_no_numbers(tmp_path: Path) -> None:
    async def check(service: Service) -> dict[str, object]:
        return await load_test(service, ["/things"], duration_s=30, concurrency=2, limit_s=0.5)

    loaded = _with_service(_good(tmp_path), check)
    assert loaded["evidence"]["timed_out"] is True  # type: ignore[index]
    assert loaded["rps"] is None and loaded["p95_ms"] is None and loaded["requests"] is None


def test_dast_finds_missing_headers_banners_leaks_and_methods(tmp_path: Path) -> None:
    async def check(service: Service) -> dict[str, object]:
        return await dast_probes(service, BAD_OPENAPI)

    report = _with_service(_project(tmp_path, BAD_APP), check)
    found = {(f["check"], f["severity"]) for f in report["findings"]}  # type: ignore[attr-defined]
    assert ("security-headers", "medium") in found
    assert ("server-banner", "low") in found
    assert ("error-leak", "high") in found
    details = [f["detail"] for f in report["findings"] if f["check"] == "unexpected-method"]  # type: ignore[attr-defined]
    assert any(d.startswith("TRACE answered 200") for d in details)
    assert any(d.startswith("PUT answered") for d in details)
    assert report["evidence"]["executed"] is True  # type: ignore[index]


def test_dast_finds_nothing_on_a_hardened_service(tmp_path: Path) -> None:
    async def check(service: Service) -> dict[str, object]:
        return await dast_probes(service, _openapi(service))

    report = _with_service(_good(tmp_path), check)
    assert report["findings"] == []
    assert len(report["checks"]) >= 8  # type: ignore[arg-type]


def test_a11y_crawls_linked_pages_and_reports_each_violation(tmp_path: Path) -> None:
    report = _with_service(_good(tmp_path), a11y_audit)
    assert [page["url"] for page in report["pages"]] == ["/", "/about"]  # type: ignore[attr-defined]
    rules = {(v["rule"], v["page"]) for v in report["violations"]}  # type: ignore[attr-defined]
    assert rules == {("html-lang", "/about"), ("image-alt", "/about"), ("heading-order", "/about")}
    assert "static subset" in str(report["standard"])


def test_a11y_page_rules() -> None:
    html = (
        '<html lang="en"><head><title>T</title></head><body><h1>A</h1><h2>B</h2>'
        '<label for="e">Email</label><input id="e" name="email">'
        '<input name="orphan"><input type="hidden" name="h"><select aria-label="S"></select>'
        '<a href="/x"></a><a href="/y"><img src="i.png" alt="Home"></a><button></button>'
        '<p style="color: #777; background-color: #888">low</p>'
        '<p style="color: black; background: white">ok</p></body></html>'
    )
    checks, violations = audit_page("/", html)
    by_rule = {v["rule"]: v["detail"] for v in violations}
    assert set(by_rule) == {"form-label", "link-name", "button-name", "color-contrast"}
    assert "orphan" in str(by_rule["form-label"])
    assert "/x" in str(by_rule["link-name"])
    passed = {c["rule"]: c["passed"] for c in checks}
    assert passed["html-lang"] and passed["document-title"] and passed["heading-order"]
    assert passed["image-alt"]


def test_contrast_ratio_matches_wcag() -> None:
    assert contrast_ratio((0, 0, 0), (255, 255, 255)) == pytest.approx(21.0)
    assert contrast_ratio((255, 255, 255), (255, 255, 255)) == pytest.approx(1.0)
    assert contrast_ratio((0x76, 0x76, 0x76), (255, 255, 255)) == pytest.approx(4.54, abs=0.01)


def test_collections_and_sample_bodies_from_a_contract() -> None:
    contract = {
        "paths": {
            "/owners": {"post": {"requestBody": {"content": {"application/json": {
                "schema": {"$ref": "#/components/schemas/OwnerCreate"}}}},
                "responses": {"201": {"content": {"application/json": {
                    "schema": {"$ref": "#/components/schemas/Owner"}}}}}}},
            "/farm-stands": {"get": {"responses": {"200": {"content": {"application/json": {
                "schema": {"type": "array",
                           "items": {"$ref": "#/components/schemas/FarmStand"}}}}}}}},
            "/farm-stands/{stand_id}": {"delete": {"responses": {"204": {}}}},
            "/health": {"get": {"responses": {"200": {}}}},
        },
        "components": {"schemas": {"OwnerCreate": {"properties": {
            "email": {"type": "string"}, "age": {"type": "integer"},
            "farm_stand_id": {"type": "integer"}, "kind": {"enum": ["a", "b"]}}}}},
    }  # fmt: skip
    found = {c.path: c for c in collections(contract)}
    assert set(found) == {"/owners", "/farm-stands", "/health"}
    stands = found["/farm-stands"]
    assert stands.schema == "FarmStand" and stands.noun == "farm stand"
    assert stands.item(7) == "/farm-stands/7" and stands.deletable and not stands.gettable
    owners = found["/owners"]
    assert owners.created == 201 and owners.item_path is None
    assert owners.parents(list(found.values())) == {"farm_stand_id": stands}
    body = sample_body(owners.create_schema or {}, {"farm_stand_id": 3})
    assert body == {"age": 1, "email": "email@example.com", "farm_stand_id": 3, "kind": "a"}
