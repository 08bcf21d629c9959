"""Knowledge frames: what an accepted answer taught the run, deduplicated across runs.

A frame's id is the SHA-256 of its normalised subject and text, so the same knowledge learnt
by two runs (or twice by one) is one frame; the store counts its ``uses``.
"""

from __future__ import annotations

import hashlib
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = ["Frame", "frame_id", "normalise"]


def normalise(text: str) -> str:
    """``text`` compared the way quotes and frames are: NFKC, case-folded, single spaces."""
    return " ".join(unicodedata.normalize("NFKC", str(text)).casefold().split())


def frame_id(subject: str, text: str) -> str:
    """The id of the frame with this subject and text (hex SHA-256 of both, normalised)."""
    digest = hashlib.sha256(f"{normalise(subject)}\n{normalise(text)}".encode())
    return digest.hexdigest()


@dataclass(frozen=True, slots=True, kw_only=True)
class Frame:
    """One piece of knowledge: a subject (the question's topic), what is known about it, and
    where it came from (``provenance``: run, phase, question, citations or ``source``).

    ``uses`` is how many bindings point at the frame; only frames read from a store know it.
    """

    id: str
    subject: str
    text: str
    provenance: Mapping[str, object] = field(default_factory=dict)
    uses: int = 0

    @classmethod
    def create(cls, subject: str, text: str, provenance: Mapping[str, object]) -> Frame:
        """A new frame whose id is derived from ``subject`` and ``text``."""
        return cls(
            id=frame_id(subject, text), subject=subject, text=text, provenance=dict(provenance)
        )

    def as_dict(self) -> dict[str, object]:
        """JSON-able form (without ``uses``, which belongs to the store)."""
        return {
            "id": self.id,
            "subject": self.subject,
            "text": self.text,
            "provenance": dict(self.provenance),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> Frame:
        """The frame ``as_dict`` gave (``uses`` is kept when present).

        Raises:
            TypeError: a key is missing or has the wrong type.
        """
        provenance = data.get("provenance", {})
        uses = data.get("uses", 0)
        if not isinstance(provenance, Mapping) or not isinstance(uses, int):
            raise TypeError("frame provenance must be an object and uses an integer")
        return cls(
            id=_text(data, "id"),
            subject=_text(data, "subject"),
            text=_text(data, "text"),
            provenance=dict(provenance),
            uses=uses,
        )


def _text(data: Mapping[str, object], key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str):
        raise TypeError(f"{key!r} must be a string, not {type(value).__name__}")
    return value
