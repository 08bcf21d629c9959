"""The configuration loader: overlays, problems located as ``file:line: field``, manifest.

Every test writes its own overlay folder whose ``pipeline.yaml`` lists only its own phases, so
the loader never reads the shipped agents (which these tests do not depend on). Files under
test are written by hand, line by line, so the expected line of every problem is known.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest
import yaml
from tests.support.configs import write_callable_pipeline

from ideamine.canonical import content_hash
from ideamine.config import loader
from ideamine.config.loader import (
    CONFIG_ENV,
    PINNED_KEPT,
    default_config_dir,
    load_pinned,
    load_pipeline,
)
from ideamine.config.model import FanOutKind, PipelineSpec
from ideamine.errors import ConfigError, ConfigProblem, UsageError

ECHO = "tests.support.agents:echo"


# --- helpers -----------------------------------------------------------------------------


def _pascal(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("-"))


def pipeline_text(phases: Sequence[str]) -> str:
    return (
        "\n".join(
            [
                "name: test",
                'version: "1"',
                "default_model: offline:template",
                "phases:",
                *(f"  - {phase}" for phase in phases),
            ]
        )
        + "\n"
    )


def phase_text(name: str, deps: Sequence[str] = (), agents: Sequence[str] | None = None) -> str:
    """A valid phase file, one value per line (lists in block style)."""
    agents = list(agents) if agents is not None else [f"{_pascal(name)}Agent0"]
    return (
        "\n".join(
            [
                f"phase: {name}",
                f"description: test phase {name}",
                *(["depends_on:", *(f"  - {dep}" for dep in deps)] if deps else ["depends_on: []"]),
                "parallelism: parallel",
                "aggregation: merge",
                "agents:",
                *(f"  - {agent}" for agent in agents),
                "budgets:",
                "  tokens: 1000",
                "  wallclock_minutes: 1",
                "gate:",
                "  pass_threshold: 0.5",
                "  max_attempts: 1",
                "  rubrics:",
                "    grounding: 1.0",
                "qav:",
                "  max_questions: 0",
                "  min_grounding: 0.5",
                "  max_iterations: 1",
                "artifacts:",
                f"  - type: {_pascal(name)}Result",
                "    required: true",
                "retries:",
                "  max_attempts: 3",
                "  base_delay_ms: 10",
                "  max_delay_ms: 50",
            ]
        )
        + "\n"
    )


def agent_text(name: str, phase: str, artifact_type: str | None = None) -> str:
    """A valid callable agent file."""
    return (
        "\n".join(
            [
                f"name: {name}",
                f"phase: {phase}",
                "role: test agent",
                f"artifact_type: {artifact_type or _pascal(phase) + 'Result'}",
                f"callable: {ECHO}",
                "timeout_seconds: 30",
                "output_schema:",
                "  type: object",
                "  required: [value]",
                "  properties:",
                "    value: {type: object}",
            ]
        )
        + "\n"
    )


def model_agent_text(name: str, phase: str, offline: str) -> str:
    """A valid model agent file whose ``offline`` template is ``offline`` (a block scalar)."""
    return (
        "\n".join(
            [
                f"name: {name}",
                f"phase: {phase}",
                "role: test agent",
                f"artifact_type: {_pascal(phase)}Result",
                "output_schema:",
                "  type: object",
                "prompt: |",
                "  Describe {{ idea.text }} in one line.",
                "offline: |",
                *(f"  {row}" if row else "" for row in offline.splitlines()),
            ]
        )
        + "\n"
    )


def line(text: str, needle: str) -> int:
    """The 1-based number of the one line of ``text`` that contains ``needle``."""
    hits = [number for number, row in enumerate(text.splitlines(), 1) if needle in row]
    assert len(hits) == 1, f"{needle!r} is on lines {hits}"
    return hits[0]


def replace_once(text: str, old: str, new: str) -> str:
    assert text.count(old) == 1, f"{old!r} occurs {text.count(old)} times"
    return text.replace(old, new)


def assert_at(
    problem: ConfigProblem, file: str, line_no: int | None, field: str, message: str
) -> None:
    """``problem`` reads ``file:line_no: field: message…`` (``file: field: …`` for a whole
    file or folder, ``line_no`` None)."""
    assert (problem.file, problem.line, problem.field) == (file, line_no, field), str(problem)
    assert problem.problem.startswith(message), str(problem)
    where = file if line_no is None else f"{file}:{line_no}"
    assert str(problem).startswith(f"{where}: {field}: {message}")
    if problem.hint:
        assert str(problem).endswith(f" (hint: {problem.hint})")


class Overlay:
    """An overlay folder on disk, with the loader's view of it."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def write(self, relative: str, text: str) -> str:
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return text

    def shown(self, relative: str) -> str:
        """How the loader names an overlay file in messages."""
        return str(self.root / relative)

    def load(self) -> PipelineSpec:
        return load_pipeline(self.root)

    def problems(self) -> tuple[ConfigProblem, ...]:
        with pytest.raises(ConfigError) as caught:
            load_pipeline(self.root)
        return caught.value.problems

    def only_problem(self) -> ConfigProblem:
        problems = self.problems()
        assert len(problems) == 1, [str(problem) for problem in problems]
        return problems[0]

    def only_problem_in(self, relative: str) -> ConfigProblem:
        """The one problem in ``relative`` (other files may have follow-on problems)."""
        problems = [p for p in self.problems() if p.file == self.shown(relative)]
        assert len(problems) == 1, [str(problem) for problem in problems]
        return problems[0]


def make_overlay(root: Path, dag: dict[str, list[str]], agents_per_phase: int = 1) -> Overlay:
    """A valid callable pipeline over ``dag`` whose pipeline, phase and agent files are written
    by hand (so their lines are known); schemas/ come from ``write_callable_pipeline``."""
    write_callable_pipeline(root, dag, agents_per_phase=agents_per_phase)
    overlay = Overlay(root)
    overlay.write("pipeline.yaml", pipeline_text(list(dag)))
    for name, deps in dag.items():
        agents = [f"{_pascal(name)}Agent{index}" for index in range(agents_per_phase)]
        overlay.write(f"phases/{name}.yaml", phase_text(name, deps, agents))
        for agent in agents:
            overlay.write(f"agents/{agent}.yaml", agent_text(agent, name))
    return overlay


