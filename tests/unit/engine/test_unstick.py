"""The unsticker's ladder: each stall of a task takes the next remedy."""

from __future__ import annotations

import pytest

from ideamine.engine.unstick import Remedy, Strategy, choose_remedy


def _walk(fallbacks: int, optional: bool, stalls: int) -> list[Remedy]:
    remedies = []
    batch, timeout, shift = 1.0, 1.0, 0
    for stall in range(stalls):
        remedy = choose_remedy(
            stalls=stall,
            batch_scale=batch,
            timeout_scale=timeout,
            model_shift=shift,
            fallbacks=fallbacks,
            optional=optional,
        )
        remedies.append(remedy)
        batch, timeout, shift = remedy.batch_scale, remedy.timeout_scale, remedy.model_shift
    return remedies


@pytest.mark.parametrize(
    ("fallbacks", "expected"),
    [
        (0, ["smaller-batch", "longer-timeout", "retry", "escalate", "escalate"]),
        (1, ["smaller-batch", "fallback-model", "longer-timeout", "retry", "escalate"]),
        (
            2,
            [
                "smaller-batch",
                "fallback-model",
                "fallback-model",
                "longer-timeout",
                "retry",
                "escalate",
            ],
        ),
    ],
)
def test_each_stall_takes_the_next_rung(fallbacks: int, expected: list[str]) -> None:
    assert [r.strategy.value for r in _walk(fallbacks, False, len(expected))] == expected


def test_the_settings_follow_the_remedies() -> None:
    last = _walk(2, False, 5)[-1]
    assert (last.batch_scale, last.timeout_scale, last.model_shift) == (0.5, 2.0, 2)


def test_an_optional_agent_is_skipped_instead_of_escalating() -> None:
    remedies = _walk(0, True, 4)
    assert remedies[-1].strategy is Strategy.SKIP_OPTIONAL
    assert remedies[-1].gives_up and not remedies[0].gives_up
