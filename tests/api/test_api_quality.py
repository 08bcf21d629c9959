"""The quality loop over the HTTP API, on a real uvicorn server and real CLI runs sharing one
SQLite store: a run started with ``ideamine run --ask`` waits with open questions and goes on
only once the API has answered the last of them (each answer recorded as a person's); a run
whose gate failed is waived over the API and completes, a second waiver is refused, and so is
one that expires in the past or a waiver of a gate that failed on a secret."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from tests.api.serving import Server, ideamine, serving, wait_until
from tests.support.configs import phase_document, write_callable_pipeline

from ideamine.agents.base import AgentContext

IDEA = "A marketplace where local farmers sell produce to nearby restaurants"
WAIVER = {
    "justification": "accepted for the beta: the NFRs follow in the next release",
    "expires_at": "2030-01-31T23:59:59Z",
}


def leaked_secret(ctx: AgentContext) -> dict[str, object]:
    """A SecretsScanReport in which detect-secrets found a key (a gate no one may waive)."""
    return {
        "scanned": True,
        "count": 1,
        "findings": [{"file": "app/settings.py", "line": 3, "type": "AWS access key"}],
        "evidence": {"executed": True, "tool": "detect-secrets"},
    }


def _agent(root: Path, name: str, phase: str, artifact: str, function: str) -> None:
    document = {
        "name": name,
        "phase": phase,
        "role": "test agent",
        "artifact_type": artifact,
        "output_schema": {"type": "object"},
        "callable": function,
    }
    (root / "agents" / f"{name}.yaml").write_text(yaml.safe_dump(document))


def failing_gate_pipeline(root: Path, *, secret: bool = False) -> Path:
    """intake → PHASE → release of the small callable pipeline, whose middle phase's gate
    cannot pass: ``prd`` writes two NFRs where its coverage guard wants three (a waivable
    failure); with ``secret``, ``security`` reports a leaked key (never waivable)."""
    middle = "security" if secret else "prd"
    write_callable_pipeline(
        root, {"intake": [], middle: ["intake"], "release": [middle]}, agents_per_phase=1
    )
    for stale in (root / "agents").glob(f"{middle.capitalize()}Agent*.yaml"):
        stale.unlink()
    if secret:
        agents = [("SecretsAgent", "SecretsScanReport", "tests.api.test_api_quality:leaked_secret")]
        guard = {"type": "secrets_detected", "config": {"max": 0}}
        rubrics = {"secrets": 1.0}
    else:
        agents = [
            ("StoryCutterAgent", "UserStories", "tests.support.agents:stories"),
            ("NFRsAgent", "NFRs", "tests.support.agents:nfrs_always_short"),
        ]
        guard = {"type": "coverage", "config": {"min_stories": 5, "min_nfrs": 3}}
        rubrics = {"coverage": 1.0}
    document = phase_document(middle, ["intake"], [name for name, _, _ in agents])
    document["guards"] = [guard]
    document["gate"] = {"pass_threshold": 0.9, "max_attempts": 1, "rubrics": rubrics}
    document["artifacts"] = [{"type": artifact} for _, artifact, _ in agents]
    (root / "phases" / f"{middle}.yaml").write_text(yaml.safe_dump(document))
    for name, artifact, function in agents:
        _agent(root, name, middle, artifact, function)
    return root


def cli_run(cwd: Path, *args: str) -> str:
    """``ideamine run -q ARGS IDEA``; the id of the run it made (from its summary line, so
    runs other processes create meanwhile do not matter)."""
    done = ideamine("run", "-q", *args, IDEA, cwd=cwd)
    assert done.returncode in (0, 1), done.stderr
    found = re.search(r"^run ([0-9a-f]{12}) ", done.stdout, re.MULTILINE)
    assert found, done.stdout
    return found.group(1)


@dataclass
class Runs:
    server: Server
    cwd: Path
    asked: str  # started with --ask: needs attention, questions open
    failed: str  # prd's gate failed: needs attention, waivable
    secret: str  # security's gate failed on a secret: needs attention, never waivable


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runs]:
    cwd = tmp_path_factory.mktemp("quality")
    failed = cli_run(cwd, "--config", str(failing_gate_pipeline(cwd / "failing")))
    secret = cli_run(cwd, "--config", str(failing_gate_pipeline(cwd / "secret", secret=True)))
    asked = cli_run(cwd, "--ask")
    with serving(cwd) as server:
        yield Runs(server=server, cwd=cwd, asked=asked, failed=failed, secret=secret)


@pytest.fixture
def client(runs: Runs) -> Iterator[httpx.Client]:
    with runs.server.client() as client:
        yield client


def _run(client: httpx.Client, run_id: str) -> dict[str, Any]:
    reply = client.get(f"/runs/{run_id}")
    assert reply.status_code == 200, reply.text
    return dict(reply.json())


def _phase(view: dict[str, Any], name: str) -> dict[str, Any]:
    return dict(next(p for p in view["phases"] if p["phase"] == name))


def test_answering_the_last_open_question_resumes_the_run(client: httpx.Client, runs: Runs) -> None:
    listed = ideamine("questions", runs.asked, "--json", cwd=runs.cwd)
    assert listed.returncode == 0, listed.stderr
    waiting = [q["id"] for q in json.loads(listed.stdout)]
    view = _run(client, runs.asked)
    assert view["status"] == "needs_attention" and _phase(view, "intake")["status"] == "ready"
    assert len(waiting) >= 2, "`ideamine questions` lists fewer than 2 open questions"
    assert view["questions"]["open"] == len(waiting)
    api_open = [q["id"] for q in client.get(f"/runs/{runs.asked}/questions").json()["questions"]]
    assert set(waiting) <= set(api_open)

    first, *rest = waiting
    for answered, question in enumerate(rest, start=1):
        reply = client.post(
            f"/runs/{runs.asked}/questions/{question}/answer", json={"text": f"answer {answered}"}
        )
        assert reply.status_code == 201, reply.text
        left = len(waiting) - answered
        assert reply.json() == {"question_id": question, "resumed": False, "open": left}
        assert _run(client, runs.asked)["status"] == "needs_attention"  # not before the last
    again = client.post(f"/runs/{runs.asked}/questions/{waiting[-1]}/answer", json={"text": "x"})
    assert again.status_code == 400 and "no open question" in again.json()["message"]

    last = client.post(
        f"/runs/{runs.asked}/questions/{first}/answer", json={"text": "Yes, for the pilot"}
    )
    assert last.status_code == 201 and last.json()["resumed"] is True, last.text
    wait_until(
        lambda: _phase(_run(client, runs.asked), "intake")["status"] == "passed",
        timeout=120,
        what="the intake phase that waited for the answers to pass",
    )
    view = _run(client, runs.asked)
    assert view["status"] in ("running", "needs_attention", "completed")
    assert view["questions"]["answered"] == len(waiting)
    assert next(g for g in view["gates"] if g["phase"] == "intake")["passed"] is True
    events = client.get(f"/runs/{runs.asked}/events?limit=500").json()["events"]
    assert any(e["type"] == "run.resumed" for e in events)

    found = client.get(f"/runs/{runs.asked}/questions").json()
    people = {a["question_id"]: a for a in found["answers"] if a["source"] == "person"}
    assert set(people) == set(waiting)
    assert people[first]["text"] == "Yes, for the pilot" and people[first]["accepted"]
    statuses = {q["id"]: q["status"] for q in found["questions"]}
    assert all(statuses[q] == "answered" for q in waiting)


def test_a_failed_gate_is_waived_once_and_the_run_completes(
    client: httpx.Client, runs: Runs
) -> None:
    view = _run(client, runs.failed)
    assert view["status"] == "needs_attention"
    (prd,) = [g for g in view["gates"] if g["phase"] == "prd"]
    assert prd["passed"] is False and prd["waived"] is False and prd["score"] < 0.9
    assert any("fewer than 3" in r for r in prd["reasons"])
    (verdict,) = [
        g for g in client.get(f"/runs/{runs.failed}/gates").json()["gates"] if g["phase"] == "prd"
    ]
    assert verdict["waiver"] is None and verdict["result"]["issues"][0]["waivable"] is True

    past = client.post(
        f"/runs/{runs.failed}/phases/prd/waive", json={**WAIVER, "expires_at": "2020-01-01"}
    )
    assert past.status_code == 422, past.text
    assert [f["field"] for f in past.json()["fields"]] == ["expires_at"]
    assert "expires_at" in past.json()["message"]
    short = client.post(
        f"/runs/{runs.failed}/phases/prd/waive", json={**WAIVER, "justification": "ok"}
    )
    assert short.status_code == 422 and short.json()["fields"][0]["field"] == "justification"

    waived = client.post(f"/runs/{runs.failed}/phases/prd/waive", json=WAIVER)
    assert waived.status_code == 202, waived.text
    assert waived.json() == {"run_id": runs.failed, "phase": "prd", "attempt": 1}
    wait_until(
        lambda: _run(client, runs.failed)["status"] == "completed",
        timeout=60,
        what="the waived run to complete",
    )
    again = client.post(f"/runs/{runs.failed}/phases/prd/waive", json=WAIVER)
    assert again.status_code == 409 and "no failed gate" in again.json()["message"]

    (prd,) = [g for g in _run(client, runs.failed)["gates"] if g["phase"] == "prd"]
    assert prd["waived"] is True and prd["passed"] is False  # the verdict stays as judged
    (verdict,) = [
        g for g in client.get(f"/runs/{runs.failed}/gates").json()["gates"] if g["phase"] == "prd"
    ]
    assert verdict["waiver"]["reason"] == WAIVER["justification"]
    assert verdict["waiver"]["expires_at"].startswith("2030-01-31T23:59:59")


def test_a_gate_failed_on_a_secret_is_never_waived(client: httpx.Client, runs: Runs) -> None:
    refused = client.post(f"/runs/{runs.secret}/phases/security/waive", json=WAIVER)
    assert refused.status_code == 409, refused.text
    body = refused.json()
    assert body["error"] == "illegal_state" and "can never be waived" in body["message"]
    assert "AWS access key" in body["message"] and body["run_id"] == runs.secret
    assert _run(client, runs.secret)["status"] == "needs_attention"


def test_quality_endpoints_are_documented_with_examples_and_errors(client: httpx.Client) -> None:
    spec = client.get("/openapi.json").json()
    schemas = spec["components"]["schemas"]
    operations = {
        ("get", "/runs/{run_id}/questions"): ("200", "QuestionsView", set()),
        ("post", "/runs/{run_id}/questions/{question_id}/answer"): (
            "201",
            "AnswerReceipt",
            {"400"},
        ),
        ("get", "/runs/{run_id}/gates"): ("200", "GatesView", set()),
        ("post", "/runs/{run_id}/phases/{phase}/waive"): ("202", "WaiveReceipt", {"400", "409"}),
    }
    for (method, path), (ok, model, errors) in operations.items():
        responses = spec["paths"][path][method]["responses"]
        assert responses[ok]["content"]["application/json"]["schema"]["$ref"].endswith(model)
        assert "example" in schemas[model], model
        assert {"404", "422", "503"} | errors <= set(responses), path
        for code in errors:
            documented = responses[code]["content"]["application/json"]
            assert documented["schema"]["$ref"].endswith("Problem"), (path, code)
            assert documented["example"]["error"] and documented["example"]["message"]
    status = schemas["QuestionView"]["properties"]["status"]["description"]
    assert "open" in status and "answered" in status