@pytest.fixture
def overlay(tmp_path: Path) -> Overlay:
    """Phases ``a`` and ``b`` (``b`` depends on ``a``), one callable agent each."""
    return make_overlay(tmp_path / "cfg", {"a": [], "b": ["a"]})


def problem_matching(problems: Sequence[ConfigProblem], field: str) -> ConfigProblem:
    found = [problem for problem in problems if problem.field == field]
    assert len(found) == 1, [str(problem) for problem in problems]
    return found[0]


# --- a valid overlay ---------------------------------------------------------------------


def test_valid_overlay_loads(overlay: Overlay) -> None:
    spec = overlay.load()

    assert spec.name == "test"
    assert [phase.name for phase in spec.phases] == ["a", "b"]
    assert spec.phase("b").depends_on == ("a",)
    assert set(spec.agents) == {"AAgent0", "BAgent0"}
    assert spec.agents["AAgent0"].callable == ECHO
    assert [(a.type, a.required) for a in spec.phase("a").artifacts] == [("AResult", True)]


def test_callable_pipeline_helper_output_loads(tmp_path: Path) -> None:
    root = write_callable_pipeline(
        tmp_path,
        {"a": [], "b": ["a"], "c": ["a", "b"]},
        agents_per_phase=3,
        parallelism={"c": "iterative"},
    )

    spec = load_pipeline(root)

    assert spec.phase("c").fan_out.kind is FanOutKind.ITERATIVE
    assert spec.phase("c").loop is not None
    assert len(spec.agents) == 9


# --- unknown keys ------------------------------------------------------------------------


def test_unknown_top_level_key_in_phase(overlay: Overlay) -> None:
    text = overlay.write(
        "phases/b.yaml",
        replace_once(
            phase_text("b", ["a"]),
            "parallelism: parallel\n",
            "parallelism: parallel\ncolour: blue\n",
        ),
    )

    problem = overlay.only_problem()

    assert_at(
        problem, overlay.shown("phases/b.yaml"), line(text, "colour"), "colour", "unknown key"
    )
    assert problem.hint.startswith("allowed keys here: ")
    for key in ("phase", "parallelism", "gate", "qav", "budgets", "loop", "heartbeat"):
        assert key in problem.hint


def test_unknown_nested_key_is_a_typo_of_pass_threshold(overlay: Overlay) -> None:
    text = overlay.write(
        "phases/b.yaml",
        replace_once(phase_text("b", ["a"]), "pass_threshold: 0.5", "pass_treshold: 0.5"),
    )

    problems = overlay.problems()

    assert len(problems) == 2, [str(problem) for problem in problems]
    unknown = problem_matching(problems, "gate.pass_treshold")
    assert_at(
        unknown,
        overlay.shown("phases/b.yaml"),
        line(text, "pass_treshold"),
        "gate.pass_treshold",
        "unknown key",
    )
    assert unknown.hint == "allowed keys here: auto_fix, max_attempts, pass_threshold, rubrics"
    missing = problem_matching(problems, "gate.pass_threshold")
    assert_at(
        missing,
        overlay.shown("phases/b.yaml"),
        line(text, "gate:"),
        "gate.pass_threshold",
        "required key is missing",
    )
    assert missing.hint


def test_unknown_key_in_a_list_item(overlay: Overlay) -> None:
    text = overlay.write(
        "phases/b.yaml",
        replace_once(
            phase_text("b", ["a"]), "    required: true", "    required: true\n    optional: false"
        ),
    )

    problem = overlay.only_problem()

    assert_at(
        problem,
        overlay.shown("phases/b.yaml"),
        line(text, "optional"),
        "artifacts.0.optional",
        "unknown key",
    )
    assert problem.hint == "allowed keys here: required, type"


def test_unknown_key_in_pipeline_yaml(overlay: Overlay) -> None:
    text = overlay.write("pipeline.yaml", pipeline_text(["a", "b"]) + "colour: blue\n")

    problem = overlay.only_problem()

    assert_at(
        problem, overlay.shown("pipeline.yaml"), line(text, "colour"), "colour", "unknown key"
    )
    assert (
        problem.hint
        == "allowed keys here: advisories, default_model, name, phases, pricing, providers, "
        "qav_agents, version"
    )


def test_unknown_key_in_a_pricing_entry_lists_the_allowed_keys(overlay: Overlay) -> None:
    """Fails: ``_fields_at`` cannot walk through ``dict[str, PriceEntry]`` (the model name is
    a dict key, not a field), so the hint reads ``allowed keys here: `` with nothing after."""
    text = overlay.write(
        "pipeline.yaml",
        pipeline_text(["a", "b"])
        + "\n".join(
            [
                "pricing:",
                "  openai:gpt-4o:",
                "    input_per_mtok: 2.5",
                "    output_per_mtok: 10.0",
                "    cached_per_mtok: 1.0",
            ]
        )
        + "\n",
    )

    problem = overlay.only_problem()

    assert_at(
        problem,
        overlay.shown("pipeline.yaml"),
        line(text, "cached_per_mtok"),
        "pricing.openai:gpt-4o.cached_per_mtok",
        "unknown key",
    )
    assert problem.hint == "allowed keys here: input_per_mtok, output_per_mtok"


def test_unknown_key_in_an_agent_file(overlay: Overlay) -> None:
    text = overlay.write("agents/AAgent0.yaml", agent_text("AAgent0", "a") + "temprature: 0.3\n")

    problem = overlay.only_problem_in("agents/AAgent0.yaml")

    assert_at(
        problem,
        overlay.shown("agents/AAgent0.yaml"),
        line(text, "temprature"),
        "temprature",
        "unknown key",
    )
    assert "temperature" in problem.hint


