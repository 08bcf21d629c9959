"""Load the shipped defaults, overlay a user folder file by file, validate, and freeze.

Every problem found is collected (not just the first) and raised together as a
``ConfigError`` whose problems read ``file:line: field: problem (hint: …)``.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import ValidationError

from ideamine.canonical import canonical_json, content_hash
from ideamine.config import CONFIG_ENV, build, config_file, default_config_dir, overlay_folder
from ideamine.config.files import AgentFile, PhaseFile, PipelineFile
from ideamine.config.model import PipelineSpec
from ideamine.config.source import SourceFile, parse_yaml, read_text
from ideamine.engine.dag import find_cycle
from ideamine.errors import ConfigError, ConfigProblem

if TYPE_CHECKING:
    from jinja2.sandbox import ImmutableSandboxedEnvironment

__all__ = ["CONFIG_ENV", "default_config_dir", "load_pinned", "load_pipeline"]

WEIGHT_TOLERANCE = 0.001
PINNED_KEPT = 8  # pinned pipelines kept per process, by the hash of their texts
_pinned: dict[str, PipelineSpec] = {}


@dataclass
class _Files:
    """Config files by relative path: from a pinned snapshot, else the overlay folder's file
    if present, else the shipped default. Remembers the text and hash of every file read.

    ``vetted`` holds the texts of a configuration that passed every check before (a run's
    pinned files): a file whose text is the same was checked then, so its JSON Schemas and
    templates are not checked again (``vetted_file``). The same *text*, not the same manifest
    hash: the hash is over the parsed data in JSON form, where a YAML date and the string of
    it are equal. Every file of a pinned snapshot is vetted: a snapshot is only ever written
    from a configuration that loaded without a problem (by this IdeaMine or another version:
    a snapshot whose templates another Jinja2 would reject fails when a template renders).
    """

    overlay: Path | None
    snapshot: Mapping[str, str] | None = None
    vetted: Mapping[str, str] | None = None
    problems: list[ConfigProblem] = field(default_factory=list)
    manifest: dict[str, str] = field(default_factory=dict)
    texts: dict[str, str] = field(default_factory=dict)
    absent: set[str] = field(default_factory=set)  # looked for, found nowhere

    def vetted_file(self, relative: str) -> bool:
        """Whether the file read as ``relative`` passed every check before, as it is now."""
        if self.snapshot is not None:
            return True
        return (
            self.vetted is not None
            and relative in self.texts
            and self.vetted.get(relative) == self.texts[relative]
        )

    def path(self, relative: str) -> tuple[Path | None, str] | None:
        found: tuple[Path | None, str] | None
        if self.snapshot is not None:
            found = (None, f"<pinned>/{relative}") if relative in self.snapshot else None
        elif (path := config_file(self.overlay, relative)) is None:
            found = None
        elif self.overlay is not None and path == self.overlay / relative:
            found = path, str(path)
        else:
            found = path, f"<defaults>/{relative}"
        if found is None:
            self.absent.add(relative)
        return found

    def read(self, relative: str) -> SourceFile | None:
        found = self.path(relative)
        if found is None:
            return None
        path, shown = found
        try:
            text = self.snapshot[relative] if path is None else read_text(path, shown)  # type: ignore[index]
            source = parse_yaml(text, shown)
        except ConfigError as exc:
            self.problems.extend(exc.problems)
            return None
        self.texts[relative] = text
        self.manifest[relative] = content_hash(_jsonable(source.data))
        return source


def load_pipeline(
    overlay: Path | None = None, *, vetted: Mapping[str, str] | None = None
) -> PipelineSpec:
    """Load and validate the pipeline: defaults, then ``overlay`` (or ``$IDEAMINE_CONFIG``).

    ``vetted`` holds the texts (relative path → text) of a configuration that loaded without
    a problem before (a run's pinned ``files``, when it resumes): files whose text is
    unchanged since are not checked again against the JSON Schema meta-schema or for template
    syntax, the slowest checks (~0.45 s for the shipped pipeline); every other check runs.

    Raises:
        ConfigError: anything is wrong; ``problems`` lists every problem found.
    """
    overlay = overlay_folder(overlay)
    if overlay is not None and not overlay.is_dir():
        raise ConfigError(
            [
                ConfigProblem(
                    file=str(overlay),
                    line=None,
                    field="(folder)",
                    problem="not a folder",
                    hint="pass a folder shaped like the defaults: pipeline.yaml, phases/, agents/",
                )
            ]
        )
    return _load(_Files(overlay, vetted=vetted))


def load_pinned(files: Mapping[str, str]) -> PipelineSpec:
    """Load the pipeline from the config texts a run was pinned to (``PipelineSpec.files``).

    The texts are parsed and validated as a folder's are, except for the JSON Schema and
    template syntax checks, which they passed when the run was pinned (``_Files.vetted``).
    The same texts give the same (frozen) pipeline, so the last ``PINNED_KEPT`` loaded are
    kept: ``ideamine status`` or a worker asks for a run's pipeline more than once.
    A snapshot that does not load is not kept: it is validated again, and fails again.

    Raises:
        ConfigError: the snapshot does not validate (e.g. a newer IdeaMine wrote a key this
            one does not know).
    """
    key = content_hash(dict(files))
    pipeline = _pinned.get(key)
    if pipeline is None:
        pipeline = _load(_Files(None, snapshot=files))
        if len(_pinned) >= PINNED_KEPT:
            del _pinned[next(iter(_pinned))]  # the oldest
        _pinned[key] = pipeline
    return pipeline


def _load(files: _Files) -> PipelineSpec:
    pipeline_source = files.read("pipeline.yaml")
    pipeline = _parse(pipeline_source, PipelineFile, files.problems) if pipeline_source else None
    if pipeline is None:
        if pipeline_source is None and not files.problems:
            files.problems.append(
                ConfigProblem(file="pipeline.yaml", line=None, field="(file)", problem="missing")
            )
        raise ConfigError(files.problems)
    phases = _read_phases(files, pipeline_source, pipeline)  # type: ignore[arg-type]
    agents = _read_agents(files, phases)
    agents.update(_read_qav_agents(files, pipeline_source, pipeline, phases))  # type: ignore[arg-type]
    schemas = _read_schemas(files, phases, agents)
    _check_graph(phases, pipeline.phases, files.problems)
    for source, phase in phases.values():
        files.problems.extend(_check_phase(source, phase, agents, schemas))
    if files.problems:
        raise ConfigError(files.problems)
    manifest = dict(sorted(files.manifest.items()))
    return build.pipeline_spec(
        pipeline,
        {name: pf for name, (_, pf) in phases.items()},
        {name: af for name, (_, af) in agents.items()},
        schemas,
        manifest,
        content_hash(manifest),
        dict(sorted(files.texts.items())),
        frozenset(files.absent),
    )


_M = TypeVar("_M", PipelineFile, PhaseFile, AgentFile)


def _parse(source: SourceFile, model: type[_M], problems: list[ConfigProblem]) -> _M | None:
    try:
        return model.model_validate(source.data)
    except ValidationError as exc:
        problems.extend(_translate(source, model, exc))
        return None


def _translate(
    source: SourceFile, model: type[Any], exc: ValidationError
) -> Iterator[ConfigProblem]:
    for error in exc.errors():
        loc = tuple(part for part in error["loc"] if not _is_union_tag(part))
        kind = error["type"]
        if kind == "extra_forbidden":
            allowed = ", ".join(sorted(_fields_at(model, loc[:-1])))
            yield source.problem(loc, "unknown key", f"allowed keys here: {allowed}")
        elif kind == "missing":
            yield source.problem(loc, "required key is missing", "add it; see the defaults")
        elif kind == "model_type" and not loc:
            yield source.problem(loc, "the file must hold a mapping of keys to values")
        else:
            got = type(error.get("input")).__name__
            yield source.problem(loc, f"{error['msg'].lower()} (got {got})")


def _is_union_tag(part: object) -> bool:
    """pydantic puts the union member's name into error locations; files don't have it."""
    return isinstance(part, str) and (
        part in {"int", "str", "list[str]", "CustomAggregation"}
        or part.startswith(("literal[", "function-"))
    )


def _fields_at(model: type[Any], loc: tuple[str | int, ...]) -> list[str]:
    current: Any = model
    for part in loc:
        fields = getattr(current, "model_fields", None)
        if isinstance(part, int) or fields is None or part not in fields:
            continue  # a list index or a mapping key: stay on the element's model
        info = current.model_fields.get(part)
        annotation = getattr(info, "annotation", None)
        current = next(
            (
                arg
                for arg in getattr(annotation, "__args__", (annotation,))
                if hasattr(arg, "model_fields")
            ),
            annotation,
        )
    return list(getattr(current, "model_fields", {}))


def _read_phases(
    files: _Files, pipeline_source: SourceFile, pipeline: PipelineFile
) -> dict[str, tuple[SourceFile, PhaseFile]]:
    phases: dict[str, tuple[SourceFile, PhaseFile]] = {}
    for index, name in enumerate(pipeline.phases):
        if name in phases:
            files.problems.append(
                pipeline_source.problem(("phases", index), f"phase {name!r} is listed twice")
            )
            continue
        source = files.read(f"phases/{name}.yaml")
        if source is None:
            if files.path(f"phases/{name}.yaml") is None:
                files.problems.append(
                    pipeline_source.problem(
                        ("phases", index),
                        f"no file phases/{name}.yaml for phase {name!r}",
                        "create it, or remove the phase from the list",
                    )
                )
            continue
        parsed = _parse(source, PhaseFile, files.problems)
        if parsed is None:
            continue
        if parsed.phase != name:
            files.problems.append(
                source.problem(
                    ("phase",),
                    f"says {parsed.phase!r} but the file is phases/{name}.yaml",
                    "make the name and the file name agree",
                )
            )
        phases[name] = (source, parsed)
    return phases


def _read_agents(
    files: _Files, phases: Mapping[str, tuple[SourceFile, PhaseFile]]
) -> dict[str, tuple[SourceFile, AgentFile]]:
    agents: dict[str, tuple[SourceFile, AgentFile]] = {}
    for phase_name, (phase_source, phase) in phases.items():
        for index, name in enumerate(phase.agents):
            missing = phase_source.problem(
                ("agents", index),
                f"unknown agent {name!r} (no file agents/{name}.yaml)",
                f"create agents/{name}.yaml in your --config folder or fix the name",
            )
            wrong_phase = (
                f"phases/{phase_name}.yaml lists it",
                "an agent belongs to the one phase that lists it",
            )
            found = _read_agent(files, name, phase_name, missing, wrong_phase)
            if found is not None:
                agents[name] = found
    return agents


def _read_qav_agents(
    files: _Files,
    pipeline_source: SourceFile,
    pipeline: PipelineFile,
    phases: Mapping[str, tuple[SourceFile, PhaseFile]],
) -> dict[str, tuple[SourceFile, AgentFile]]:
    """The question and answer agents of the Q/A/V loop (needed when a phase enables it)."""
    if not any(p.qav.enabled and p.qav.max_questions > 0 for _, p in phases.values()):
        return {}
    agents: dict[str, tuple[SourceFile, AgentFile]] = {}
    for role, name in (
        ("question", pipeline.qav_agents.question),
        ("answer", pipeline.qav_agents.answer),
    ):
        missing = pipeline_source.problem(
            ("qav_agents", role),
            f"unknown agent {name!r} (no file agents/{name}.yaml)",
            f"create agents/{name}.yaml with phase: qav, or set qav.enabled: false in every phase",
        )
        wrong_phase = (
            f"pipeline.yaml names it as the Q/A/V {role} agent",
            "Q/A/V agents say phase: qav",
        )
        found = _read_agent(files, name, "qav", missing, wrong_phase)
        if found is not None:
            agents[name] = found
    return agents


def _read_agent(
    files: _Files,
    name: str,
    phase: str,
    missing: ConfigProblem,
    wrong_phase: tuple[str, str],
) -> tuple[SourceFile, AgentFile] | None:
    """``agents/<name>.yaml`` parsed and checked (its name, its ``phase``); problems go to
    ``files.problems`` (``missing`` when there is no such file)."""
    relative = f"agents/{name}.yaml"
    if files.path(relative) is None:
        files.problems.append(missing)
        return None
    source = files.read(relative)
    parsed = _parse(source, AgentFile, files.problems) if source else None
    if source is None or parsed is None:
        return None
    if parsed.name != name:
        files.problems.append(
            source.problem(("name",), f"says {parsed.name!r} but the file is {relative}")
        )
    if parsed.phase != phase:
        where, hint = wrong_phase
        files.problems.append(
            source.problem(("phase",), f"says {parsed.phase!r} but {where}", hint)
        )
    files.problems.extend(_check_agent(source, parsed, deep=not files.vetted_file(relative)))
    return source, parsed


def _read_schemas(
    files: _Files,
    phases: Mapping[str, tuple[SourceFile, PhaseFile]],
    agents: Mapping[str, tuple[SourceFile, AgentFile]],
) -> dict[str, Any]:
    types = {t for _, pf in phases.values() for t in (a.type for a in pf.artifacts)}
    types |= {t for _, af in agents.values() for t in build.artifact_types(af)}
    schemas: dict[str, Any] = {}
    for artifact_type in sorted(types):
        relative = f"schemas/{artifact_type}.yaml"
        source = files.read(relative)
        if source is None:
            continue
        problem = "" if files.vetted_file(relative) else _schema_problem(source.data)
        if problem:
            files.problems.append(source.problem((), problem, "fix the JSON Schema"))
        else:
            schemas[artifact_type] = source.data
    return schemas


def _schema_problem(schema: object) -> str:
    if not isinstance(schema, dict):
        return "a JSON Schema must be a mapping"
    try:
        text = canonical_json(schema)
    except (TypeError, ValueError):  # YAML gave it values JSON cannot hold: check it as is
        return _meta_check(schema)
    return _checked_schema(text)


@functools.lru_cache(maxsize=512)
def _checked_schema(text: str) -> str:
    """``_meta_check`` of the schema ``text``, once per process: the meta-schema check is
    the slowest part of loading a config, and a resumed run loads its config twice (the
    folder's, then the pinned one) with the same schemas."""
    return _meta_check(json.loads(text))


def _meta_check(schema: Mapping[str, Any]) -> str:
    from ideamine.jsonschemas import Draft202012Validator, SchemaError  # noqa: PLC0415

    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        return f"not a valid JSON Schema: {exc.message}"
    return ""


@functools.cache
def _syntax() -> ImmutableSandboxedEnvironment:
    """The Jinja2 environment that parses templates to check them (imported on first use: a
    configuration whose files are all vetted, or that has no templates, needs none)."""
    from jinja2.sandbox import ImmutableSandboxedEnvironment  # noqa: PLC0415

    return ImmutableSandboxedEnvironment()


def _check_agent(
    source: SourceFile, agent: AgentFile, *, deep: bool = True
) -> Iterator[ConfigProblem]:
    """The agent file's own checks; ``deep`` adds its JSON Schema's and its templates'."""
    if agent.callable is None and (agent.prompt is None or agent.offline is None):
        yield source.problem(
            (),
            "a model agent needs both `prompt` and `offline`",
            "add them, or name a Python function with `callable: module:fn`",
        )
    if agent.callable is not None and (agent.prompt or agent.offline):
        yield source.problem(
            ("callable",),
            "a callable agent takes no prompt or offline template",
            "remove `prompt` and `offline`",
        )
    if not deep:
        return
    if problem := _schema_problem(agent.output_schema):
        yield source.problem(("output_schema",), problem, "fix the JSON Schema")
    for key in ("prompt", "offline"):
        text = getattr(agent, key)
        if text is None:
            continue
        from jinja2 import TemplateSyntaxError  # noqa: PLC0415

        try:
            _syntax().parse(text)
        except TemplateSyntaxError as exc:
            start = source.text_lines.get((key,), source.line_of((key,)))
            line = start + (exc.lineno or 1) - 1
            yield ConfigProblem(
                file=source.path,
                line=line,
                field=key,
                problem=f"template syntax error: {exc.message}",
                hint="check the Jinja2 tags near that line",
            )


def _check_graph(
    phases: Mapping[str, tuple[SourceFile, PhaseFile]],
    listed: Sequence[str],
    problems: list[ConfigProblem],
) -> None:
    """Self and unknown dependencies (against every listed phase, parsed or not), cycles."""
    for name, (source, phase) in phases.items():
        for index, dep in enumerate(phase.depends_on):
            if dep == name:
                problems.append(
                    source.problem(("depends_on", index), "a phase cannot depend on itself")
                )
            elif dep not in listed:
                problems.append(
                    source.problem(
                        ("depends_on", index),
                        f"unknown phase {dep!r}",
                        f"known phases: {', '.join(listed)}",
                    )
                )
    graph = {name: [d for d in pf.depends_on if d != name] for name, (_, pf) in phases.items()}
    cycle = find_cycle(graph)
    if cycle:
        source = phases[cycle[0]][0]
        problems.append(
            source.problem(
                ("depends_on",),
                "dependency cycle: " + " → ".join(cycle),
                "remove one of these dependencies",
            )
        )


def _check_phase(
    source: SourceFile,
    phase: PhaseFile,
    agents: Mapping[str, tuple[SourceFile, AgentFile]],
    schemas: Mapping[str, Any],
) -> Iterator[ConfigProblem]:
    total = sum(phase.gate.rubrics.values())
    if abs(total - 1.0) > WEIGHT_TOLERANCE:
        yield source.problem(
            ("gate", "rubrics"),
            f"weights sum to {total:g}, not 1",
            "adjust the weights so they add up to 1 (± 0.001)",
        )
    if isinstance(phase.parallelism, int) and phase.parallelism < 1:
        yield source.problem(("parallelism",), "must be at least 1")
    if (phase.parallelism == "iterative") != (phase.loop is not None):
        yield source.problem(
            ("loop",) if phase.loop else ("parallelism",),
            "`loop` goes with `parallelism: iterative`, and only with it",
            "add or remove the `loop` block",
        )
    if any(name not in agents for name in phase.agents):
        return  # a missing or broken agent file is reported already; its outputs are unknown
    produced = {t for name in phase.agents for t in build.artifact_types(agents[name][1])}
    for index, artifact in enumerate(phase.artifacts):
        if artifact.type not in produced:
            yield source.problem(
                ("artifacts", index, "type"),
                f"no agent of this phase produces {artifact.type!r}",
                "add an agent whose artifact_type names it",
            )
    producers = [t for name in phase.agents for t in build.artifact_types(agents[name][1])]
    for artifact_type in sorted({t for t in producers if producers.count(t) > 1}):
        if artifact_type not in schemas and phase.aggregation == "merge":
            yield source.problem(
                ("agents",),
                f"several agents produce {artifact_type!r}, so "
                "their merged artifact needs a schema",
                f"add schemas/{artifact_type}.yaml",
            )
    if len(set(phase.agents)) != len(phase.agents):
        yield source.problem(("agents",), "an agent is listed twice")


def _jsonable(value: object) -> object:
    """YAML may hold dates; the manifest hashes the JSON form of the data."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)
