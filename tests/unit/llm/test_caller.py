"""``ModelCaller`` and the call cache with a scripted in-process provider (no network, no
real sleeps: the retry waits are recorded instead)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import pytest

from ideamine.config.model import Price
from ideamine.llm.base import ModelRequest, ModelResponse, Progress, parse_json_reply
from ideamine.llm.breaker import CircuitBreaker
from ideamine.llm.cache import CachedReply, MemoryCallCache, cache_key
from ideamine.llm.caller import ModelCaller
from ideamine.llm.failures import CircuitOpenError, ErrorClass, ProviderError, ReplayMissError
from ideamine.llm.policy import DEFAULT_POLICY
from ideamine.stores.callcache import StoreCallCache
from ideamine.stores.records import ModelCallRecord, NewRun
from ideamine.stores.sqlite import SqliteStore


def _request(prompt: str = "p", **changes: object) -> ModelRequest:
    values: dict[str, object] = {
        "agent": "A",
        "model": "m",
        "prompt": prompt,
        "schema": {"type": "object"},
        "temperature": 0.2,
        "max_tokens": 100,
        "timeout_seconds": 5.0,
    }
    values.update(changes)
    return ModelRequest(**values)  # type: ignore[arg-type]


class Scripted:
    """A provider that answers from a list: strings are replies, errors are raised."""

    name = "openai"

    def __init__(self, steps: Sequence[str | Exception]) -> None:
        self.steps = list(steps)
        self.calls = 0

    async def complete(
        self, request: ModelRequest, progress: Progress | None = None
    ) -> ModelResponse:
        self.calls += 1
        step = self.steps.pop(0)
        if isinstance(step, Exception):
            raise step
        return ModelResponse(text=step, tokens_in=10, tokens_out=20)


def _error(error_class: ErrorClass, retry_after: float | None = None) -> ProviderError:
    return ProviderError(
        "A",
        provider="openai",
        model="m",
        error_class=error_class,
        detail="scripted",
        retry_after=retry_after,
    )


class Harness:
    def __init__(self, steps: Sequence[str | Exception], *, replay: bool = False) -> None:
        self.provider = Scripted(steps)
        self.waits: list[float] = []
        self.rows: list[ModelCallRecord] = []
        self.breaker = CircuitBreaker(name="openai", failure_threshold=3)

        async def sleep(seconds: float) -> None:
            self.waits.append(seconds)

        self.caller = ModelCaller(
            provider=self.provider,
            reference="openai:m",
            cache=MemoryCallCache(),
            breaker=self.breaker,
            policy=DEFAULT_POLICY,
            price=Price(input_per_mtok=1.0, output_per_mtok=2.0),
            replay=replay,
            sleep=sleep,
            jitter=lambda: 1.0,
        )

    def call(self, request: ModelRequest | None = None) -> str:
        return asyncio.run(self.caller.call(request or _request(), record=self.rows.append))


def test_a_transient_error_is_retried_with_backoff_and_every_try_is_recorded() -> None:
    harness = Harness([_error(ErrorClass.TRANSIENT), _error(ErrorClass.TRANSIENT), "{}"])
    assert harness.call() == "{}"
    assert harness.waits == [1.0, 2.0]
    assert [r.outcome for r in harness.rows] == ["transient", "transient", "ok"]
    assert harness.rows[-1].cost_usd == pytest.approx((10 * 1.0 + 20 * 2.0) / 1e6)


def test_retries_stop_at_the_policy_limit() -> None:
    harness = Harness([_error(ErrorClass.RATE_LIMIT, retry_after=12.0)] * 10)
    harness.breaker.failure_threshold = 100
    with pytest.raises(ProviderError) as caught:
        harness.call()
    assert caught.value.error_class is ErrorClass.RATE_LIMIT
    assert harness.provider.calls == 10
    assert harness.waits[0] == 12.0  # retry-after honoured


def test_auth_errors_are_not_retried() -> None:
    harness = Harness([_error(ErrorClass.AUTH), "{}"])
    with pytest.raises(ProviderError):
        harness.call()
    assert harness.provider.calls == 1 and harness.waits == []


def test_an_open_breaker_stops_retrying_without_calling() -> None:
    harness = Harness([_error(ErrorClass.TRANSIENT)] * 5)
    with pytest.raises(CircuitOpenError):
        harness.call()
    assert harness.provider.calls == 3  # the threshold, not the policy's 5
    assert [r.outcome for r in harness.rows] == ["transient"] * 3


def test_the_second_identical_call_is_a_cache_hit() -> None:
    harness = Harness(["{}"])
    harness.call()
    assert harness.call() == "{}"
    assert harness.provider.calls == 1
    hit = harness.rows[-1]
    assert (hit.outcome, hit.tokens_in, hit.tokens_out, hit.cost_usd) == ("cached", 0, 0, 0)
    assert hit.params["cached_tokens_out"] == 20


def test_replay_serves_from_the_cache_and_fails_loudly_on_a_miss() -> None:
    harness = Harness([], replay=True)
    with pytest.raises(ReplayMissError) as caught:
        harness.call()
    assert "not in the call cache" in str(caught.value)
    assert harness.provider.calls == 0


def test_a_cancelled_call_is_recorded_before_the_cancellation_propagates() -> None:
    class Hanging(Scripted):
        async def complete(
            self, request: ModelRequest, progress: Progress | None = None
        ) -> ModelResponse:
            await asyncio.sleep(60)
            raise AssertionError("unreachable")

    harness = Harness([])
    harness.caller.provider = Hanging([])

    async def go() -> None:
        async with asyncio.timeout(0.05):
            await harness.caller.call(_request(), record=harness.rows.append)

    with pytest.raises(TimeoutError):
        asyncio.run(go())
    assert [r.outcome for r in harness.rows] == ["cancelled"]


def test_cache_keys_cover_model_prompt_params_and_schema() -> None:
    base = cache_key("openai", _request())
    assert base == cache_key("openai", _request())
    assert base != cache_key("anthropic", _request())
    assert base != cache_key("openai", _request(model="other"))
    assert base != cache_key("openai", _request(prompt="q"))
    assert base != cache_key("openai", _request(temperature=0.3))
    assert base != cache_key("openai", _request(schema={"type": "array"}))
    assert base == cache_key("openai", _request(context={"x": 1}))  # prompt decides


def test_offline_cache_keys_also_cover_template_and_context() -> None:
    one = _request(offline_template="a: 1", context={"idea": "x"})
    assert cache_key("offline", one) != cache_key("offline", _request(offline_template="a: 2"))
    assert cache_key("offline", one) != cache_key(
        "offline", _request(offline_template="a: 1", context={"idea": "y"})
    )


class _Named:
    def __str__(self) -> str:
        return "named"


@pytest.mark.parametrize(
    ("json_form", "other_form"),
    [
        ({"a": ["x", 1]}, {"a": ("x", 1)}),  # a tuple is a JSON list
        ({"a": "named"}, {"a": _Named()}),  # a value JSON cannot encode: its text
        ({"true": 1, "null": 2, "2": 3}, {True: 1, None: 2, 2: 3}),  # keys as JSON writes them
        ({"a": "named", "true": 1}, {"a": _Named(), True: 1}),
    ],
)
def test_an_offline_context_keys_by_its_json_form(json_form: object, other_form: object) -> None:
    plain = cache_key("offline", _request(offline_template="a: 1", context=json_form))
    assert plain == cache_key("offline", _request(offline_template="a: 1", context=other_form))


def test_replies_in_a_code_fence_parse() -> None:
    assert parse_json_reply('```json\n{"a": 1}\n```') == {"a": 1}
    with pytest.raises(ValueError, match="not JSON"):
        parse_json_reply("Sure! Here it is")


def test_store_cache_keeps_the_first_reply_and_pins_a_run_model(tmp_path: Path) -> None:
    async def go() -> None:
        store = SqliteStore(tmp_path / "c.db")
        try:
            await store.migrate()
            cache = StoreCallCache(store)
            first = CachedReply(provider="openai", model="m", text="1", tokens_in=1, tokens_out=2)
            await cache.put("k", first)
            await cache.put("k", replace(first, text="2"))
            assert await cache.get("k") == first
            assert await cache.get("missing") is None
            await store.create_run(
                NewRun(
                    id="r1",
                    idea="idea",
                    constraints={},
                    source="cli",
                    config_dir=None,
                    manifest={},
                    manifest_hash="h",
                )
            )
            assert await cache.run_model("r1") is None
            assert await cache.pin_run_model("r1", "openai:a") == "openai:a"
            assert await cache.pin_run_model("r1", "openai:b") == "openai:a"
            assert await cache.run_model("r1") == "openai:a"
        finally:
            await store.close()

    asyncio.run(go())