# --- wrong types and missing keys --------------------------------------------------------


def test_pass_threshold_must_be_a_number(overlay: Overlay) -> None:
    text = overlay.write(
        "phases/b.yaml",
        replace_once(phase_text("b", ["a"]), "pass_threshold: 0.5", 'pass_threshold: "high"'),
    )

    problem = overlay.only_problem()

    assert_at(
        problem,
        overlay.shown("phases/b.yaml"),
        line(text, "pass_threshold"),
        "gate.pass_threshold",
        "input should be a valid number",
    )
    assert problem.problem.endswith("(got str)")


def test_max_attempts_must_be_an_integer(overlay: Overlay) -> None:
    text = overlay.write(
        "phases/b.yaml",
        replace_once(phase_text("b", ["a"]), "  max_attempts: 1", "  max_attempts: 2.5"),
    )

    problem = overlay.only_problem()

    assert_at(
        problem,
        overlay.shown("phases/b.yaml"),
        line(text, "max_attempts: 2.5"),
        "gate.max_attempts",
        "input should be a valid integer",
    )
    assert problem.problem.endswith("(got float)")


def test_agents_must_be_a_list(overlay: Overlay) -> None:
    text = overlay.write(
        "phases/b.yaml",
        replace_once(phase_text("b", ["a"]), "agents:\n  - BAgent0\n", "agents: BAgent0\n"),
    )

    problem = overlay.only_problem()

    assert_at(
        problem,
        overlay.shown("phases/b.yaml"),
        line(text, "agents:"),
        "agents",
        "input should be a valid list",
    )
    assert problem.problem.endswith("(got str)")


def test_parallelism_of_the_wrong_type_is_reported_on_the_field_itself(overlay: Overlay) -> None:
    text = overlay.write(
        "phases/b.yaml",
        replace_once(phase_text("b", ["a"]), "parallelism: parallel", "parallelism: 2.5"),
    )

    problems = overlay.problems()

    assert problems
    for problem in problems:  # one per union member, none with pydantic's member tags
        assert (problem.file, problem.line, problem.field) == (
            overlay.shown("phases/b.yaml"),
            line(text, "parallelism"),
            "parallelism",
        )


def test_parallelism_below_one_is_rejected(overlay: Overlay) -> None:
    text = overlay.write(
        "phases/a.yaml", replace_once(phase_text("a"), "parallelism: parallel", "parallelism: 0")
    )

    problem = overlay.only_problem()

    assert_at(
        problem,
        overlay.shown("phases/a.yaml"),
        line(text, "parallelism"),
        "parallelism",
        "must be at least 1",
    )


def test_missing_required_top_level_key(overlay: Overlay) -> None:
    overlay.write(
        "phases/b.yaml",
        replace_once(
            phase_text("b", ["a"]), "budgets:\n  tokens: 1000\n  wallclock_minutes: 1\n", ""
        ),
    )

    problem = overlay.only_problem()

    # A missing key has no line of its own: the problem points at the mapping that lacks it.
    assert_at(problem, overlay.shown("phases/b.yaml"), 1, "budgets", "required key is missing")
    assert problem.hint


def test_missing_required_nested_key_points_at_its_parent(overlay: Overlay) -> None:
    text = overlay.write(
        "phases/b.yaml", replace_once(phase_text("b", ["a"]), "  min_grounding: 0.5\n", "")
    )

    problem = overlay.only_problem()

    assert_at(
        problem,
        overlay.shown("phases/b.yaml"),
        line(text, "qav:"),
        "qav.min_grounding",
        "required key is missing",
    )
    assert problem.hint


def test_a_file_that_is_not_a_mapping(overlay: Overlay) -> None:
    overlay.write("agents/BAgent0.yaml", "- name\n- phase\n")

    problem = overlay.only_problem_in("agents/BAgent0.yaml")

    assert_at(
        problem, overlay.shown("agents/BAgent0.yaml"), 1, "(file)", "the file must hold a mapping"
    )


# --- rubric weights ----------------------------------------------------------------------


def _rubrics(weights: Sequence[float]) -> str:
    return "\n".join(f"    r{index}: {weight}" for index, weight in enumerate(weights))


@pytest.mark.parametrize(
    "weights",
    [
        (1.0,),
        (0.3333, 0.3333, 0.3334),
        (0.5, 0.5009),
        (0.5, 0.4991),
        (0.1,) * 10,
    ],
)
def test_rubric_weights_summing_to_one_within_tolerance_pass(
    overlay: Overlay, weights: Sequence[float]
) -> None:
    overlay.write(
        "phases/a.yaml", replace_once(phase_text("a"), "    grounding: 1.0", _rubrics(weights))
    )

    spec = overlay.load()

    assert dict(spec.phase("a").gate.rubrics) == {f"r{i}": w for i, w in enumerate(weights)}


@pytest.mark.parametrize(
    ("weights", "total"),
    [
        ((0.3, 0.3, 0.3), "0.9"),
        ((0.5, 0.5011), "1.0011"),
        ((0.5, 0.4989), "0.9989"),
        ((0.6, 0.6), "1.2"),
    ],
)
def test_rubric_weights_not_summing_to_one_are_rejected(
    overlay: Overlay, weights: Sequence[float], total: str
) -> None:
    text = overlay.write(
        "phases/a.yaml", replace_once(phase_text("a"), "    grounding: 1.0", _rubrics(weights))
    )

    problem = overlay.only_problem()

    assert_at(
        problem,
        overlay.shown("phases/a.yaml"),
        line(text, "rubrics:"),
        "gate.rubrics",
        f"weights sum to {total}, not 1",
    )
    assert "± 0.001" in problem.hint


# --- agents ------------------------------------------------------------------------------


def test_unknown_agent_names_the_missing_agent_file(overlay: Overlay) -> None:
    text = overlay.write("phases/b.yaml", phase_text("b", ["a"], ["BAgent0", "GhostAgent"]))

    problem = overlay.only_problem()

    assert_at(
        problem,
        overlay.shown("phases/b.yaml"),
        line(text, "GhostAgent"),
        "agents.1",
        "unknown agent 'GhostAgent' (no file agents/GhostAgent.yaml)",
    )
    assert "agents/GhostAgent.yaml" in problem.hint


