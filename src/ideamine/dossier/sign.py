"""The dossier's signature: the SHA-256 of its canonical JSON (every field but the signature).

Anyone can recompute it: drop ``signature``, serialise the rest as canonical JSON (sorted
keys, no insignificant white space, UTF-8; see ``ideamine.canonical``) and hash it. A changed
value, added field or removed field gives another hash.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ideamine.canonical import content_hash
from ideamine.errors import UsageError

__all__ = ["ALGORITHM", "SIGNATURE_KEY", "Verification", "sign", "verify", "verify_file"]

SIGNATURE_KEY = "signature"
ALGORITHM = "sha256"


@dataclass(frozen=True, slots=True, kw_only=True)
class Verification:
    ok: bool
    expected: str | None  # the signature the document carries
    actual: str  # the hash of its content now
    reason: str = ""


def _body(document: Mapping[str, object]) -> dict[str, object]:
    return {key: value for key, value in document.items() if key != SIGNATURE_KEY}


def sign(document: Mapping[str, object]) -> dict[str, object]:
    """``document`` with its ``signature`` (replacing any earlier one)."""
    body = _body(document)
    return {
        **body,
        SIGNATURE_KEY: {
            "algorithm": ALGORITHM,
            "value": content_hash(body),
            "covers": "canonical JSON of every field except signature",
        },
    }


def verify(document: Mapping[str, object]) -> Verification:
    """Whether ``document``'s content still hashes to the signature it carries."""
    actual = content_hash(_body(document))
    signature = document.get(SIGNATURE_KEY)
    if not isinstance(signature, Mapping) or not isinstance(signature.get("value"), str):
        return Verification(
            ok=False, expected=None, actual=actual, reason="it carries no signature"
        )
    expected = str(signature["value"])
    if signature.get("algorithm") != ALGORITHM:
        reason = f"unknown signature algorithm {signature.get('algorithm')!r}"
        return Verification(ok=False, expected=expected, actual=actual, reason=reason)
    if expected != actual:
        reason = "its content does not match its signature (the file was changed after signing)"
        return Verification(ok=False, expected=expected, actual=actual, reason=reason)
    return Verification(ok=True, expected=expected, actual=actual)


def verify_file(path: Path) -> Verification:
    """Verify a JSON export.

    Raises:
        UsageError: the file cannot be read or is not a JSON object.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read {path}: {exc}", hint="pass a dossier JSON export") from exc
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise UsageError(
            f"{path} is not JSON ({exc})",
            hint="verify the JSON export: ideamine dossier RUN --format json -o FILE",
        ) from exc
    if not isinstance(document, dict):
        raise UsageError(f"{path} is not a dossier (not a JSON object)", hint="pass a JSON export")
    return verify(document)
