"""The ``ModelProvider`` seam and the values that cross it."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from ideamine.config.model import Price

__all__ = ["ModelProvider", "ModelRequest", "ModelResponse", "cost_usd", "estimate_tokens"]


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
    output: object
    text: str
    tokens_in: int
    tokens_out: int


class ModelProvider(Protocol):
    """Something that answers ``ModelRequest``s."""

    name: str

    async def complete(self, request: ModelRequest) -> ModelResponse:
        """Answer the request with output parsed from JSON (not yet schema-validated).

        Raises ``AgentError`` subclasses for problems with the request or the output.
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