def test_agent_whose_phase_disagrees_with_the_listing_phase(overlay: Overlay) -> None:
    text = overlay.write("agents/BAgent0.yaml", agent_text("BAgent0", "a", "BResult"))

    problem = overlay.only_problem()

    assert_at(
        problem,
        overlay.shown("agents/BAgent0.yaml"),
        line(text, "phase:"),
        "phase",
        "says 'a' but phases/b.yaml lists it",
    )
    assert problem.hint


def test_agent_whose_name_disagrees_with_its_file_name(overlay: Overlay) -> None:
    text = overlay.write(
        "agents/BAgent0.yaml",
        replace_once(agent_text("BAgent0", "b"), "name: BAgent0", "name: BAgentZero"),
    )

    problem = overlay.only_problem()

    assert_at(
        problem,
        overlay.shown("agents/BAgent0.yaml"),
        line(text, "name:"),
        "name",
        "says 'BAgentZero' but the file is agents/BAgent0.yaml",
    )


def test_invalid_json_schema_in_output_schema(overlay: Overlay) -> None:
    text = overlay.write(
        "agents/AAgent0.yaml",
        replace_once(agent_text("AAgent0", "a"), "  type: object", "  type: 12"),
    )

    problem = overlay.only_problem()

    assert_at(
        problem,
        overlay.shown("agents/AAgent0.yaml"),
        line(text, "output_schema"),
        "output_schema",
        "not a valid JSON Schema: ",
    )
    assert problem.hint == "fix the JSON Schema"


def test_invalid_json_schema_in_schemas_folder(overlay: Overlay) -> None:
    overlay.write("schemas/AResult.yaml", "type: object\nrequired: value\n")

    problem = overlay.only_problem()

    assert_at(
        problem, overlay.shown("schemas/AResult.yaml"), 1, "(file)", "not a valid JSON Schema: "
    )
    assert problem.hint == "fix the JSON Schema"


OFFLINE_WITH_SYNTAX_ERROR = """\
value:
  text: {{ idea.text | tojson }}
  {% if idea.text %}
  broken: {{ idea.text | }}
  {% endif %}
"""


def test_jinja_syntax_error_in_offline_is_located_inside_the_template(overlay: Overlay) -> None:
    text = overlay.write(
        "agents/AAgent0.yaml", model_agent_text("AAgent0", "a", OFFLINE_WITH_SYNTAX_ERROR)
    )

    problem = overlay.only_problem()

    assert_at(
        problem,
        overlay.shown("agents/AAgent0.yaml"),
        line(text, "broken:"),
        "offline",
        "template syntax error: ",
    )
    assert "Jinja2" in problem.hint


def test_jinja_syntax_error_in_prompt(overlay: Overlay) -> None:
    text = overlay.write(
        "agents/AAgent0.yaml",
        replace_once(
            model_agent_text("AAgent0", "a", "value: {}\n"),
            "  Describe {{ idea.text }} in one line.",
            "  Describe the idea.\n  {% for x in idea.items %}\n  {{ x }}",
        ),
    )

    problem = overlay.only_problem()

    # "unexpected end of template" is raised at the template's last line.
    assert_at(
        problem,
        overlay.shown("agents/AAgent0.yaml"),
        line(text, "{{ x }}"),
        "prompt",
        "template syntax error: ",
    )


def test_jinja_syntax_error_in_a_one_line_offline_template(overlay: Overlay) -> None:
    """Fails: the loader adds the template's line number to the line of the ``offline`` key,
    which is right for a block scalar (``offline: |``, template line 1 is the next line) but
    one line too far for a template written on the key's own line; the problem then points at
    the next key (``timeout_seconds`` here)."""
    text = overlay.write(
        "agents/AAgent0.yaml",
        "\n".join(
            [
                "name: AAgent0",
                "phase: a",
                "role: test agent",
                "artifact_type: AResult",
                "output_schema: {type: object}",
                "prompt: Describe the idea.",
                'offline: "value: {{ idea.text | }}"',
                "timeout_seconds: 30",
            ]
        )
        + "\n",
    )

    problem = overlay.only_problem()

    assert_at(
        problem,
        overlay.shown("agents/AAgent0.yaml"),
        line(text, "offline:"),
        "offline",
        "template syntax error: ",
    )


def test_model_agent_needs_prompt_and_offline(overlay: Overlay) -> None:
    overlay.write(
        "agents/AAgent0.yaml", replace_once(agent_text("AAgent0", "a"), f"callable: {ECHO}\n", "")
    )

    problem = overlay.only_problem()

    assert_at(
        problem,
        overlay.shown("agents/AAgent0.yaml"),
        1,
        "(file)",
        "a model agent needs both `prompt` and `offline`",
    )
    assert problem.hint


# --- dependencies ------------------------------------------------------------------------


def test_unknown_dependency(overlay: Overlay) -> None:
    text = overlay.write("phases/b.yaml", phase_text("b", ["a", "nowhere"]))

    problem = overlay.only_problem()

    assert_at(
        problem,
        overlay.shown("phases/b.yaml"),
        line(text, "- nowhere"),
        "depends_on.1",
        "unknown phase 'nowhere'",
    )
    assert problem.hint == "known phases: a, b"


def test_self_dependency(overlay: Overlay) -> None:
    text = overlay.write("phases/b.yaml", phase_text("b", ["a", "b"]))

    problem = overlay.only_problem()

    assert_at(
        problem,
        overlay.shown("phases/b.yaml"),
        line(text, "- b"),
        "depends_on.1",
        "a phase cannot depend on itself",
    )


