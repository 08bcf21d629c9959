"""retry_delay: growth by strategy, the cap, deterministic jitter and when to give up."""

from __future__ import annotations

import pytest
from tests.unit.engine.factories import retry_spec

from ideamine.config.model import RetrySpec
from ideamine.engine.retry import retry_delay

# SPEC §5, transient errors: 5 tries, 1 s → 60 s exponential.
TRANSIENT = retry_spec("exponential", max_attempts=5, base_delay_ms=1000, max_delay_ms=60_000)
LONG = retry_spec("exponential", max_attempts=20, base_delay_ms=1000, max_delay_ms=60_000)


def _delay(policy: RetrySpec, tries: int, task_id: str = "task-1") -> float:
    delay = retry_delay(policy, tries=tries, retryable=True, task_id=task_id)
    assert delay is not None
    return delay


def _unjittered(strategy: str, tries: int, task_id: str = "task-1") -> float:
    """The delay divided by what ``fixed`` gives for the same task and try (same jitter)."""
    policy = retry_spec(strategy, max_attempts=20, base_delay_ms=1000, max_delay_ms=600_000)
    fixed = retry_spec("fixed", max_attempts=20, base_delay_ms=1000, max_delay_ms=600_000)
    return _delay(policy, tries, task_id) / _delay(fixed, tries, task_id)


@pytest.mark.parametrize("tries", [1, 2, 3, 4, 5, 6])
def test_exponential_doubles_each_try(tries: int) -> None:
    assert _unjittered("exponential", tries) == pytest.approx(2 ** (tries - 1))


@pytest.mark.parametrize("tries", [1, 2, 3, 7])
def test_linear_grows_by_the_base_each_try(tries: int) -> None:
    assert _unjittered("linear", tries) == pytest.approx(tries)


@pytest.mark.parametrize("tries", [1, 4, 9])
def test_fixed_waits_about_the_base_every_try(tries: int) -> None:
    policy = retry_spec("fixed", max_attempts=10, base_delay_ms=2000, max_delay_ms=60_000)
    assert 1.0 <= _delay(policy, tries) <= 2.0


@pytest.mark.parametrize("tries", [7, 8, 15])
def test_exponential_is_capped_at_max_delay(tries: int) -> None:
    # 2 ** 6 s > 60 s: from try 7 on the delay is the cap, jittered like a fixed 60 s delay.
    capped = retry_spec("fixed", max_attempts=20, base_delay_ms=60_000, max_delay_ms=60_000)
    assert _delay(LONG, tries) == pytest.approx(_delay(capped, tries))
    assert _delay(LONG, tries) <= 60.0


def test_linear_is_capped_at_max_delay() -> None:
    policy = retry_spec("linear", max_attempts=20, base_delay_ms=1000, max_delay_ms=3000)
    assert 1.5 <= _delay(policy, 10) <= 3.0


@pytest.mark.parametrize("tries", [1, 3, 6, 10])
def test_jitter_stays_within_half_to_full_delay(tries: int) -> None:
    nominal = min(2 ** (tries - 1), 60)
    for index in range(200):
        assert 0.5 * nominal <= _delay(LONG, tries, f"task-{index}") <= nominal


def test_jitter_spreads_across_tasks() -> None:
    factors = [_delay(LONG, 1, f"task-{index}") for index in range(200)]
    assert min(factors) < 0.6
    assert max(factors) > 0.9
    assert len(set(factors)) > 150


def test_jitter_is_deterministic_per_task_and_try() -> None:
    assert _delay(TRANSIENT, 2, "abc") == _delay(TRANSIENT, 2, "abc")
    assert _delay(TRANSIENT, 2, "abc") != _delay(TRANSIENT, 2, "abd")


def test_a_non_retryable_error_is_never_retried() -> None:
    assert retry_delay(TRANSIENT, tries=1, retryable=False, task_id="t") is None


@pytest.mark.parametrize(("tries", "retried"), [(1, True), (4, True), (5, False), (6, False)])
def test_no_retry_once_the_tries_are_used_up(tries: int, retried: bool) -> None:
    delay = retry_delay(TRANSIENT, tries=tries, retryable=True, task_id="t")
    assert (delay is not None) is retried


def test_a_single_attempt_policy_never_retries() -> None:
    policy = retry_spec(max_attempts=1)
    assert retry_delay(policy, tries=1, retryable=True, task_id="t") is None
