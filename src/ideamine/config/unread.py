"""The YAML files of a ``--config`` folder that the loader did not read: a misspelt name
(``pipeline.yml``, ``agent/``), an agent no phase lists, a phase ``pipeline.yaml`` does not
name, a schema for a type nothing produces.

They are not errors (a folder may hold other things beside its configuration), but a file
someone wrote for IdeaMine that IdeaMine ignores is nearly always a mistake, so the commands
that load a folder show each as a warning that says what to do.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterable, Iterator
from pathlib import Path, PurePosixPath

from ideamine.config.model import PipelineSpec
from ideamine.errors import ConfigProblem

__all__ = ["unread_files"]

YAML_SUFFIXES = (".yaml", ".yml")
TOP_FILE = "pipeline.yaml"
PLACES = ("phases", "agents", "schemas")


def unread_files(overlay: Path, pipeline: PipelineSpec) -> list[ConfigProblem]:
    """One problem per YAML file under ``overlay`` that loading ``pipeline`` from it did not
    read, in path order; first, one for the folder itself when none of its files was read (it
    changes nothing: a wrong path?).

    A file counts as read when it *is* a file the loader read (same device and inode: a
    symbolic link to it, or its name in another case on a case-insensitive file system).
    Hidden files and folders are skipped, and so is what cannot be listed or looked at; the
    walk stops two folders down (``agents/extra/X.yaml``), so a stray ``.venv`` or
    ``node_modules`` costs nothing.
    """
    read = {same for relative in pipeline.files if (same := _identity(overlay / relative))}
    found: list[ConfigProblem] = []
    if not read:
        found.append(
            ConfigProblem(
                file=str(overlay),
                line=None,
                field="(folder)",
                problem="no file of this folder is read: the shipped defaults are used alone",
                hint="a --config folder overrides the defaults file by file: pipeline.yaml, "
                "phases/<phase>.yaml, agents/<Agent>.yaml, schemas/<Type>.yaml",
            )
        )
    for path in sorted(_yaml_files(overlay)):
        if _identity(path) in read:
            continue
        problem, hint = _why(PurePosixPath(path.relative_to(overlay).as_posix()), path, pipeline)
        found.append(
            ConfigProblem(file=str(path), line=None, field="(file)", problem=problem, hint=hint)
        )
    return found


def _yaml_files(overlay: Path) -> Iterator[Path]:
    """The YAML files of ``overlay``: at its top, in its folders, and one folder further
    down inside ``phases/``, ``agents/`` and ``schemas/``."""
    for folder, subfolders, names in os.walk(overlay, followlinks=True):
        depth = len(Path(folder).relative_to(overlay).parts)
        subfolders[:] = [
            sub
            for sub in subfolders
            if not sub.startswith(".")
            and (depth == 0 or (depth == 1 and Path(folder).name in PLACES))
        ]
        for name in names:
            if not name.startswith(".") and Path(name).suffix.lower() in YAML_SUFFIXES:
                yield Path(folder) / name


def _identity(path: Path) -> tuple[int, int] | None:
    """(device, inode) of the file at ``path``, following links; None if there is none."""
    try:
        status = path.stat()
    except OSError:
        return None
    return (status.st_dev, status.st_ino)


def _why(relative: PurePosixPath, path: Path, pipeline: PipelineSpec) -> tuple[str, str]:
    """Why the file at ``relative`` (``path``) was not read, and what to do."""
    if relative.suffix != ".yaml":
        proper = f"{relative.stem}.yaml"
        if path.with_name(proper).is_file():
            return f"not read: {proper} beside it is", f"merge it into {proper}, or delete it"
        return "not read: IdeaMine reads only .yaml files", f"rename it to {proper}"
    if len(relative.parts) == 1:
        return (
            f"not read: the folder's top level holds only {TOP_FILE}",
            _nearest(relative.name, [TOP_FILE], "move it into phases/, agents/ or schemas/"),
        )
    place = relative.parts[0]
    if place not in PLACES or len(relative.parts) > 2:
        folder = _nearest(place, PLACES, "", template="{}")
        where = f"{folder}/{relative.name}" if folder else "phases/, agents/ or schemas/"
        return (
            "not read: configuration files go in phases/, agents/ or schemas/, one level deep",
            f"move it to {where}",
        )
    return _unlisted(place, relative.stem, pipeline)


def _unlisted(place: str, name: str, pipeline: PipelineSpec) -> tuple[str, str]:
    """Why ``place/name.yaml``, in the right place, was not read: nothing names it."""
    if place == "agents" and name in pipeline.qav_agents.values():
        return (
            f"not read: {name!r} is a Q/A/V agent and no phase asks questions",
            "give a phase `qav.max_questions` above 0, or delete the file",
        )
    if place == "agents":
        return (
            f"not read: no phase lists agent {name!r}",
            _nearest(
                name,
                pipeline.agents,
                "list it under a phase's `agents`, or delete the file",
                template="did you mean agents/{}.yaml?",
            ),
        )
    if place == "phases":
        return (
            f"not read: pipeline.yaml's `phases` does not name {name!r}",
            _nearest(
                name,
                [phase.name for phase in pipeline.phases],
                "add it to `phases` in pipeline.yaml, or delete the file",
                template="did you mean phases/{}.yaml?",
            ),
        )
    return (
        f"not read: no agent produces artifact type {name!r}",
        _nearest(
            name,
            _artifact_types(pipeline),
            "name the file after an agent's `artifact_type`, or delete it",
            template="did you mean schemas/{}.yaml?",
        ),
    )


def _artifact_types(pipeline: PipelineSpec) -> list[str]:
    produced = {t for agent in pipeline.agents.values() for t in agent.artifact_types}
    return sorted(produced | {a.type for phase in pipeline.phases for a in phase.artifacts})


def _nearest(
    word: str, choices: Iterable[str], otherwise: str, *, template: str = "did you mean {}?"
) -> str:
    """``template`` filled with the choice closest to ``word`` (ignoring case), if one is
    close; ``otherwise`` if none is."""
    by_folded = {choice.lower(): choice for choice in choices}
    close = difflib.get_close_matches(word.lower(), list(by_folded), n=1, cutoff=0.75)
    return template.format(by_folded[close[0]]) if close else otherwise