def test_dependency_cycle_prints_its_path(tmp_path: Path) -> None:
    dag = {"a": ["b"], "b": ["c"], "c": ["a"]}  # a depends on b, b on c, c on a
    overlay = make_overlay(tmp_path, dag)

    problem = overlay.only_problem()

    assert problem.problem.startswith("dependency cycle: ")
    path = problem.problem.removeprefix("dependency cycle: ").split(" → ")
    assert " → ".join(path) in {"a → b → c → a", "b → c → a → b", "c → a → b → c"}
    assert all(dep in dag[phase] for phase, dep in itertools.pairwise(path))
    text = (tmp_path / f"phases/{path[0]}.yaml").read_text()
    assert_at(
        problem,
        overlay.shown(f"phases/{path[0]}.yaml"),
        line(text, "depends_on"),
        "depends_on",
        "dependency cycle: " + " → ".join(path),
    )
    assert problem.hint


def test_two_phase_cycle(tmp_path: Path) -> None:
    overlay = make_overlay(tmp_path, {"x": [], "a": ["x", "b"], "b": ["a"]})

    problem = overlay.only_problem()

    assert problem.problem in {"dependency cycle: a → b → a", "dependency cycle: b → a → b"}


# --- phases and pipeline.yaml ------------------------------------------------------------


def test_phase_file_name_and_phase_key_disagree(overlay: Overlay) -> None:
    text = overlay.write(
        "phases/b.yaml", replace_once(phase_text("b", ["a"]), "phase: b", "phase: bee")
    )

    problem = overlay.only_problem()

    assert_at(
        problem,
        overlay.shown("phases/b.yaml"),
        line(text, "phase: bee"),
        "phase",
        "says 'bee' but the file is phases/b.yaml",
    )
    assert problem.hint


def test_phase_listed_twice_in_pipeline_yaml(overlay: Overlay) -> None:
    text = overlay.write("pipeline.yaml", pipeline_text(["a", "b", "a"]))

    problem = overlay.only_problem()

    assert_at(
        problem,
        overlay.shown("pipeline.yaml"),
        len(text.splitlines()),
        "phases.2",
        "phase 'a' is listed twice",
    )


def test_phase_listed_without_a_file(overlay: Overlay) -> None:
    text = overlay.write("pipeline.yaml", pipeline_text(["a", "ghost", "b"]))

    problem = overlay.only_problem()

    assert_at(
        problem,
        overlay.shown("pipeline.yaml"),
        line(text, "ghost"),
        "phases.1",
        "no file phases/ghost.yaml for phase 'ghost'",
    )
    assert problem.hint


def test_pipeline_yaml_with_a_bad_default_model(overlay: Overlay) -> None:
    text = overlay.write(
        "pipeline.yaml",
        replace_once(
            pipeline_text(["a", "b"]), "default_model: offline:template", "default_model: gpt-4o"
        ),
    )

    problem = overlay.only_problem()

    assert_at(
        problem,
        overlay.shown("pipeline.yaml"),
        line(text, "default_model"),
        "default_model",
        "string should match pattern",
    )


def test_iterative_without_loop(overlay: Overlay) -> None:
    overlay.write(
        "phases/a.yaml",
        replace_once(phase_text("a"), "parallelism: parallel", "parallelism: iterative"),
    )

    problem = overlay.only_problem()

    # No `loop` key to point at: the problem points at the `parallelism` line instead.
    assert_at(
        problem,
        overlay.shown("phases/a.yaml"),
        4,
        "parallelism",
        "`loop` goes with `parallelism: iterative`",
    )
    assert problem.hint


def test_loop_without_iterative(overlay: Overlay) -> None:
    text = overlay.write(
        "phases/a.yaml",
        phase_text("a")
        + "\n".join(
            [
                "loop:",
                "  max_iterations: 3",
                "  until: iteration >= 3",
            ]
        )
        + "\n",
    )

    problem = overlay.only_problem()

    assert_at(
        problem,
        overlay.shown("phases/a.yaml"),
        line(text, "loop:"),
        "loop",
        "`loop` goes with `parallelism: iterative`",
    )
    assert problem.hint


def test_iterative_with_loop_loads(overlay: Overlay) -> None:
    overlay.write(
        "phases/a.yaml",
        replace_once(phase_text("a"), "parallelism: parallel", "parallelism: iterative")
        + "loop:\n  max_iterations: 4\n  until: iteration >= 4\n",
    )

    spec = overlay.load()

    loop = spec.phase("a").loop
    assert loop is not None
    assert (loop.max_iterations, loop.until) == (4, "iteration >= 4")


def test_required_artifact_that_no_agent_produces(overlay: Overlay) -> None:
    text = overlay.write(
        "phases/a.yaml",
        replace_once(
            phase_text("a"),
            "    required: true\n",
            "    required: true\n  - type: Orphan\n    required: true\n",
        ),
    )

    problem = overlay.only_problem()

    assert_at(
        problem,
        overlay.shown("phases/a.yaml"),
        line(text, "Orphan"),
        "artifacts.1.type",
        "no agent of this phase produces 'Orphan'",
    )
    assert problem.hint


def test_several_agents_producing_one_type_need_a_schema(tmp_path: Path) -> None:
    overlay = make_overlay(tmp_path, {"a": []}, agents_per_phase=2)
    overlay.load()  # schemas/AResult.yaml is there
    (tmp_path / "schemas/AResult.yaml").unlink()
    text = (tmp_path / "phases/a.yaml").read_text()

    problem = overlay.only_problem()

    assert_at(
        problem,
        overlay.shown("phases/a.yaml"),
        line(text, "agents:"),
        "agents",
        "several agents produce 'AResult'",
    )
    assert "schemas/AResult.yaml" in problem.hint


def test_several_agents_producing_one_type_concatenated_need_no_schema(tmp_path: Path) -> None:
    overlay = make_overlay(tmp_path, {"a": []}, agents_per_phase=2)
    (tmp_path / "schemas/AResult.yaml").unlink()
    overlay.write(
        "phases/a.yaml",
        replace_once(
            phase_text("a", agents=["AAgent0", "AAgent1"]),
            "aggregation: merge",
            "aggregation: concat",
        ),
    )

    spec = overlay.load()

    schema = spec.phase("a").artifacts[0].schema
    assert schema["properties"]["items"]["type"] == "array"


