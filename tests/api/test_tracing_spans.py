"""The spans of one run form the tree run → phase → task → model call (SPEC §9), with the
GenAI semantic-convention attributes on model calls, captured by an in-memory exporter while
the real runtime drives an offline run."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from tests.api.serving import cli_env, ideamine
from tests.support.configs import write_callable_pipeline, write_shipped_phases

from ideamine import service
from ideamine.config.loader import load_pipeline
from ideamine.observability.tracing import (
    configure_tracing,
    disable_tracing,
    span_id_of,
    trace_id_of,
)
from ideamine.runtime.runner import Runner

IDEA = "A marketplace where local farmers sell produce to nearby restaurants"
SHORT = ["intake", "ideation"]  # a real run with model calls, in seconds
DESIGN = ["intake", "ideation", "critique", "prd", "bizdev", "architecture"]  # six levels


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    memory = InMemorySpanExporter()
    configure_tracing(memory, batch=False)
    yield memory
    disable_tracing()


def _drive(db: Path, config: Path | None = None) -> str:
    async def go() -> str:
        store = await service.open_store(str(db))
        try:
            pipeline = load_pipeline(config)
            run = await service.create_run(
                store, pipeline, IDEA, constraints={}, source="cli", config_dir=config
            )
            finished = await Runner(store, pipeline).drive(run.id)
            assert finished.status.value == "completed"
            return run.id
        finally:
            await store.close()

    return asyncio.run(go())


def test_spans_of_a_run_form_one_tree(tmp_path: Path, exporter: InMemorySpanExporter) -> None:
    run_id = _drive(tmp_path / "ideamine.db", write_shipped_phases(tmp_path / "cfg", DESIGN))
    spans = list(exporter.get_finished_spans())
    by_id = {s.context.span_id: s for s in spans}
    assert {s.context.trace_id for s in spans} == {trace_id_of(run_id)}

    (run,) = [s for s in spans if s.name.startswith("run ")]
    assert run.parent is None and run.context.span_id == span_id_of(run_id)
    assert run.attributes is not None and run.attributes["ideamine.run.status"] == "completed"

    phases = [s for s in spans if s.name.startswith("phase ")]
    assert len(phases) == len(DESIGN)
    assert all(p.parent and p.parent.span_id == run.context.span_id for p in phases)

    with closing(sqlite3.connect(tmp_path / "ideamine.db")) as db:
        ((task_rows,),) = db.execute("SELECT COUNT(*) FROM tasks").fetchall()
        ((call_rows,),) = db.execute("SELECT COUNT(*) FROM model_calls").fetchall()
    tasks = [s for s in spans if s.name.startswith("task ")]
    assert len(tasks) == task_rows > 13  # every agent and every phase's gate judge
    for task in tasks:
        parent = by_id[task.parent.span_id] if task.parent else None
        assert parent is not None and parent.name == f"phase {_attr(task, 'ideamine.phase')}"
        assert _attr(task, "ideamine.task.outcome") == "succeeded"

    calls = [s for s in spans if s.name.startswith("chat ")]
    assert len(calls) == call_rows > 0
    for call in calls:
        assert call.parent is not None and by_id[call.parent.span_id].name.startswith("task ")
        assert _attr(call, "gen_ai.operation.name") == "chat"
        assert _attr(call, "gen_ai.system") == "offline"
        assert _attr(call, "gen_ai.request.model")
        assert int(str(_attr(call, "gen_ai.usage.input_tokens"))) > 0
        assert int(str(_attr(call, "gen_ai.usage.output_tokens"))) > 0
        assert call.start_time is not None and call.end_time is not None
        assert call.start_time <= call.end_time


def test_a_gate_judged_in_its_step_has_its_task_and_phase_spans(
    tmp_path: Path, exporter: InMemorySpanExporter
) -> None:
    """Gates that call no model are judged in their fan-ins' steps, not by tasks: each phase
    still gets its span, and the settled gate task its task span under it; so does a join's
    first side, whose fan-in the step holds for the other's (``runtime.stepwrites``)."""
    dag = {
        "intake": [],
        "ideation": ["intake"],
        "critique": ["intake"],
        "review": ["ideation", "critique"],
    }
    config = write_callable_pipeline(tmp_path / "cfg", dag, agents_per_phase=2)
    run_id = _drive(tmp_path / "ideamine.db", config)
    spans = list(exporter.get_finished_spans())
    by_id = {s.context.span_id: s for s in spans}
    phases = {s.name: s for s in spans if s.name.startswith("phase ")}
    assert sorted(phases) == sorted(f"phase {name}" for name in dag)
    assert all(_attr(p, "ideamine.phase.status") == "passed" for p in phases.values())
    gates = [s for s in spans if s.name == "task ~gate"]
    assert len(gates) == len(dag)
    for gate in gates:
        assert gate.parent is not None
        parent = by_id[gate.parent.span_id]
        assert parent.name == f"phase {_attr(gate, 'ideamine.phase')}"
        assert _attr(gate, "ideamine.task.try") == 1
        assert (
            _attr(gate, "ideamine.task.id") == f"{run_id}.{_attr(gate, 'ideamine.phase')}.1.~gate"
        )
    with closing(sqlite3.connect(tmp_path / "ideamine.db")) as db:
        ((task_rows,),) = db.execute("SELECT COUNT(*) FROM tasks").fetchall()
    assert len([s for s in spans if s.name.startswith("task ")]) == task_rows


def test_tracing_is_off_by_default(tmp_path: Path) -> None:
    memory = InMemorySpanExporter()
    configure_tracing(memory, batch=False)
    disable_tracing()
    _drive(tmp_path / "ideamine.db", write_shipped_phases(tmp_path / "cfg", SHORT))
    assert memory.get_finished_spans() == ()


def _attr(span: ReadableSpan, name: str) -> object:
    assert span.attributes is not None
    return span.attributes.get(name)


def test_console_exporter_from_the_standard_variable(tmp_path: Path) -> None:
    """``OTEL_TRACES_EXPORTER=console`` makes any process (here ``ideamine run``) print its
    spans to stderr, leaving stdout to the command."""
    env = cli_env({"OTEL_TRACES_EXPORTER": "console"})
    config = str(write_shipped_phases(tmp_path / "cfg", SHORT))
    done = ideamine("run", "--detach", IDEA, "--config", config, cwd=tmp_path, env=env)
    assert done.returncode == 0 and len(done.stdout.strip()) == 12  # just the run id
    worked = ideamine("resume", "-q", done.stdout.strip(), cwd=tmp_path, env=env)
    assert worked.returncode == 0, worked.stderr
    assert '"gen_ai.usage.input_tokens"' in worked.stderr
    assert '"name": "phase intake"' in worked.stderr
