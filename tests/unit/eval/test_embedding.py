"""Consistency with the real all-MiniLM-L6-v2 model (offline), and its chunking."""

from __future__ import annotations

import math
import subprocess
import sys

import pytest

from ideamine.eval.embedding import CHUNK_WORDS, MAX_CHUNKS, MiniLM, chunks, cosine
from ideamine.eval.measure import consistency

FARMERS = "A marketplace where local farmers sell fresh produce to nearby restaurants."


@pytest.fixture(scope="module")
def model() -> MiniLM:
    return MiniLM()


def test_identical_texts_have_consistency_one(model: MiniLM) -> None:
    idea, prd, code = model.embed([FARMERS, FARMERS, FARMERS])
    found = consistency(idea, {"prd": (prd, FARMERS), "code": (code, FARMERS)})
    assert found["score"] == pytest.approx(1.0, abs=1e-4)
    assert math.sqrt(sum(x * x for x in idea)) == pytest.approx(1.0, abs=1e-6)


def test_related_text_is_closer_than_unrelated_text(model: MiniLM) -> None:
    idea, near, far = model.embed(
        [
            FARMERS,
            "Growers list vegetables; restaurant buyers order them for delivery.",
            "A chess engine that analyses openings with a neural network.",
        ]
    )
    assert cosine(idea, near) > cosine(idea, far) + 0.2


def test_a_missing_part_counts_zero(model: MiniLM) -> None:
    idea, prd, empty = model.embed([FARMERS, FARMERS, ""])
    found = consistency(idea, {"prd": (prd, FARMERS), "code": (empty, "")})
    assert found == {
        "score": pytest.approx(0.5, abs=1e-4),
        "prd": pytest.approx(1.0, abs=1e-4),
        "code": 0.0,
    }


def test_a_long_text_is_read_in_chunks_evenly_sampled() -> None:
    words = [f"w{i}" for i in range(CHUNK_WORDS * (MAX_CHUNKS + 10))]
    pieces = chunks(" ".join(words))
    assert len(pieces) == MAX_CHUNKS
    assert pieces[0].split()[0] == "w0" and all(len(p.split()) == CHUNK_WORDS for p in pieces)
    assert chunks("") == [""]
    assert chunks("one two") == ["one two"]


def test_cosine_of_a_zero_vector_is_zero() -> None:
    assert cosine([0.0, 0.0], [1.0, 0.0]) == 0.0
    assert cosine([1.0, 0.0], [1.0, 0.0]) == 1.0


def test_the_model_loads_at_the_first_embedding_not_before() -> None:
    """An evaluation with every idea measured earlier never pays for loading the model."""
    script = (
        "import sys\n"
        "from ideamine.eval.embedding import MiniLM\n"
        "model = MiniLM()\n"
        "print('torch' in sys.modules)\n"
        "model.embed(['a farmers market'])\n"
        "print('torch' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "True"]