def test_agent_listed_twice_in_a_phase(overlay: Overlay) -> None:
    text = overlay.write("phases/a.yaml", phase_text("a", agents=["AAgent0", "AAgent0"]))

    problems = overlay.problems()

    twice = [problem for problem in problems if problem.problem == "an agent is listed twice"]
    assert len(twice) == 1, [str(problem) for problem in problems]
    assert_at(
        twice[0],
        overlay.shown("phases/a.yaml"),
        line(text, "agents:"),
        "agents",
        "an agent is listed twice",
    )


# --- files that cannot be read -----------------------------------------------------------


def test_yaml_syntax_error_reports_the_line_of_the_error(overlay: Overlay) -> None:
    text = overlay.write(
        "phases/b.yaml",
        replace_once(
            phase_text("b", ["a"]), "description: test phase b", "description: test: phase b"
        ),
    )

    problem = overlay.only_problem()

    assert_at(
        problem,
        overlay.shown("phases/b.yaml"),
        line(text, "description"),
        "(file)",
        "not valid YAML: mapping values are not allowed",  # "here" or "in this context"
    )
    assert problem.hint


def test_yaml_tab_indentation_reports_the_line_of_the_tab(overlay: Overlay) -> None:
    text = overlay.write(
        "phases/b.yaml", replace_once(phase_text("b", ["a"]), "  tokens: 1000", "\ttokens: 1000")
    )

    problem = overlay.only_problem()

    assert_at(
        problem,
        overlay.shown("phases/b.yaml"),
        line(text, "\ttokens"),
        "(file)",
        "not valid YAML: ",
    )


def test_broken_phase_file_is_not_also_reported_as_an_unknown_dependency(overlay: Overlay) -> None:
    """Fails: phases/a.yaml exists and is listed, but does not parse; phases/b.yaml, which
    depends on it, then gets a second, misleading problem ``depends_on.0: unknown phase 'a'
    (hint: known phases: b)``. Only the syntax error is a real problem."""
    text = overlay.write(
        "phases/a.yaml",
        replace_once(phase_text("a"), "description: test phase a", "description: test: phase a"),
    )

    problems = overlay.problems()

    assert [problem.file for problem in problems] == [overlay.shown("phases/a.yaml")], [
        str(problem) for problem in problems
    ]
    assert_at(
        problems[0],
        overlay.shown("phases/a.yaml"),
        line(text, "description"),
        "(file)",
        "not valid YAML: ",
    )


def test_broken_agent_file_is_not_also_reported_as_a_missing_producer(overlay: Overlay) -> None:
    """Fails: agents/AAgent0.yaml exists but has an unknown key; phases/a.yaml then gets a
    second, misleading problem ``artifacts.0.type: no agent of this phase produces 'AResult'``
    although the agent that produces it is listed and its file says so."""
    overlay.write("agents/AAgent0.yaml", agent_text("AAgent0", "a") + "temprature: 0.3\n")

    problems = overlay.problems()

    assert [problem.file for problem in problems] == [overlay.shown("agents/AAgent0.yaml")], [
        str(problem) for problem in problems
    ]


def test_non_utf8_file(overlay: Overlay) -> None:
    (overlay.root / "phases/b.yaml").write_bytes(
        phase_text("b", ["a"]).replace("test phase b", "caf\xe9").encode("latin-1")
    )

    problem = overlay.only_problem()

    assert_at(problem, overlay.shown("phases/b.yaml"), None, "(file)", "not UTF-8 text")
    assert "UTF-8" in problem.hint


def test_config_pointing_at_a_file(tmp_path: Path) -> None:
    target = tmp_path / "pipeline.yaml"
    target.write_text(pipeline_text(["a"]))

    with pytest.raises(ConfigError) as caught:
        load_pipeline(target)

    (problem,) = caught.value.problems
    assert_at(problem, str(target), None, "(folder)", "not a folder")
    assert problem.hint


def test_config_pointing_at_a_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_pipeline(tmp_path / "missing")

    (problem,) = caught.value.problems
    assert_at(problem, str(tmp_path / "missing"), None, "(folder)", "not a folder")
    assert problem.hint


# --- several problems at once ------------------------------------------------------------


def test_every_problem_is_reported_at_once(overlay: Overlay) -> None:
    phase_a = overlay.write(
        "phases/a.yaml",
        replace_once(phase_text("a", ["nowhere"]), "    grounding: 1.0", "    grounding: 0.5"),
    )
    phase_b = overlay.write("phases/b.yaml", phase_text("b", ["a"], ["BAgent0", "GhostAgent"]))
    agent_a = overlay.write(
        "agents/AAgent0.yaml",
        replace_once(agent_text("AAgent0", "a"), "  type: object", "  type: 12"),
    )

    with pytest.raises(ConfigError) as caught:
        overlay.load()

    problems = caught.value.problems
    located = {(p.file, p.line, p.field) for p in problems}
    assert located == {
        (overlay.shown("phases/a.yaml"), line(phase_a, "- nowhere"), "depends_on.0"),
        (overlay.shown("phases/a.yaml"), line(phase_a, "rubrics:"), "gate.rubrics"),
        (overlay.shown("phases/b.yaml"), line(phase_b, "GhostAgent"), "agents.1"),
        (overlay.shown("agents/AAgent0.yaml"), line(agent_a, "output_schema"), "output_schema"),
    }, [str(problem) for problem in problems]
    error = caught.value
    assert isinstance(error, UsageError)
    assert str(error) == f"{problems[0]} (and 3 more)"
    assert error.hint


