"""The YAML files of a ``--config`` folder that the loader did not read: a misspelt name
(``pipeline.yml``, ``agent/``), an agent no phase lists, a phase ``pipeline.yaml`` does not
name, a schema for a type nothing produces.

They are not errors (a folder may hold other things beside its configuration), but a file
someone wrote for IdeaMine that IdeaMine ignores is nearly always a mistake, so the commands
that load a folder show each as a warning that says what to do.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

from ideamine.config.model import PipelineSpec
from ideamine.errors import ConfigProblem

__all__ = ["unread_files"]

YAML_SUFFIXES = (".yaml", ".yml")
TOP_FILE = "pipeline.yaml"
PLACES = ("phases", "agents", "schemas")


def unread_files(overlay: Path, pipeline: PipelineSpec) -> list[ConfigProblem]:
    """One problem per YAML file under ``overlay`` that loading ``pipeline`` from it did not
    read (hidden files and folders are skipped), in path order; first, one for the folder
    itself when none of its files was read (it changes nothing: a wrong path?)."""
    read = set(pipeline.files)
    found = []
    if not any((overlay / relative).is_file() for relative in read):
        found.append(
            ConfigProblem(
                file=str(overlay),
                line=1,
                field="(folder)",
                problem="no file of this folder is read: the shipped defaults are used alone",
                hint="a --config folder overrides the defaults file by file: pipeline.yaml, "
                "phases/<phase>.yaml, agents/<Agent>.yaml, schemas/<Type>.yaml",
            )
        )
    for path in sorted(overlay.rglob("*")):
        relative = PurePosixPath(path.relative_to(overlay).as_posix())
        if any(part.startswith(".") for part in relative.parts):
            continue
        if path.suffix in YAML_SUFFIXES and str(relative) not in read and path.is_file():
            problem, hint = _why(relative, pipeline)
            found.append(
                ConfigProblem(file=str(path), line=1, field="(file)", problem=problem, hint=hint)
            )
    return found


def _why(relative: PurePosixPath, pipeline: PipelineSpec) -> tuple[str, str]:
    """Why the file at ``relative`` was not read, and what to do."""
    if relative.suffix != ".yaml":
        return "not read: IdeaMine reads only .yaml files", f"rename it to {relative.stem}.yaml"
    if len(relative.parts) == 1:
        return (
            f"not read: the folder's top level holds only {TOP_FILE}",
            _nearest(relative.name, [TOP_FILE], "move it into phases/, agents/ or schemas/"),
        )
    place, name = relative.parts[0], relative.stem
    if place not in PLACES or len(relative.parts) > 2:
        folder = _nearest(place, PLACES, "", template="{}")
        where = f"{folder}/{relative.name}" if folder else "phases/, agents/ or schemas/"
        return (
            "not read: configuration files go in phases/, agents/ or schemas/, one level deep",
            f"move it to {where}",
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
