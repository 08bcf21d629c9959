"""The ``ModelProvider`` seam and the values that cross it."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from ideamine.config.model import Price

__all__ = [
    "ModelProvider",
    "ModelRequest",
    "ModelResponse",
    "Progress",
    "cost_usd",
    "estimate_tokens",
    "parse_json_reply",
]

# Called while a reply streams in, with the characters received so far (heartbeats hang off it).
Progress = Callable[[int], Awaitable[None]]


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelRequest:
    """One structured-output call: render/answer ``prompt`` as JSON matching ``schema``."""

    agent: str
    model: str  # the part after ``provider:``
    prompt: str
    schema: Mapping[str, Any]
    temperature: float
    max_tokens: int
    timeout_seconds: float
    offline_template: str | None = None  # what the offline provider renders
    context: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelResponse:
    """A reply: its raw ``text`` (what the call cache keeps) and the tokens it took."""

    text: str
    tokens_in: int
    tokens_out: int
    output: object = None  # the parsed reply when the provider already has it (offline)


class ModelProvider(Protocol):
    """Something that answers ``ModelRequest``s."""

    name: str

    async def complete(
        self, request: ModelRequest, progress: Progress | None = None
    ) -> ModelResponse:
        """Answer the request with the model's raw reply text (not yet parsed or validated).

        Makes exactly one request (no retries of its own: the caller owns the retry policy)
        and calls ``progress`` while a streamed reply arrives.

        Raises:
            ProviderError: the call failed; its ``error_class`` says whether a retry may help.
            AgentError: the request cannot be made at all (e.g. no offline template).
        """
        ...


def estimate_tokens(text: str) -> int:
    """A tokenizer-free estimate: about four characters a token, at least one."""
    return max(1, math.ceil(len(text) / 4))


def cost_usd(price: Price | None, tokens_in: int, tokens_out: int) -> float:
    """USD for a call under ``price`` (``None`` = not in the pricing table: 0)."""
    if price is None:
        return 0.0
    return (tokens_in * price.input_per_mtok + tokens_out * price.output_per_mtok) / 1e6


_FENCE = re.compile(r"^\s*```(?:json|JSON)?\s*\n(.*?)\n\s*```\s*$", re.DOTALL)


def parse_json_reply(text: str) -> object:
    """The JSON value of a reply; a reply wrapped in one Markdown code fence is accepted.

    Raises:
        ValueError: the text is not JSON (the message says where).
    """
    match = _FENCE.match(text)
    body = match.group(1) if match else text
    try:
        return json.loads(body, parse_constant=_not_a_constant)
    except json.JSONDecodeError as exc:
        raise ValueError(
            f"reply is not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from exc


def _not_a_constant(name: str) -> object:
    """Python's json reads ``NaN``, ``Infinity`` and ``-Infinity``; JSON has no such values
    (and the store, keeping canonical JSON, could not hold them)."""
    raise ValueError(f"reply is not JSON: {name} is not a JSON value")