def test_problems_in_several_files_that_fail_to_parse_are_all_reported(tmp_path: Path) -> None:
    overlay = make_overlay(tmp_path, {"a": [], "b": [], "c": []})
    overlay.write("phases/a.yaml", phase_text("a") + "colour: blue\n")
    overlay.write("phases/b.yaml", "phase: b\n  bad: indent\n")
    overlay.write("agents/CAgent0.yaml", agent_text("CAgent0", "c") + "colour: blue\n")

    problems = overlay.problems()

    assert {problem.file for problem in problems} >= {
        overlay.shown("phases/a.yaml"),
        overlay.shown("phases/b.yaml"),
        overlay.shown("agents/CAgent0.yaml"),
    }


# --- overlay semantics -------------------------------------------------------------------


def test_overlay_file_replaces_the_default_file_of_the_same_path(tmp_path: Path) -> None:
    """The overlay has no phases/intake.yaml (so the shipped one is used) but its own agents
    of that name (which replace the shipped ones)."""
    default_phase = (default_config_dir() / "phases/intake.yaml").read_text(encoding="utf-8")
    default_data = yaml.safe_load(default_phase)
    types = [artifact["type"] for artifact in default_data["artifacts"]]
    overlay = Overlay(tmp_path)
    overlay.write("pipeline.yaml", pipeline_text(["intake"]))
    for agent in default_data["agents"]:
        overlay.write(
            f"agents/{agent}.yaml",
            yaml.safe_dump(
                {
                    "name": agent,
                    "phase": "intake",
                    "role": "overlay agent",
                    "artifact_type": types,
                    "output_schema": {"type": "object"},
                    "callable": ECHO,
                }
            ),
        )
    for artifact_type in types:
        overlay.write(f"schemas/{artifact_type}.yaml", "type: object\n")

    spec = overlay.load()

    assert spec.phase("intake").description == default_data["description"]
    assert spec.manifest["phases/intake.yaml"] == content_hash(default_data)
    assert spec.manifest["pipeline.yaml"] == content_hash(yaml.safe_load(pipeline_text(["intake"])))
    for agent in default_data["agents"]:
        assert spec.agents[agent].callable == ECHO
        assert spec.agents[agent].role == "overlay agent"
        assert spec.manifest[f"agents/{agent}.yaml"] == content_hash(
            yaml.safe_load((tmp_path / f"agents/{agent}.yaml").read_text())
        )


def test_overlay_phase_file_replaces_the_default_phase(tmp_path: Path) -> None:
    overlay = make_overlay(tmp_path, {"intake": []})

    spec = overlay.load()

    assert spec.phase("intake").agents == ("IntakeAgent0",)
    assert spec.phase("intake").description == "test phase intake"
    assert spec.manifest["phases/intake.yaml"] == content_hash(
        yaml.safe_load(phase_text("intake", agents=["IntakeAgent0"]))
    )


