"""The real CLI on a real model endpoint: the full pipeline against the local
OpenAI-compatible server, per-call token and cost rows that add up to ``status --json``,
``replay`` byte for byte with the server stopped, and the API key nowhere to be found.

The server is not a model (see ``tests/support/fake_llm_server.py``): it answers each prompt
with the output the offline templates produced for the same prompt in an earlier offline run,
so the pipeline's context, and therefore every later prompt, evolves exactly as offline. The
runs stop after architecture, before real tools measure anything (measurements differ between
runs, and so would every prompt built on them), and leave Q/A/V and the contradictions guard's
model judge off (their calls belong to the gate judge's task, whose output is the verdict, not
a reply the server could replay).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
import yaml
from tests.acceptance.conftest import artifact_hashes, cli_env, ideamine, only_run_id
from tests.support.configs import write_shipped_phases
from tests.support.fake_llm_server import FakeLLMServer, Received, Scripted

from ideamine.canonical import canonical_json, sha256_hex
from ideamine.stores.sqlite import SqliteStore

pytestmark = pytest.mark.slow

IDEA = "A marketplace where local farmers sell produce to nearby restaurants"
KEY = "sk-acceptance-5b1f0c2e9d8a7f6e5d4c"
PRICE_IN, PRICE_OUT = 0.15, 0.6  # openai:gpt-4o-mini in the shipped pricing table


DEFAULTS = Path(__file__).resolve().parents[2] / "src" / "ideamine" / "config" / "defaults"
UNTIL = ["intake", "ideation", "critique", "prd", "bizdev", "architecture"]


def _design_only(root: Path) -> Path:
    """The shipped phases up to architecture, Q/A/V off."""
    (root / "phases").mkdir(parents=True)
    pipeline = yaml.safe_load((DEFAULTS / "pipeline.yaml").read_text())
    pipeline["phases"] = UNTIL
    (root / "pipeline.yaml").write_text(yaml.safe_dump(pipeline))
    for name in UNTIL:
        phase = yaml.safe_load((DEFAULTS / "phases" / f"{name}.yaml").read_text())
        phase["qav"]["enabled"] = False
        for guard in phase.get("guards", []):
            if guard["type"] == "contradictions":  # the server replays answers; it cannot judge
                guard["config"]["judge"] = False
        (root / "phases" / f"{name}.yaml").write_text(yaml.safe_dump(phase))
    return root


def _offline_answers(db: Path) -> dict[str, str]:
    """Prompt hash → the JSON the offline model answered it with, from an offline run."""

    async def load() -> dict[str, str]:
        store = SqliteStore(db)
        try:
            [run] = await store.list_runs(1)
            answers: dict[str, str] = {}
            for call in await store.model_calls(run.id):
                outputs = await store.outputs(run.id, str(call["phase"]), int(str(call["attempt"])))
                answers.setdefault(
                    str(call["prompt_hash"]), canonical_json(outputs[str(call["key"])])
                )
            return answers
        finally:
            await store.close()

    return asyncio.run(load())


def _calls(db: Path, run_id: str) -> list[dict[str, object]]:
    async def load() -> list[dict[str, object]]:
        store = SqliteStore(db)
        try:
            return await store.model_calls(run_id)
        finally:
            await store.close()

    return asyncio.run(load())


def _no_key_in(*texts: str) -> None:
    for text in texts:
        assert KEY not in text


def test_full_pipeline_on_the_openai_server_then_replay_without_it(tmp_path: Path) -> None:
    config = str(_design_only(tmp_path / "config"))
    oracle = ideamine("run", IDEA, "--config", config, "--store", "oracle.db", "-q", cwd=tmp_path)
    assert oracle.returncode == 0, oracle.stderr
    answers = _offline_answers(tmp_path / "oracle.db")

    def respond(request: Received) -> Scripted:
        answer = answers.get(sha256_hex(request.prompt))
        if answer is None:
            return Scripted(status=400, message="the fake server has no answer for this prompt")
        return Scripted(content=answer, chunks=3)

    env = cli_env(
        {"OPENAI_API_KEY": KEY, "IDEAMINE_LOG": "info", "IDEAMINE_MODEL": "openai:gpt-4o-mini"}
    )
    server = FakeLLMServer(api_key=KEY, responder=respond).start()
    try:
        env["OPENAI_BASE_URL"] = server.openai_url
        live = ideamine(
            "run", IDEA, "--config", config, "--store", "live.db", cwd=tmp_path, env=env
        )
    finally:
        server.stop()
    assert live.returncode == 0, live.stdout + live.stderr
    assert "default model openai:gpt-4o-mini" in live.stdout
    run_id = only_run_id(tmp_path, "live.db")
    requests = server.requests("openai")
    assert requests and all(r.body["stream"] for r in requests)  # 4000-token agents stream

    # every call is on record with its tokens and cost, and they add up to the run's totals
    calls = _calls(tmp_path / "live.db", run_id)
    assert len(calls) == len(requests)
    for call in calls:
        assert (call["provider"], call["model"], call["outcome"]) == ("openai", "gpt-4o-mini", "ok")
        tokens_in, tokens_out = int(str(call["tokens_in"])), int(str(call["tokens_out"]))
        assert tokens_in > 0 and tokens_out > 0
        expected = (tokens_in * PRICE_IN + tokens_out * PRICE_OUT) / 1e6
        assert float(str(call["cost_usd"])) == pytest.approx(expected)
    status = ideamine("status", run_id, "--store", "live.db", "--json", cwd=tmp_path)
    view = json.loads(status.stdout)
    assert view["status"] == "completed"
    assert view["tokens"] == sum(
        int(str(c["tokens_in"])) + int(str(c["tokens_out"])) for c in calls
    )
    # status rounds to a millionth of a dollar
    total = sum(float(str(c["cost_usd"])) for c in calls)
    assert float(view["cost_usd"]) == pytest.approx(total, abs=1e-6)
    assert float(view["cost_usd"]) > 0

    # the server is stopped: replay must come from the call cache alone, byte for byte
    replayed = ideamine("replay", run_id, "--store", "live.db", cwd=tmp_path, env=cli_env())
    assert replayed.returncode == 0, replayed.stdout + replayed.stderr
    assert "replay identical" in replayed.stdout
    runs = json.loads(ideamine("runs", "--json", "--store", "live.db", cwd=tmp_path).stdout)
    copy = next(r["id"] for r in runs if r["id"] != run_id)
    assert artifact_hashes(tmp_path, copy, "live.db") == artifact_hashes(
        tmp_path, run_id, "live.db"
    )
    assert {c["outcome"] for c in _calls(tmp_path / "live.db", copy)} == {"cached"}
    assert len(server.requests()) == len(requests)  # nothing reached a provider

    # the key is nowhere: not in the store, the logs, the ledger or the artifacts
    exported = ideamine("artifacts", run_id, "--store", "live.db", "--export", "out", cwd=tmp_path)
    events = ideamine("events", run_id, "--store", "live.db", "--json", cwd=tmp_path)
    _no_key_in(live.stdout, live.stderr, replayed.stdout, replayed.stderr, events.stdout)
    assert exported.returncode == 0
    for path in [*tmp_path.glob("live.db*"), *(tmp_path / "out").iterdir()]:
        assert KEY.encode() not in path.read_bytes(), path


def test_a_model_without_its_key_is_refused_with_a_hint(tmp_path: Path) -> None:
    result = ideamine("run", IDEA, "--model", "openai:gpt-4o", cwd=tmp_path, env=cli_env())
    assert result.returncode == 2
    assert "$OPENAI_API_KEY is not set" in result.stderr
    assert "--model offline:template" in result.stderr
    assert not (tmp_path / "ideamine.db").exists() or "started" not in result.stdout


def test_no_key_and_no_flag_runs_offline_and_says_so_once(tmp_path: Path) -> None:
    config = str(write_shipped_phases(tmp_path / "cfg", ["intake", "ideation"]))
    result = ideamine("run", IDEA, "--config", config, cwd=tmp_path, env=cli_env())
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("offline:template") == 1
    assert "deterministic templates" in result.stdout


def test_unknown_provider_in_model_flag(tmp_path: Path) -> None:
    result = ideamine("run", IDEA, "--model", "gemini:pro", cwd=tmp_path, env=cli_env())
    assert result.returncode == 2
    assert "unknown model provider 'gemini'" in result.stderr
