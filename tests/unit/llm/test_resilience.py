"""The retry policy, the circuit breaker and error classification: pure, no clock reads."""

from __future__ import annotations

import email.utils

import pytest

from ideamine.config.model import BackoffSpec, ProviderSpec
from ideamine.llm.breaker import BreakerState, CircuitBreaker
from ideamine.llm.failures import (
    CircuitOpenError,
    ErrorClass,
    ProviderError,
    class_of_status,
    known_secrets,
    redact,
    retry_after_seconds,
)
from ideamine.llm.policy import DEFAULT_POLICY, Backoff, RetryPolicy, policy_for


def _delays(policy: RetryPolicy, error_class: ErrorClass, jitter: float = 1.0) -> list[float]:
    delays: list[float] = []
    tries = 1
    while (
        d := policy.delay(error_class, tries=tries, jitter=jitter, retry_after=None)
    ) is not None:
        delays.append(d)
        tries += 1
    return delays


def test_transient_errors_get_five_tries_from_one_to_sixty_seconds() -> None:
    delays = _delays(DEFAULT_POLICY, ErrorClass.TRANSIENT)
    assert delays == [1.0, 2.0, 4.0, 8.0]  # 4 waits between 5 tries
    assert _delays(DEFAULT_POLICY, ErrorClass.TIMEOUT) == delays


def test_rate_limits_get_ten_tries_from_five_to_three_hundred_seconds() -> None:
    delays = _delays(DEFAULT_POLICY, ErrorClass.RATE_LIMIT)
    assert len(delays) == 9
    assert delays[0] == 5.0
    assert max(delays) == 300.0


def test_jitter_scales_a_wait_between_half_and_all_of_it() -> None:
    low = DEFAULT_POLICY.delay(ErrorClass.TRANSIENT, tries=3, jitter=0.0, retry_after=None)
    high = DEFAULT_POLICY.delay(ErrorClass.TRANSIENT, tries=3, jitter=1.0, retry_after=None)
    assert (low, high) == (2.0, 4.0)


def test_retry_after_is_honoured_even_above_the_backoff() -> None:
    wait = DEFAULT_POLICY.delay(ErrorClass.RATE_LIMIT, tries=1, jitter=0.0, retry_after=42.0)
    assert wait == 42.0


@pytest.mark.parametrize(
    "error_class", [ErrorClass.AUTH, ErrorClass.BAD_REQUEST, ErrorClass.INVALID_OUTPUT]
)
def test_auth_bad_request_and_invalid_output_never_retry(error_class: ErrorClass) -> None:
    assert DEFAULT_POLICY.delay(error_class, tries=1, jitter=0.5, retry_after=1.0) is None


def test_backoff_is_validated() -> None:
    with pytest.raises(ValueError, match="max_attempts"):
        Backoff(max_attempts=0, base_seconds=1, cap_seconds=2)
    with pytest.raises(ValueError, match="base"):
        Backoff(max_attempts=1, base_seconds=3, cap_seconds=2)


def test_pipeline_settings_override_the_defaults() -> None:
    spec = ProviderSpec(
        name="openai", transient=BackoffSpec(max_attempts=2, base_delay_ms=10, max_delay_ms=20)
    )
    policy = policy_for(spec)
    assert policy.transient == Backoff(max_attempts=2, base_seconds=0.01, cap_seconds=0.02)
    assert policy.rate_limit == DEFAULT_POLICY.rate_limit


class Ticks:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_breaker_opens_after_the_threshold_and_half_opens_after_the_reset() -> None:
    clock = Ticks()
    breaker = CircuitBreaker(name="openai", failure_threshold=3, reset_seconds=10, clock=clock)
    for _ in range(2):
        assert breaker.allow()
        breaker.record_failure()
    assert breaker.state is BreakerState.CLOSED
    breaker.record_failure()
    assert breaker.state is BreakerState.OPEN and not breaker.allow()
    assert breaker.reopens_in() == 10
    clock.now = 10
    assert breaker.state is BreakerState.HALF_OPEN
    assert breaker.allow()  # one trial call
    assert not breaker.allow()  # and only one
    breaker.record_success()
    assert breaker.state is BreakerState.CLOSED and breaker.failures == 0


def test_a_failed_trial_reopens_the_breaker_at_once() -> None:
    clock = Ticks()
    breaker = CircuitBreaker(name="x", failure_threshold=1, reset_seconds=5, clock=clock)
    breaker.record_failure()
    clock.now = 5
    assert breaker.allow()
    breaker.record_failure()
    assert breaker.state is BreakerState.OPEN
    assert breaker.reopens_in() == 5


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (401, ErrorClass.AUTH),
        (403, ErrorClass.AUTH),
        (429, ErrorClass.RATE_LIMIT),
        (500, ErrorClass.TRANSIENT),
        (529, ErrorClass.TRANSIENT),
        (408, ErrorClass.TRANSIENT),
        (400, ErrorClass.BAD_REQUEST),
        (404, ErrorClass.BAD_REQUEST),
        (422, ErrorClass.BAD_REQUEST),
    ],
)
def test_status_codes_are_classified(status: int, expected: ErrorClass) -> None:
    assert class_of_status(status) is expected


def test_retry_after_is_read_in_seconds_milliseconds_or_as_a_date() -> None:
    assert retry_after_seconds({"Retry-After": "7"}) == 7.0
    assert retry_after_seconds({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    date = email.utils.formatdate(1_000_030.0, usegmt=True)
    assert retry_after_seconds({"retry-after": date}, now=1_000_000.0) == pytest.approx(30.0)
    assert retry_after_seconds({"retry-after": "soon"}) is None
    assert retry_after_seconds({}) is None


def test_secrets_are_redacted_from_messages() -> None:
    env = {"OPENAI_API_KEY": "sk-abcdefgh12345", "HOME": "/root", "SHORT_TOKEN": "abc"}
    assert known_secrets(env) == ["sk-abcdefgh12345"]
    assert redact("bad key sk-abcdefgh12345!", known_secrets(env)) == "bad key ***!"


def test_provider_errors_carry_ids_hints_and_no_secret() -> None:
    error = ProviderError(
        "IntakeAgent",
        provider="openai",
        model="gpt-4o",
        error_class=ErrorClass.AUTH,
        detail="Incorrect API key provided: my-secret-value",
        status=401,
        key_env="MY_KEY",
        secrets=["my-secret-value"],
    )
    assert (error.agent, error.provider, error.model, error.status) == (
        "IntakeAgent",
        "openai",
        "gpt-4o",
        401,
    )
    assert not error.retryable
    assert "my-secret-value" not in str(error)
    assert "MY_KEY" in error.hint
    opened = CircuitOpenError("A", provider="openai", model="m", reopens_in=3.0)
    assert opened.error_class is ErrorClass.UNAVAILABLE and not opened.retryable