def test_config_env_var_is_used_when_no_folder_is_passed(
    overlay: Overlay, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(CONFIG_ENV, str(overlay.root))

    spec = load_pipeline()

    assert spec.name == "test"
    assert spec.manifest_hash == load_pipeline(overlay.root).manifest_hash


def test_config_env_var_pointing_at_a_missing_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(CONFIG_ENV, str(tmp_path / "missing"))

    with pytest.raises(ConfigError) as caught:
        load_pipeline(None)

    assert caught.value.problems[0].file == str(tmp_path / "missing")
    assert caught.value.problems[0].problem == "not a folder"


def test_a_folder_passed_explicitly_wins_over_the_env_var(
    overlay: Overlay, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(CONFIG_ENV, str(tmp_path / "missing"))

    assert overlay.load().name == "test"


# --- manifest ----------------------------------------------------------------------------


def test_same_config_gives_the_same_manifest_hash(tmp_path: Path) -> None:
    first = make_overlay(tmp_path / "one", {"a": [], "b": ["a"]}).load()
    second = make_overlay(tmp_path / "two", {"a": [], "b": ["a"]}).load()

    assert first.manifest == second.manifest
    assert first.manifest_hash == second.manifest_hash
    assert set(first.manifest) == {
        "pipeline.yaml",
        "phases/a.yaml",
        "phases/b.yaml",
        "agents/AAgent0.yaml",
        "agents/BAgent0.yaml",
        "schemas/AResult.yaml",
        "schemas/BResult.yaml",
    }
    assert first.manifest_hash == content_hash(dict(first.manifest))


def test_editing_a_phase_file_changes_the_hash_and_only_its_entry(overlay: Overlay) -> None:
    before = overlay.load()
    overlay.write(
        "phases/b.yaml", replace_once(phase_text("b", ["a"]), "tokens: 1000", "tokens: 2000")
    )

    after = overlay.load()

    assert after.manifest_hash != before.manifest_hash
    changed = {key for key in before.manifest if before.manifest[key] != after.manifest[key]}
    assert changed == {"phases/b.yaml"}
    assert set(after.manifest) == set(before.manifest)


def test_manifest_hashes_parsed_content_not_formatting(overlay: Overlay) -> None:
    before = overlay.load()
    overlay.write(
        "phases/b.yaml",
        "# a comment\n"
        + phase_text("b", ["a"]).replace("depends_on:\n  - a\n", "depends_on: [a]\n"),
    )

    assert overlay.load().manifest_hash == before.manifest_hash


def test_pipeline_spec_is_frozen(overlay: Overlay) -> None:
    spec = overlay.load()

    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.name = "other"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.manifest_hash = "0" * 64  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.phases[0].gate.pass_threshold = 0.0  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.agents["AAgent0"].callable = None  # type: ignore[misc]
    assert isinstance(spec.phases, tuple)
    assert isinstance(spec.phase("b").depends_on, tuple)


def test_a_missing_qav_agent_is_named_where_pipeline_yaml_names_it(overlay: Overlay) -> None:
    text = overlay.write(
        "pipeline.yaml",
        pipeline_text(["a", "b"]) + "qav_agents:\n  question: AskerAgent\n",
    )
    overlay.write("phases/a.yaml", phase_text("a").replace("max_questions: 0", "max_questions: 3"))

    problem = overlay.only_problem()

    assert_at(
        problem,
        overlay.shown("pipeline.yaml"),
        line(text, "question"),
        "qav_agents.question",
        "unknown agent 'AskerAgent' (no file agents/AskerAgent.yaml)",
    )


def test_qav_agents_must_say_phase_qav(overlay: Overlay) -> None:
    overlay.write("phases/a.yaml", phase_text("a").replace("max_questions: 0", "max_questions: 3"))
    shipped = (default_config_dir() / "agents" / "QuestionAgent.yaml").read_text()
    overlay.write("agents/QuestionAgent.yaml", shipped.replace("phase: qav", "phase: a"))

    problem = overlay.only_problem_in("agents/QuestionAgent.yaml")

    assert problem.field == "phase"
    assert "pipeline.yaml names it as the Q/A/V question agent" in problem.problem


# --- pinned snapshots --------------------------------------------------------------------


def test_a_pinned_snapshot_loads_once_per_process_and_equals_a_fresh_load(
    overlay: Overlay,
) -> None:
    files = dict(overlay.load().files)

    first = load_pinned(files)
    again = load_pinned(dict(files))  # equal texts, another mapping

    assert again is first
    assert first.manifest_hash == overlay.load().manifest_hash
    changed = {**files, "phases/b.yaml": files["phases/b.yaml"] + "\n# a comment\n"}
    assert load_pinned(changed) is not first


def test_a_pinned_snapshot_that_does_not_load_fails_every_time(overlay: Overlay) -> None:
    files = dict(overlay.load().files)
    broken = {**files, "phases/b.yaml": files["phases/b.yaml"].replace("depends_on", "needs")}

    for _ in range(2):
        with pytest.raises(ConfigError):
            load_pinned(broken)


def test_at_most_pinned_kept_snapshots_are_kept(overlay: Overlay) -> None:
    files = dict(overlay.load().files)
    variants = [
        {**files, "pipeline.yaml": files["pipeline.yaml"] + f"\n# variant {index}\n"}
        for index in range(PINNED_KEPT + 1)
    ]
    loaded = [load_pinned(variant) for variant in variants]

    assert load_pinned(variants[-1]) is loaded[-1]
    assert load_pinned(variants[0]) is not loaded[0]  # the oldest was dropped, loaded anew


# --- vetted files (a resumed run's folder, a pinned snapshot) -----------------------------


def test_a_load_vetted_by_its_own_texts_equals_a_checked_load_without_the_slow_checks(
    overlay: Overlay, monkeypatch: pytest.MonkeyPatch
) -> None:
    overlay.write(
        "agents/AAgent0.yaml", model_agent_text("AAgent0", "a", "value: {{ idea.text }}\n")
    )
    checked = overlay.load()
    loader._checked_schema.cache_clear()

    def refuse(*args: object) -> object:
        raise AssertionError("a vetted file was checked again")

    monkeypatch.setattr(loader, "_meta_check", refuse)
    monkeypatch.setattr(loader, "_syntax", refuse)
    vetted = load_pipeline(overlay.root, vetted=checked.files)

    assert vetted == checked


def test_a_file_changed_since_it_was_vetted_is_checked_again(overlay: Overlay) -> None:
    pinned = overlay.load().files
    overlay.write("schemas/AResult.yaml", "type: object\nrequired: value\n")
    text = overlay.write(
        "agents/AAgent0.yaml", model_agent_text("AAgent0", "a", OFFLINE_WITH_SYNTAX_ERROR)
    )

    with pytest.raises(ConfigError) as caught:
        load_pipeline(overlay.root, vetted=pinned)

    found = {(p.file, p.field, p.problem.split(":")[0]) for p in caught.value.problems}
    assert (overlay.shown("schemas/AResult.yaml"), "(file)", "not a valid JSON Schema") in found
    assert (overlay.shown("agents/AAgent0.yaml"), "offline", "template syntax error") in found
    assert line(text, "broken:") in {p.line for p in caught.value.problems}


def test_a_vetted_file_still_gets_the_structural_checks(overlay: Overlay) -> None:
    pinned = overlay.load().files
    overlay.write("phases/b.yaml", phase_text("b", deps=["a"]).replace("depends_on", "needs"))

    with pytest.raises(ConfigError) as caught:
        load_pipeline(overlay.root, vetted=pinned)

    assert any(p.field == "needs" and p.problem == "unknown key" for p in caught.value.problems)


def test_a_file_whose_text_changed_but_not_its_hash_is_checked_again(overlay: Overlay) -> None:
    """The manifest hashes the data in JSON form, where a YAML date equals its string: a
    schema that unquotes a date keeps its hash, and is no longer a valid JSON Schema."""
    overlay.write("schemas/AResult.yaml", 'type: object\nrequired: ["2024-01-01"]\n')
    pinned = overlay.load()
    overlay.write("schemas/AResult.yaml", "type: object\nrequired: [2024-01-01]\n")
    files = loader._Files(overlay.root)
    for relative in pinned.files:
        files.read(relative)
    assert content_hash(dict(sorted(files.manifest.items()))) == pinned.manifest_hash

    with pytest.raises(ConfigError) as caught:
        load_pipeline(overlay.root, vetted=pinned.files)

    assert caught.value.problems[0].problem.startswith("not a valid JSON Schema: ")


def test_loading_a_pinned_snapshot_parses_no_template_and_checks_no_schema(
    tmp_path: Path,
) -> None:
    """The shipped pipeline's ~90 templates and ~60 JSON Schemas were checked when the run
    was pinned; checking them again took ~0.45 s of every `status`, `resume` and worker."""
    files = tmp_path / "files.json"
    files.write_text(json.dumps(dict(load_pipeline().files)), encoding="utf-8")
    code = (
        "import json, sys\n"
        "from ideamine.config.loader import load_pinned\n"
        f"spec = load_pinned(json.loads(open({str(files)!r}).read()))\n"
        "print(len(spec.agents), 'jinja2' in sys.modules, 'jsonschema' in sys.modules)\n"
    )

    shown = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()

    assert int(shown[0]) > 50
    assert shown[1:] == ["False", "False"]
