"""The commit chains of a run's workspace, derived only from recorded task outputs.

The build's chain has one whole-tree snapshot per build attempt whose evidence agent ran (the
files every other agent of that attempt wrote); the story loop's chain adds one snapshot per
iteration on top of the build's commit (the files its implementation changed). Because the
snapshots come from stored outputs and the commits are deterministic
(:mod:`ideamine.tools.workspace`), any worker rebuilds the same commits.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ideamine.stores.base import Store
from ideamine.tools.workspace import RepoManifest, Snapshot, checkout, commit_snapshot

__all__ = [
    "build_message",
    "build_snapshots",
    "commit_stories",
    "files_of",
    "stored_build_snapshots",
    "story_snapshots",
]

_BUILD = re.compile(r"^build attempt (\d+)$")


def build_message(attempt: int) -> str:
    """The message of a build attempt's commit."""
    return f"build attempt {attempt}"


def files_of(outputs: Mapping[str, object]) -> dict[str, str]:
    """Path → content of every ``files`` mapping in the outputs, later branch keys winning.

    Reads ``output["files"]`` and, for agents with several artifact types,
    ``output[<type>]["files"]``; only ``{"content": <text>}`` entries are files, so reports
    that list file names or per-file numbers are never mistaken for files.
    """
    files: dict[str, str] = {}
    for key in sorted(outputs):
        output = outputs[key]
        if not isinstance(output, Mapping):
            continue
        for part in (output, *(v for v in output.values() if isinstance(v, Mapping))):
            found = part.get("files")
            if isinstance(found, Mapping):
                files.update(
                    (str(path), entry["content"])
                    for path, entry in found.items()
                    if isinstance(entry, Mapping) and isinstance(entry.get("content"), str)
                )
    return files


async def build_snapshots(
    store: Store, run_id: str, phase: str, attempt: int, agent: str
) -> list[Snapshot]:
    """The snapshots of build attempts 1 … ``attempt``: this one, and every earlier one in
    which ``agent`` (the evidence agent that commits) recorded an output."""
    snapshots = []
    for number in range(1, attempt + 1):
        outputs = await store.outputs(run_id, phase, number)
        committed = any(key.endswith(f".{agent}") for key in outputs)
        if number == attempt or committed:
            snapshots.append(Snapshot(message=build_message(number), files=files_of(outputs)))
    return snapshots


async def stored_build_snapshots(
    store: Store, run_id: str, manifest: RepoManifest, phase: str = "build"
) -> list[Snapshot]:
    """The snapshots that rebuild ``manifest``'s chain from the stored build outputs."""
    snapshots = []
    for commit in manifest.commits:
        matched = _BUILD.match(commit.message)
        if matched is None:
            continue
        outputs = await store.outputs(run_id, phase, int(matched[1]))
        snapshots.append(Snapshot(message=commit.message, files=files_of(outputs)))
    return snapshots


def story_snapshots(implemented: Sequence[Mapping[str, Any]]) -> list[Snapshot]:
    """One snapshot per story implementation, in iteration order, on top of the build."""
    snapshots = []
    for number, implementation in enumerate(implemented, start=1):
        changed = implementation.get("files_changed") or {}
        files = {str(path): str(content) for path, content in changed.items()}
        message = f"story-loop iteration {number}: {implementation.get('story_id', '?')}"
        snapshots.append(Snapshot(message=message, files=files, whole_tree=False))
    return snapshots


def commit_stories(
    repo: Path, dest: Path, base: str, implemented: Sequence[Mapping[str, Any]]
) -> RepoManifest:
    """A fresh checkout of ``base`` at ``dest`` with one commit per implemented story on top
    (the story loop's chain; the product QA tests)."""
    made = checkout(repo, dest, base, branch="story-loop")
    for snapshot in story_snapshots(implemented):
        made = commit_snapshot(dest, snapshot)
    return made
