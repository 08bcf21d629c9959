"""``BlobCache.foresee``: the upstream artifacts of phases started ahead of a fan-in's commit,
filled in only where they equal what a read after the commit gives."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.support.configs import write_callable_pipeline

from ideamine.config.loader import load_pipeline
from ideamine.config.model import PipelineSpec
from ideamine.runtime.context import BlobCache
from ideamine.stores.records import NewArtifact

DAG = {"a": [], "b": ["a"], "c": ["a"], "d": ["b", "c"]}


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> PipelineSpec:
    root: Path = tmp_path_factory.mktemp("foresee")
    return load_pipeline(write_callable_pipeline(root / "config", DAG, agents_per_phase=1))


def _art(kind: str, value: object) -> NewArtifact:
    return NewArtifact(type=kind, content={"v": value}, provenance={})


def _cache(upstream_of_b: dict[str, tuple[str, object]]) -> BlobCache:
    """A cache holding b's upstream as a read would have left it."""
    blobs = BlobCache(store=None)  # type: ignore[arg-type]  # foresee never reads
    blobs.upstream[("r", "b")] = (
        {kind: content for kind, (_, content) in sorted(upstream_of_b.items())},
        sorted(artifact_id for artifact_id, _ in upstream_of_b.values()),
    )
    blobs.upstream_ids[("r", "b")] = {kind: i for kind, (i, _) in upstream_of_b.items()}
    blobs.upstream[("r", "c")] = blobs.upstream[("r", "b")]
    blobs.upstream_ids[("r", "c")] = dict(blobs.upstream_ids[("r", "b")])
    return blobs


def test_a_join_is_filled_in_from_what_each_side_left(pipeline: PipelineSpec) -> None:
    blobs = _cache({"A": ("a1", {"v": 0})})
    blobs.remember("r", "b", 1, [_art("B", 1)], ["b1"])
    filled = blobs.foresee(pipeline, "r", "c", 1, [_art("C", 2)], ["c1"], ["d"])
    assert filled == ["d"]
    assert blobs.upstream[("r", "d")] == (
        {"A": {"v": 0}, "B": {"v": 1}, "C": {"v": 2}},
        ["a1", "b1", "c1"],
    )
    blobs.unsee("r", filled)
    assert ("r", "d") not in blobs.upstream


@pytest.mark.parametrize(
    "case",
    [
        "the other side unseen",
        "the sides disagree on a type",
        "a later attempt",
        "a new type already upstream",
        "a type written twice",
    ],
)
def test_a_phase_is_left_to_read_its_upstream_when_the_cache_cannot_tell(
    pipeline: PipelineSpec, case: str
) -> None:
    blobs = _cache({"A": ("a1", {"v": 0})})
    if case != "the other side unseen":
        # b's side: a newer A than c's side read (as if b's side saw another version)
        shared = "a2" if case == "the sides disagree on a type" else "a1"
        blobs.upstream_ids[("r", "b")] = {"A": shared}
        blobs.remember("r", "b", 1, [_art("B", 1)], ["b1"])
    attempt = 2 if case == "a later attempt" else 1
    artifacts = [_art("C", 2)]
    if case == "a new type already upstream":
        artifacts = [_art("A", 3)]
    if case == "a type written twice":
        artifacts = [_art("C", 2), _art("C", 3)]
    ids = [f"c{i}" for i in range(len(artifacts))]
    assert blobs.foresee(pipeline, "r", "c", attempt, artifacts, ids, ["d"]) == []
    assert ("r", "d") not in blobs.upstream
