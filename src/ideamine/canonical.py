"""Canonical JSON and content hashes: the one way IdeaMine turns values into bytes.

Artifacts, task outputs, manifests and ledger events are all hashed over canonical JSON
(sorted keys, no insignificant white space, UTF-8, no NaN), so equal values always hash alike.
"""

from __future__ import annotations

import hashlib
import json

__all__ = ["canonical_json", "canonical_string", "content_hash", "sha256_hex"]


# One encoder for every call: ``json.dumps`` with options builds a new one each time, which
# cost as much as encoding a small value (a W2 task encodes ~7 values: events, output).
_ENCODER = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
)


def canonical_json(value: object) -> str:
    """Serialise ``value`` deterministically: sorted keys, compact separators, UTF-8 text."""
    return _ENCODER.encode(value)


def canonical_string(value: str) -> str:
    """``canonical_json`` of a string, without the encoder's dispatch (which reaches this same
    C function): a ledger event spells five strings of its own, W2 writes 4,000 events a run."""
    return _encode_string(value)


_encode_string = json.encoder.encode_basestring  # what JSONEncoder(ensure_ascii=False) uses


def sha256_hex(data: bytes | str) -> str:
    """SHA-256 of bytes (or of a string's UTF-8 encoding) as lowercase hex."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    return hashlib.sha256(raw).hexdigest()


def content_hash(value: object) -> str:
    """SHA-256 of the canonical JSON of ``value``."""
    return sha256_hex(canonical_json(value))
