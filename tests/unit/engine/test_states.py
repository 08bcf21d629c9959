"""The run, phase and task state machines."""

from __future__ import annotations

from enum import StrEnum

import pytest

from ideamine.engine.states import PhaseStatus, RunStatus, TaskStatus, check_transition
from ideamine.errors import IllegalTransitionError

R, P, T = RunStatus, PhaseStatus, TaskStatus

LEGAL: list[tuple[StrEnum, StrEnum]] = [
    (R.CREATED, R.RUNNING),
    (R.CREATED, R.CANCELLED),
    (R.CREATED, R.FAILED),
    (R.RUNNING, R.PAUSED),
    (R.RUNNING, R.NEEDS_ATTENTION),
    (R.RUNNING, R.COMPLETED),
    (R.RUNNING, R.FAILED),
    (R.RUNNING, R.CANCELLED),
    (R.PAUSED, R.RUNNING),
    (R.PAUSED, R.CANCELLED),
    (R.NEEDS_ATTENTION, R.RUNNING),
    (R.NEEDS_ATTENTION, R.CANCELLED),
    (R.FAILED, R.RUNNING),
    (P.RUNNING, P.READY),
    (P.RUNNING, P.FAILED),
    (P.READY, P.PASSED),
    (P.READY, P.FAILED),
    (P.FAILED, P.RUNNING),
    (P.FAILED, P.PASSED),  # a waiver passes a failed gate
    (T.PENDING, T.RUNNING),
    (T.RUNNING, T.SUCCEEDED),
    (T.RUNNING, T.FAILED),
    (T.RUNNING, T.PENDING),
    (T.RUNNING, T.SKIPPED),
    (T.FAILED, T.PENDING),
]

ILLEGAL: list[tuple[StrEnum, StrEnum, str]] = [
    (R.CREATED, R.COMPLETED, "run"),
    (R.CREATED, R.PAUSED, "run"),
    (R.COMPLETED, R.RUNNING, "run"),
    (R.CANCELLED, R.RUNNING, "run"),
    (R.PAUSED, R.COMPLETED, "run"),
    (R.RUNNING, R.RUNNING, "run"),
    (R.RUNNING, R.CREATED, "run"),
    (P.RUNNING, P.PASSED, "phase"),
    (P.PASSED, P.RUNNING, "phase"),
    (P.PASSED, P.FAILED, "phase"),
    (P.READY, P.RUNNING, "phase"),
    (T.PENDING, T.SUCCEEDED, "task"),
    (T.PENDING, T.FAILED, "task"),
    (T.SUCCEEDED, T.PENDING, "task"),
    (T.SUCCEEDED, T.FAILED, "task"),
    (T.FAILED, T.SUCCEEDED, "task"),
]


@pytest.mark.parametrize(("source", "target"), LEGAL, ids=str)
def test_legal_transition_passes(source: StrEnum, target: StrEnum) -> None:
    check_transition(source, target)


def _named(source: StrEnum, target: StrEnum) -> tuple[str, str, str]:
    # StrEnum members of different enums compare equal as strings ("running"), so key by type.
    return type(source).__name__, str(source), str(target)


def test_every_pair_outside_the_legal_list_is_refused() -> None:
    allowed = set()
    for enum in (RunStatus, PhaseStatus, TaskStatus):
        for source in enum:
            for target in enum:
                try:
                    check_transition(source, target)
                except IllegalTransitionError:
                    continue
                allowed.add(_named(source, target))
    assert allowed == {_named(source, target) for source, target in LEGAL}


@pytest.mark.parametrize(("source", "target", "kind"), ILLEGAL, ids=str)
def test_illegal_transition_raises_with_its_details(
    source: StrEnum, target: StrEnum, kind: str
) -> None:
    with pytest.raises(IllegalTransitionError) as caught:
        check_transition(source, target)
    assert (caught.value.kind, caught.value.source, caught.value.target) == (
        kind,
        str(source),
        str(target),
    )
    assert f"{kind} cannot go from {source} to {target}" in str(caught.value)


@pytest.mark.parametrize(
    ("source", "target"),
    [
        (R.RUNNING, P.READY),  # "running" exists in all three enums
        (P.RUNNING, T.RUNNING),
        (T.RUNNING, R.FAILED),
    ],
)
def test_transition_across_enums_is_refused(source: StrEnum, target: StrEnum) -> None:
    with pytest.raises(IllegalTransitionError):
        check_transition(source, target)


@pytest.mark.parametrize("status", list(RunStatus))
def test_run_status_finished(status: RunStatus) -> None:
    expected = status in (R.COMPLETED, R.FAILED, R.CANCELLED)
    assert status.finished is expected
