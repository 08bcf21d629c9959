"""The last outputs of phase attempts as the fan-in that records them reads them
(``runtime.finishing``): only writes it can take along, read back as the store would."""

from __future__ import annotations

from dataclasses import replace

from tests.support.records import running_task

from ideamine.engine.states import TaskStatus
from ideamine.runtime.advance import _KnownTasks
from ideamine.runtime.finishing import Finishing
from ideamine.stores.records import ModelCallRecord, OutputWrite, TaskChange, TaskRecord


def _write(task: TaskRecord, output: object, *calls: ModelCallRecord) -> OutputWrite:
    return OutputWrite(task_id=task.id, token="t", output=output, calls=calls)


CALL = ModelCallRecord(
    provider="offline",
    model="m1",
    prompt_hash="p" * 8,
    params={"temperature": 0},
    tokens_in=3,
    tokens_out=4,
    cost_usd=0.5,
    latency_ms=7,
    outcome="ok",
)


def test_outputs_read_back_as_json_values_by_key_of_their_attempt() -> None:
    a, b, other = running_task("00.A"), running_task("01.B"), running_task("00.S", phase="security")
    finishing = Finishing.of(
        [_write(a, {"xs": (1, 2)}), _write(b, "b"), _write(other, None)], [a, b, other]
    )
    assert finishing is not None
    assert finishing.run_id == "run-1"
    assert finishing.attempts == {("prd", 1), ("security", 1)}
    assert finishing.outputs("prd", 1) == {"00.A": {"xs": [1, 2]}, "01.B": "b"}  # a tuple: a list
    assert finishing.outputs("security", 1) == {"00.S": None}
    assert finishing.outputs("prd", 2) == {}


def test_model_calls_read_as_the_stores_rows_in_the_writes_order() -> None:
    a, b = running_task("00.A"), running_task("01.B")
    finishing = Finishing.of([_write(b, 1, CALL), _write(a, 2, CALL, CALL)], [b, a])
    assert finishing is not None
    rows = finishing.calls()
    assert [row["task_id"] for row in rows] == [b.id, a.id, a.id]
    assert rows[0] == {
        "task_id": b.id,
        "phase": "prd",
        "attempt": 1,
        "key": "01.B",
        "provider": "offline",
        "model": "m1",
        "prompt_hash": "pppppppp",
        "tokens_in": 3,
        "tokens_out": 4,
        "cost_usd": 0.5,
        "latency_ms": 7,
        "outcome": "ok",
    }


def test_settled_succeeds_only_the_finishing_tasks() -> None:
    a, b, c = running_task("00.A"), running_task("01.B"), running_task("02.C")
    failed = replace(c, status=TaskStatus.FAILED, error="boom")
    finishing = Finishing.of([_write(a, 1)], [a])
    assert finishing is not None
    settled = finishing.settled([a, b, failed])
    assert [(t.key, t.status, t.error) for t in settled] == [
        ("00.A", TaskStatus.SUCCEEDED, None),
        ("01.B", TaskStatus.RUNNING, None),
        ("02.C", TaskStatus.FAILED, "boom"),
    ]


def test_writes_it_cannot_take_along_are_left_to_be_recorded_on_their_own() -> None:
    a, b = running_task("00.A"), running_task("01.B")
    elsewhere = running_task("00.A", run_id="run-2")
    assert Finishing.of([], []) is None
    assert Finishing.of([_write(a, 1)], []) is None  # a task this process does not hold
    assert Finishing.of([_write(a, 1), _write(b, 2)], [b, a]) is None  # out of order
    assert Finishing.of([_write(a, 1), _write(a, 2)], [a, a]) is None  # written twice
    assert Finishing.of([_write(a, 1), _write(elsewhere, 2)], [a, elsewhere]) is None
    assert Finishing.of([_write(a, {1, 2})], [a]) is None  # a set is not JSON
    assert Finishing.of([_write(a, float("nan"))], [a]) is None
    odd = replace(CALL, params={"seed": object()})
    assert Finishing.of([_write(a, 1, odd)], [a]) is None


def _change(task: TaskRecord, status: TaskStatus) -> TaskChange:
    return TaskChange(
        id=task.id,
        phase=task.phase,
        attempt=task.attempt,
        key=task.key,
        agent=task.agent,
        iteration=task.iteration,
        status=status,
        error=None,
    )


def test_a_ride_is_tried_only_when_no_other_task_of_the_attempt_reads_as_open() -> None:
    """The advancer's last read of the run (``_KnownTasks``) decides whether outputs may be
    an attempt's last before anything is read: a task still pending or running elsewhere in
    the attempt means no; tasks it has not read yet (made since) do not count against."""
    a, b, c = running_task("00.A"), running_task("01.B"), running_task("02.C")
    finishing = Finishing.of([_write(a, 1), _write(b, 2)], [a, b])
    assert finishing is not None
    known = _KnownTasks()
    assert known.may_finish(finishing)  # nothing read yet
    known.merge([_change(a, TaskStatus.RUNNING), _change(b, TaskStatus.RUNNING)], 1)
    assert known.may_finish(finishing) and known.running(finishing)
    known.merge([_change(c, TaskStatus.PENDING)], 2)
    assert not known.may_finish(finishing)
    known.merge([_change(c, TaskStatus.SUCCEEDED)], 3)
    assert known.may_finish(finishing)
    known.merge([_change(b, TaskStatus.SUCCEEDED)], 4)  # recorded meanwhile, by another way
    assert not known.running(finishing)
