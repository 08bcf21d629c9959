"""The HTTP API over a real uvicorn server (``ideamine serve`` in a subprocess) on a store
holding a run that ``ideamine run`` completed: every read endpoint, run creation, signals,
and every documented error."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.api.serving import Server, ideamine, serving, wait_until

IDEA = "A marketplace where local farmers sell produce to nearby restaurants"
PHASES = (
    "intake",
    "ideation",
    "critique",
    "prd",
    "bizdev",
    "architecture",
    "build",
    "security",
    "story-loop",
    "qa",
    "aesthetic",
    "release",
    "beta",
)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, str]]:
    """A server over a store with one run completed by the CLI (offline models)."""
    cwd = tmp_path_factory.mktemp("api")
    done = ideamine("run", "-q", "--project", "farm", IDEA, cwd=cwd)
    assert done.returncode == 0, done.stderr
    run_id = json.loads(ideamine("runs", "--json", cwd=cwd).stdout)[0]["id"]
    with serving(cwd) as server:
        yield server, run_id


@pytest.fixture
def client(served: tuple[Server, str]) -> Iterator[httpx.Client]:
    with served[0].client() as client:
        yield client


def rows(db: Path | str, sql: str, *params: object) -> list[tuple[Any, ...]]:
    with sqlite3.connect(db) as connection:
        return list(connection.execute(sql, params))


def test_openapi_documents_every_endpoint(client: httpx.Client) -> None:
    spec = client.get("/openapi.json").json()
    paths = {(method.upper(), path) for path, ops in spec["paths"].items() for method in ops}
    assert {
        ("POST", "/runs"),
        ("GET", "/runs"),
        ("GET", "/runs/{run_id}"),
        ("GET", "/runs/{run_id}/phases"),
        ("POST", "/runs/{run_id}/pause"),
        ("POST", "/runs/{run_id}/resume"),
        ("POST", "/runs/{run_id}/cancel"),
        ("POST", "/runs/{run_id}/phases/{phase}/retry"),
        ("POST", "/runs/{run_id}/phases/{phase}/waive"),
        ("GET", "/runs/{run_id}/gates"),
        ("GET", "/runs/{run_id}/events"),
        ("GET", "/runs/{run_id}/events/stream"),
        ("GET", "/runs/{run_id}/artifacts"),
        ("GET", "/runs/{run_id}/artifacts/{artifact_id}"),
        ("GET", "/runs/{run_id}/questions"),
        ("POST", "/runs/{run_id}/questions/{question_id}/answer"),
        ("GET", "/runs/{run_id}/dossier"),
        ("GET", "/health"),
        ("GET", "/metrics"),
    } <= paths
    assert "RunBody" in spec["components"]["schemas"]


def test_health_names_the_store(client: httpx.Client) -> None:
    reply = client.get("/health")
    assert reply.status_code == 200
    assert reply.json()["status"] == "ok" and "SqliteStore" in reply.json()["store"]


def test_list_and_filter_runs(client: httpx.Client, served: tuple[Server, str]) -> None:
    _, run_id = served
    listed = client.get("/runs").json()
    mine = next(r for r in listed if r["id"] == run_id)
    assert mine["status"] == "completed" and mine["progress"] == 1.0 and mine["tokens"] > 0
    assert mine["project"] == "farm" and mine["source"] == "cli"
    assert run_id in [r["id"] for r in client.get("/runs?status=completed&project=farm").json()]
    assert client.get("/runs?status=failed&project=farm").json() == []
    assert client.get("/runs?project=nope").json() == []
    assert len(client.get("/runs?limit=1").json()) == 1
    bad = client.get("/runs?status=bogus")
    assert bad.status_code == 422 and bad.json()["fields"][0]["field"] == "query.status"
    assert client.get("/runs?limit=0").status_code == 422


def test_get_run_with_phases_and_budgets(client: httpx.Client, served: tuple[Server, str]) -> None:
    server, run_id = served
    view = client.get(f"/runs/{run_id}").json()
    assert view["status"] == "completed" and len(view["phases"]) == 13
    assert all(p["status"] == "passed" for p in view["phases"])
    budgets = view["budgets"]
    assert budgets["tokens_budget"] == 2_375_000  # the shipped phases' token budgets, summed
    ((tokens,),) = rows(
        server.store, "SELECT SUM(tokens_in + tokens_out) FROM model_calls WHERE run_id = ?", run_id
    )
    assert budgets["tokens_used"] == tokens == view["tokens"]
    intake = next(b for b in budgets["phases"] if b["phase"] == "intake")
    assert (
        intake["tokens_budget"] == 50_000 and 0 < intake["tokens_used"] <= intake["tokens_budget"]
    )
    attempts = client.get(f"/runs/{run_id}/phases").json()
    assert attempts[0]["phase"] == "intake" and len(attempts) == 13


def test_events_are_paged_by_id(client: httpx.Client, served: tuple[Server, str]) -> None:
    server, run_id = served
    ((total,),) = rows(server.store, "SELECT COUNT(*) FROM events WHERE run_id = ?", run_id)
    first = client.get(f"/runs/{run_id}/events?limit=10").json()
    assert len(first["events"]) == 10 and first["more"] is True
    assert first["events"][0]["type"] == "run.created"
    rest = client.get(f"/runs/{run_id}/events?after={first['next_after']}&limit=5000").json()
    assert rest["more"] is False and len(first["events"]) + len(rest["events"]) == total
    ids = [e["id"] for e in first["events"] + rest["events"]]
    assert ids == sorted(ids) and len(set(ids)) == total
    assert client.get(f"/runs/{run_id}/events?after=-1").status_code == 422


def test_finished_run_stream_replays_then_ends(
    client: httpx.Client, served: tuple[Server, str]
) -> None:
    _, run_id = served
    with client.stream(
        "GET", f"/runs/{run_id}/events/stream", headers={"Last-Event-ID": "5"}
    ) as reply:
        assert reply.headers["content-type"].startswith("text/event-stream")
        text = "".join(reply.iter_text())
    ids = [int(line[4:]) for line in text.splitlines() if line.startswith("id: ")]
    assert ids[0] == 6 and "event: run.completed" in text
    assert text.rstrip().splitlines()[-2] == "event: end"


def test_artifacts_with_content(client: httpx.Client, served: tuple[Server, str]) -> None:
    _, run_id = served
    listed = client.get(f"/runs/{run_id}/artifacts").json()
    spec = next(a for a in listed if a["type"] == "IdeaSpec")
    one = client.get(f"/runs/{run_id}/artifacts/{spec['id']}").json()
    assert one["content"]["title"] and one["content_hash"] == spec["content_hash"]
    missing = client.get(f"/runs/{run_id}/artifacts/nope")
    assert missing.status_code == 404 and missing.json()["error"] == "artifact_not_found"


def test_questions_list_what_the_qav_loop_asked(
    client: httpx.Client, served: tuple[Server, str]
) -> None:
    _, run_id = served
    listed = client.get(f"/runs/{run_id}/questions").json()
    assert listed["questions"] and listed["answers"]
    assert {q["status"] for q in listed["questions"]} <= {"accepted", "rejected", "unknown"}
    answered = {a["question_id"] for a in listed["answers"]}
    assert answered == {q["id"] for q in listed["questions"]}  # an answer per question
    # the run was not started with --ask: nothing is open, so nothing can be answered
    answer = client.post(f"/runs/{run_id}/questions/q1/answer", json={"text": "yes"})
    assert answer.status_code == 400 and "no open question" in answer.json()["message"]
    bad = client.post(f"/runs/{run_id}/questions/q1/answer", json={"txt": "yes"})
    assert bad.status_code == 422
    assert {f["field"] for f in bad.json()["fields"]} == {"text", "txt"}


def test_gates_list_every_verdict_and_a_passed_gate_cannot_be_waived(
    client: httpx.Client, served: tuple[Server, str]
) -> None:
    _, run_id = served
    gates = client.get(f"/runs/{run_id}/gates").json()["gates"]
    assert {g["phase"] for g in gates if g["passed"]} == set(PHASES)
    assert all(
        0 <= g["score"] <= 1 and g["result"]["evidence"]["guards"] is not None for g in gates
    )
    body = {"justification": "accepted risk for the beta", "expires_at": "2030-01-01T00:00:00Z"}
    waive = client.post(f"/runs/{run_id}/phases/prd/waive", json=body)
    assert waive.status_code == 409 and "no failed gate" in waive.json()["message"]
    short = client.post(f"/runs/{run_id}/phases/prd/waive", json={**body, "justification": "x"})
    assert short.status_code == 422 and short.json()["fields"][0]["field"] == "justification"


@pytest.mark.parametrize(
    ("fmt", "media", "start"),
    [
        ("json", "application/json", b"{"),
        ("html", "text/html", b"<!doctype html"),
        ("pdf", "application/pdf", b"%PDF"),
        ("md", "text/markdown", b"#"),
    ],
)
def test_dossier_downloads(
    client: httpx.Client, served: tuple[Server, str], fmt: str, media: str, start: bytes
) -> None:
    _, run_id = served
    reply = client.get(f"/runs/{run_id}/dossier", params={"format": fmt})
    assert reply.status_code == 200 and reply.headers["content-type"].startswith(media)
    assert reply.content.lstrip()[: len(start)].lower() == start.lower()
    assert f"dossier-{run_id}-" in reply.headers["content-disposition"]
    assert len(reply.headers["x-dossier-sha256"]) == 64


def test_dossier_format_is_validated(client: httpx.Client, served: tuple[Server, str]) -> None:
    reply = client.get(f"/runs/{served[1]}/dossier", params={"format": "docx"})
    assert reply.status_code == 422 and reply.json()["fields"][0]["field"] == "query.format"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/runs/nope"),
        ("GET", "/runs/nope/phases"),
        ("GET", "/runs/nope/events"),
        ("GET", "/runs/nope/events/stream"),
        ("GET", "/runs/nope/artifacts"),
        ("GET", "/runs/nope/questions"),
        ("GET", "/runs/nope/gates"),
        ("GET", "/runs/nope/dossier"),
        ("POST", "/runs/nope/pause"),
        ("POST", "/runs/nope/resume"),
        ("POST", "/runs/nope/cancel"),
        ("POST", "/runs/nope/phases/intake/retry"),
    ],
)
def test_unknown_run_is_404(client: httpx.Client, method: str, path: str) -> None:
    reply = client.request(method, path)
    assert reply.status_code == 404
    assert reply.json()["error"] == "run_not_found" and reply.json()["run_id"] == "nope"
    assert reply.json()["hint"]


def test_illegal_transitions_are_409(client: httpx.Client, served: tuple[Server, str]) -> None:
    _, run_id = served
    for path in ("pause", "cancel", "resume"):
        reply = client.post(f"/runs/{run_id}/{path}")
        assert reply.status_code == 409, path
        assert reply.json()["error"] == "illegal_state" and "completed" in reply.json()["message"]
    passed = client.post(f"/runs/{run_id}/phases/intake/retry")
    assert passed.status_code == 409 and "has passed" in passed.json()["message"]
    unknown = client.post(f"/runs/{run_id}/phases/nope/retry")
    assert unknown.status_code == 404 and unknown.json()["error"] == "phase_not_found"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "idea"),
        ({"idea": "ab"}, "idea"),
        ({"idea": IDEA, "constraints": {"budget_usd": -1}}, "constraints.budget_usd"),
        ({"idea": IDEA, "constraints": {"compliance": ["FOO"]}}, "constraints.compliance.0"),
        ({"idea": IDEA, "colour": "red"}, "colour"),
        ({"idea": IDEA, "model": "no colon"}, "model"),
    ],
)
def test_bad_run_body_names_the_field(client: httpx.Client, body: object, field: str) -> None:
    reply = client.post("/runs", json=body)
    assert reply.status_code == 422
    assert field in [f["field"] for f in reply.json()["fields"]]
    assert field in reply.json()["message"]


def test_unusable_idea_is_422(client: httpx.Client) -> None:
    reply = client.post("/runs", json={"idea": "   \x00   "})
    assert reply.status_code == 422 and reply.json()["error"] == "invalid_input"


def test_create_run_drives_it_in_the_server(client: httpx.Client) -> None:
    reply = client.post(
        "/runs", json={"idea": IDEA, "project": "api", "constraints": {"budget_usd": 900}}
    )
    assert reply.status_code == 202
    run_id = reply.json()["id"]
    assert reply.json()["driven_by"] == "server" and reply.json()["links"]["stream"]
    wait_until(
        lambda: client.get(f"/runs/{run_id}").json()["status"] == "completed",
        timeout=600,  # the shipped pipeline, real tools included
        what="the server to drive the run to completion",
        every=0.3,
    )
    view = client.get(f"/runs/{run_id}").json()
    assert view["source"] == "api" and view["constraints"] == {"budget_usd": 900.0}


def test_detached_run_waits_for_workers_and_can_be_cancelled(client: httpx.Client) -> None:
    run_id = client.post("/runs?detach=true", json={"idea": IDEA}).json()["id"]
    assert client.get(f"/runs/{run_id}").json()["status"] == "created"
    paused = client.post(f"/runs/{run_id}/pause")
    assert paused.status_code == 409 and "not running" in paused.json()["message"]
    cancelled = client.post(f"/runs/{run_id}/cancel", json={"reason": "changed my mind"})
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    assert cancelled.json()["error"] == "changed my mind"
    assert client.post(f"/runs/{run_id}/cancel").status_code == 409
    bad = client.post(f"/runs/{run_id}/cancel", json={"reason": ""})
    assert bad.status_code == 422 and bad.json()["fields"][0]["field"] == "reason"


def test_metrics_match_the_store(client: httpx.Client, served: tuple[Server, str]) -> None:
    server, _ = served
    text = client.get("/metrics").text
    samples = _samples(text)
    for status, count in rows(server.store, "SELECT status, COUNT(*) FROM runs GROUP BY status"):
        assert samples[f'ideamine_runs{{status="{status}"}}'] == count
    for phase, count, total in rows(
        server.store, "SELECT phase, COUNT(*), SUM(duration_ms) FROM phase_metrics GROUP BY phase"
    ):
        assert samples[f'ideamine_phase_duration_seconds_count{{phase="{phase}"}}'] == count
        assert samples[f'ideamine_phase_duration_seconds_sum{{phase="{phase}"}}'] == pytest.approx(
            total / 1000
        )
    for phase, tokens_in, tokens_out in rows(
        server.store,
        "SELECT t.phase, SUM(m.tokens_in), SUM(m.tokens_out) FROM model_calls m "
        "JOIN tasks t ON t.id = m.task_id GROUP BY t.phase",
    ):
        assert samples[f'ideamine_tokens_total{{direction="input",phase="{phase}"}}'] == tokens_in
        assert samples[f'ideamine_tokens_total{{direction="output",phase="{phase}"}}'] == tokens_out
    ((cached,),) = rows(server.store, "SELECT COUNT(*) FROM model_calls WHERE outcome = 'cached'")
    assert samples["ideamine_call_cache_hits_total"] == cached
    ((gates,),) = rows(server.store, "SELECT COUNT(*) FROM gate_evaluations")
    evaluated = sum(v for k, v in samples.items() if k.startswith("ideamine_gate_evaluated_total{"))
    assert gates >= 13 and evaluated == gates
    assert "ideamine_workers_busy" in samples and "# TYPE ideamine_tasks_in_progress gauge" in text


def _samples(text: str) -> dict[str, float]:
    found = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            found[name] = float(value)
    return found
