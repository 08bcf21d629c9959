"""The call cache: identical model calls are answered from it instead of the provider.

A call's key is the SHA-256 of the canonical JSON of everything that decides its answer:
provider, model, the rendered prompt, the parameters (temperature, max tokens) and the output
schema. The offline provider renders a template over the run context rather than reading the
prompt, so its key also covers that template and context. The cache keeps the reply text and
its token counts, written once per key (first write wins), and never anything secret.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from ideamine.canonical import canonical_json, content_hash, sha256_hex
from ideamine.llm.base import ModelRequest

__all__ = ["CachedReply", "CallCache", "MemoryCallCache", "cache_key", "request_params"]


@dataclass(frozen=True, slots=True, kw_only=True)
class CachedReply:
    """A reply as the cache keeps it."""

    provider: str
    model: str
    text: str
    tokens_in: int
    tokens_out: int


class CallCache(Protocol):
    """Replies by call key, plus the model override each run was started with."""

    async def get(self, key: str) -> CachedReply | None:
        """The reply stored under ``key``, if any."""
        ...

    async def put(self, key: str, reply: CachedReply) -> None:
        """Keep ``reply`` under ``key`` unless one is there already (first write wins)."""
        ...

    async def run_model(self, run_id: str) -> str | None:
        """The ``--model`` override run ``run_id`` was pinned to, if any."""
        ...

    async def pin_run_model(self, run_id: str, reference: str) -> str:
        """Pin ``reference`` as the run's override unless one is pinned; return the pinned one."""
        ...


def request_params(request: ModelRequest) -> dict[str, object]:
    """The sampling parameters that are part of a call's identity."""
    return {"temperature": request.temperature, "max_tokens": request.max_tokens}


def cache_key(provider: str, request: ModelRequest) -> str:
    """The key of a call of ``request`` on ``provider``."""
    material: dict[str, object] = {
        "provider": provider,
        "model": request.model,
        "prompt": sha256_hex(request.prompt),
        "params": request_params(request),
        "schema": content_hash(dict(request.schema)),
    }
    if provider == "offline":
        material["offline"] = sha256_hex(request.offline_template or "")
        material["context"] = _context_hash(request.context)
    return sha256_hex(canonical_json(material))


def _context_hash(context: object) -> str:
    """The hash of a template context's JSON form. A context that JSON can encode (the usual
    case: artifacts read from the store) is hashed as it is, in C, without copying it first;
    one holding other values is made plain first, into the same JSON form."""
    try:
        return content_hash(context)
    except TypeError:
        return content_hash(_plain(context))


def _plain(value: object) -> object:
    """The JSON form of a template context (mappings and sequences of scalars)."""
    if isinstance(value, Mapping):
        return {_plain_key(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def _plain_key(key: object) -> str:
    """A mapping key as JSON writes it (``True`` → ``"true"``, ``None`` → ``"null"``)."""
    if isinstance(key, str):
        return key
    if key is None or isinstance(key, bool | int | float):
        return json.dumps(key)
    return str(key)


class MemoryCallCache:
    """A per-process ``CallCache`` (for stores without a cache table, and for tests)."""

    def __init__(self) -> None:
        self._replies: dict[str, CachedReply] = {}
        self._models: dict[str, str] = {}

    async def get(self, key: str) -> CachedReply | None:
        return self._replies.get(key)

    async def put(self, key: str, reply: CachedReply) -> None:
        self._replies.setdefault(key, reply)

    async def run_model(self, run_id: str) -> str | None:
        return self._models.get(run_id)

    async def pin_run_model(self, run_id: str, reference: str) -> str:
        return self._models.setdefault(run_id, reference)
