"""Loop until pass: a failed gate's issues pick an auto-fix; the next attempt reruns only
what the fix names, carries the rest over, and sees the gate's feedback; a failure that
repeats identically is escalated before max_attempts."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import pytest
from tests.support.configs import write_coverage_loop
from tests.support.fake_llm_server import FakeLLMServer, Received, Scripted

from ideamine import service
from ideamine.config.loader import load_pipeline
from ideamine.engine.states import RunStatus
from ideamine.runtime.runner import Runner
from ideamine.stores.dossiers import DossierStore
from ideamine.stores.records import EventRecord


def _run(tmp_path: Path, config: Path) -> tuple[RunStatus, list[EventRecord], list[Any], str]:
    async def go() -> tuple[RunStatus, list[EventRecord], list[Any], str]:
        pipeline = load_pipeline(config)
        store = await service.open_store(str(tmp_path / "x.db"))
        try:
            run = await service.create_run(
                store, pipeline, "farm produce", constraints={}, source="cli", config_dir=config
            )
            await Runner(store, pipeline).drive(run.id)
            final = await store.get_run(run.id)
            verdicts = await DossierStore(store).gate_evaluations(run.id)
            return final.status, await service.all_events(store, run.id), verdicts, run.id
        finally:
            await store.close()

    return asyncio.run(go())


@pytest.fixture
def exec_log(tmp_path: Path) -> Path:
    path = tmp_path / "exec.log"
    os.environ["IDEAMINE_TEST_EXEC_LOG"] = str(path)
    yield path
    del os.environ["IDEAMINE_TEST_EXEC_LOG"]


def test_missing_coverage_reruns_only_the_missing_agent_and_then_passes(
    tmp_path: Path, exec_log: Path
) -> None:
    """NFRsAgent writes enough NFRs only when the gate's feedback reaches its context."""
    config = write_coverage_loop(tmp_path / "cfg", "tests.support.agents:nfrs_from_feedback")
    status, events, verdicts, _ = _run(tmp_path, config)
    assert status is RunStatus.COMPLETED

    gates = [e for e in events if e.type.startswith("phase.gate.")]
    assert [(e.type, e.payload["attempt"]) for e in gates] == [
        ("phase.gate.failed", 1),
        ("phase.gate.passed", 2),
    ]
    failed, passed = gates
    assert failed.payload["score"] < 0.9 <= passed.payload["score"] == 1.0
    assert failed.payload["issues"][0]["fix_strategy"] == "add-missing-agents"
    assert "NFRs.nfrs has 2 nfrs, fewer than 3" in failed.payload["issues"][0]["description"]
    assert failed.payload["strategies"] == ["add-missing-agents"]
    started = [e for e in events if e.type == "phase.started"]
    assert started[1].payload["rerun"] == ["NFRsAgent"]
    carried = [e for e in events if e.type == "phase.progress" and "carried" in e.payload]
    assert carried[0].payload["carried"] == ["00.StoryCutterAgent"]

    # the ledger's verdicts are the gate evaluation rows, with their scores
    assert [(v.attempt, v.passed, v.score) for v in verdicts] == [
        (1, False, failed.payload["score"]),
        (2, True, 1.0),
    ]
    # only the missing agent ran again: StoryCutterAgent once, NFRsAgent twice
    runs = [line.split()[2] for line in exec_log.read_text().splitlines()]
    assert runs.count("00.StoryCutterAgent") == 1
    assert runs.count("01.NFRsAgent") == 2


def test_a_failure_that_repeats_identically_escalates_before_max_attempts(
    tmp_path: Path, exec_log: Path
) -> None:
    config = write_coverage_loop(
        tmp_path / "cfg", "tests.support.agents:nfrs_always_short", max_attempts=5
    )
    status, events, verdicts, _ = _run(tmp_path, config)
    assert status is RunStatus.NEEDS_ATTENTION
    assert [v.attempt for v in verdicts] == [1, 2]  # escalated at 2 of 5
    attention = [e for e in events if e.type == "run.needs_attention"]
    assert len(attention) == 1 and "no progress" in attention[0].payload["reason"]
    assert attention[0].payload["attempt"] == 2


def test_the_contradictions_guard_asks_a_real_model_and_fails_closed_when_it_errs(
    tmp_path: Path, exec_log: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a real model the contradictions guard also asks the phase's model; a judge whose
    reply is unusable fails the guard (closed), it never passes it."""
    seen: list[str] = []

    def respond(request: Received) -> Scripted:
        seen.append(request.prompt)
        return Scripted(content="this is not JSON")

    server = FakeLLMServer(api_key="sk-test-judge", responder=respond).start()
    try:
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test-judge")
        monkeypatch.setenv("OPENAI_BASE_URL", server.openai_url)
        config = write_coverage_loop(
            tmp_path / "cfg",
            "tests.support.agents:nfrs_from_feedback",
            max_attempts=1,
            model="openai:gpt-4o-mini",
            guards=[{"type": "contradictions", "config": {"max": 0}}],
        )
        status, _, verdicts, _ = _run(tmp_path, config)
    finally:
        server.stop()
    assert seen and all("contradictions" in prompt for prompt in seen)
    assert status is RunStatus.NEEDS_ATTENTION
    guard = next(
        g for g in verdicts[0].result["evidence"]["guards"] if g["type"] == "contradictions"
    )
    assert guard["passed"] is False
    assert any("model judge failed" in reason for reason in guard["reasons"])
