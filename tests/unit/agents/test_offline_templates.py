"""The offline model end to end: every agent's ``offline`` template over the real pipeline.

A small driver walks the shipped phases in DAG order for a set of ideas (the farmers
marketplace, rows of the SRDD idea set across categories, and edge cases), renders each agent's
``offline`` template with :func:`ideamine.agents.render.render_offline` over the context the
runtime builds (artifacts of transitive dependencies, same-phase ``outputs``, story-loop
``history``/``iteration``), validates every output against the agent's ``output_schema``, fans
the outputs in (merge, or concat for the story loop), validates merged artifacts against
``schemas/``, and checks that the content is specific to the idea and byte-deterministic.

Evidence agents (``callable``) run real tools, which this walk does not: each gives the report
it gives when its tool cannot run (``executed: false``, no numbers), built with the agents' own
report functions where they are pure, so the templates downstream see the real shapes.
"""

from __future__ import annotations

import ast
import csv
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator

from ideamine.agents.render import evaluate_condition, render_offline, render_prompt
from ideamine.tools import a11y
from ideamine.tools.agents import COMMANDS
from ideamine.tools.stories import acceptance_results, story_progress_of

ROOT = Path(__file__).parents[3]
DEFAULTS = ROOT / "src" / "ideamine" / "config" / "defaults"
SRDD = Path(__file__).parents[3].parent / "shared/data/srdd/srdd.csv"
FARMERS = "A marketplace where local farmers sell produce to nearby restaurants"
EDGE_CASES = {
    "one-word": "todo",
    "no-people": "Convert large CSV files into Parquet quickly and validate their columns",
    "unicode": "Ünïcödé café finder für Touristen in Zürich — 日本語のメニューも読める",
    "hostile": 'Quotes "x" \\ back\\slash: {{ y }} {% if %} <script>alert(1)</script> - key: [1]',
    "compliance": "A clinic app where patients book appointments with doctors and pay by card",
}


@dataclass
class Run:
    """Everything one pipeline walk produced."""

    idea: dict[str, Any]
    artifacts: dict[str, Any] = field(default_factory=dict)
    outputs: dict[str, Any] = field(default_factory=dict)
    rendered: dict[str, str] = field(default_factory=dict)
    prompts: dict[str, str] = field(default_factory=dict)
    feedback: list[dict[str, str]] = field(default_factory=list)


@cache
def _yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


# The shipped DAG (SPEC §1), kept here so these tests do not depend on the config loader:
# (phase, parallelism, depends_on, agents).
PHASES: tuple[tuple[str, str, tuple[str, ...], tuple[str, ...]], ...] = (
    ("intake", "sequential", (), ("IntakeAgent", "ConstraintsAgent", "RequirementsAgent")),
    (
        "ideation",
        "parallel",
        ("intake",),
        ("StrategyAgent", "CompetitiveAgent", "TechStackAgent", "PersonaAgent"),
    ),
    (
        "critique",
        "sequential",
        ("ideation",),
        ("CritiqueAgent", "RiskAnalysisAgent", "AssumptionChallengerAgent"),
    ),
    (
        "prd",
        "sequential",
        ("critique",),
        ("StoryCutterAgent", "PRDWriterAgent", "UXFlowAgent", "NFRsAgent", "TraceMatrixAgent"),
    ),
    (
        "bizdev",
        "parallel",
        ("prd",),
        ("BusinessModelAgent", "PricingAgent", "GTMAgent", "MetricsAgent"),
    ),
    (
        "architecture",
        "parallel",
        ("bizdev",),
        (
            "ArchitectureAgent",
            "DataModelAgent",
            "APIDesignAgent",
            "InfrastructureAgent",
            "SecurityArchitectAgent",
        ),
    ),
    (
        "build",
        "2",
        ("architecture",),
        ("FrontendAgent", "BackendAgent", "DatabaseAgent", "IntegrationAgent", "TestAgent"),
    ),
    (
        "security",
        "parallel",
        ("build",),
        ("SASTAgent", "DASTAgent", "DependencyAgent", "SecretsAgent", "SBOMAgent"),
    ),
    (
        "story-loop",
        "iterative",
        ("build",),
        ("StoryImplementerAgent", "StoryTesterAgent", "StoryValidatorAgent"),
    ),
    (
        "qa",
        "parallel",
        ("security", "story-loop"),
        (
            "E2ETestAgent",
            "PerformanceAgent",
            "LoadTestAgent",
            "AccessibilityAgent",
            "CompatibilityAgent",
        ),
    ),
    (
        "aesthetic",
        "parallel",
        ("qa",),
        ("UIPolishAgent", "BrandingAgent", "AnimationAgent", "ResponsiveAgent"),
    ),
    (
        "release",
        "sequential",
        ("aesthetic",),
        ("ReleaseNotesAgent", "DeploymentAgent", "DocumentationAgent", "ChangelogAgent"),
    ),
    (
        "beta",
        "sequential",
        ("release",),
        ("DeployAgent", "MonitorAgent", "FeedbackAgent", "AnalyticsAgent"),
    ),
)
LOOP_UNTIL = "iteration >= (artifacts.UserStories.stories | length)"
LOOP_MAX = 10


def pipeline() -> list[dict[str, Any]]:
    """The phases in pipeline order, shaped like ``phases/*.yaml``."""
    return [
        {"phase": name, "parallelism": mode, "depends_on": list(deps), "agents": list(agents)}
        for name, mode, deps, agents in PHASES
    ]


def agent(name: str) -> dict[str, Any]:
    return _yaml(DEFAULTS / "agents" / f"{name}.yaml")


def schema(artifact_type: str) -> dict[str, Any] | None:
    path = DEFAULTS / "schemas" / f"{artifact_type}.yaml"
    return _yaml(path) if path.exists() else None


def _ancestors(phases: list[dict[str, Any]], name: str) -> set[str]:
    deps = {p["phase"]: p.get("depends_on", []) for p in phases}
    seen: set[str] = set()
    stack = list(deps[name])
    while stack:
        dep = stack.pop()
        if dep not in seen:
            seen.add(dep)
            stack.extend(deps[dep])
    return seen


def deep_merge(base: Any, update: Any) -> Any:
    """Later wins a key; mappings merge recursively; lists are replaced."""
    if isinstance(base, Mapping) and isinstance(update, Mapping):
        merged = dict(base)
        for key, value in update.items():
            merged[key] = deep_merge(base[key], value) if key in base else value
        return merged
    return update


def _typed(spec: dict[str, Any], output: Any) -> Iterator[tuple[str, Any]]:
    types = spec["artifact_type"]
    if isinstance(types, str):
        yield types, output
    else:
        assert sorted(output) == sorted(types), f"{spec['name']}: keys {sorted(output)}"
        for name in types:
            yield name, output[name]


def _render(run: Run, spec: dict[str, Any], context: dict[str, Any], key: str) -> Any:
    name = spec["name"]
    ctx = {**context, "agent": {k: spec[k] for k in ("name", "role", "artifact_type")}}
    if "callable" in spec:
        output = _not_run(name, ctx)
    else:
        run.prompts[key] = render_prompt(spec["prompt"], ctx, agent=name)
        output = render_offline(spec["offline"], ctx, agent=name)
    errors = sorted(Draft202012Validator(spec["output_schema"]).iter_errors(output), key=str)
    assert not errors, f"{name} output invalid: {[e.message for e in errors][:3]}\n{output}"
    run.rendered[key] = json.dumps(output, sort_keys=True, ensure_ascii=False)
    return output


NOT_RUN = {
    "tool": "none",
    "version": "",
    "command": [],
    "exit_code": None,
    "timed_out": False,
    "duration_ms": 0.0,
    "executed": False,
    "reason": "the offline template walk runs no tools",
}
NO_COMMIT = "0" * 40  # stands for the build's commit, which only the real tools make


def _not_run(name: str, ctx: dict[str, Any]) -> Any:
    """What evidence agent ``name`` reports when its tools cannot run."""
    title = ctx["artifacts"].get("IdeaSpec", {}).get("title", "")
    manifest = {
        "path": "not created",
        "commit": NO_COMMIT,
        "branch": "main",
        "files": ["not created"],
        "commits": [{"sha": NO_COMMIT, "message": "build attempt 1"}],
        "evidence": NOT_RUN,
        "phase": "build",
        "repository": {"name": title.lower().replace(" ", "-") or "app", "description": title},
        "commands": dict(COMMANDS),
    }
    unknown = dict.fromkeys(("total", "passed", "failed", "errors", "skipped"))
    tests = {**unknown, "failures": [], "problem": NOT_RUN["reason"], "evidence": NOT_RUN}
    if name == "StoryTesterAgent":
        return acceptance_results(ctx["outputs"]["StoryImplementerAgent"], tests, NO_COMMIT)
    if name == "StoryValidatorAgent":
        stories = ctx["artifacts"]["UserStories"]["stories"]
        return story_progress_of(
            stories=stories,
            iteration=ctx["iteration"],
            history=ctx["history"],
            outputs=ctx["outputs"],
        )
    load = dict.fromkeys(("requests", "errors", "duration_s", "rps", "p50_ms", "p95_ms"))
    reports: dict[str, Any] = {
        "IntegrationAgent": {
            "RepoManifest": manifest,
            "BuildReport": {
                "commit": NO_COMMIT,
                "compile": {"ok": None, "errors": [], "evidence": NOT_RUN},
                "tests": tests,
                "lint": {"errors": None, "warnings": None, "findings": [], "evidence": NOT_RUN},
            },
            "CoverageReport": {
                "measured": False,
                "percent": None,
                "lines_covered": None,
                "lines_total": None,
                "files": {},
                "target_percent": 70,
                "evidence": NOT_RUN,
            },
        },
        "SASTAgent": {
            "sast": {
                "scanned": False,
                "findings": [],
                "counts": None,
                "skipped_checks": [],
                "evidence": NOT_RUN,
            }
        },
        "DASTAgent": {"dast": {"target": None, "findings": [], "checks": [], "evidence": NOT_RUN}},
        "DependencyAgent": {
            "scanned": False,
            "status": "not_scanned",
            "source": None,
            "reason": NOT_RUN["reason"],
            "counts": None,
            "vulnerabilities": [],
            "evidence": NOT_RUN,
            "commit": NO_COMMIT,
        },
        "SecretsAgent": {
            "scanned": False,
            "count": None,
            "findings": [],
            "evidence": NOT_RUN,
            "commit": NO_COMMIT,
        },
        "SBOMAgent": {"requirements": [], "unpinned": [], "evidence": NOT_RUN},
        "E2ETestAgent": {
            **dict.fromkeys(("total", "passed", "failed", "pass_rate")),
            "cases": [],
            "base_url": None,
            "commit": NO_COMMIT,
            "evidence": NOT_RUN,
        },
        "PerformanceAgent": {
            "performance": {
                "executed": False,
                "endpoints": [],
                "samples": 30,
                "commit": NO_COMMIT,
                "evidence": NOT_RUN,
            }
        },
        "LoadTestAgent": {
            **load,
            "concurrency": 16,
            "budget": {"p95_ms": 1000, "rps": 100},
            "commit": NO_COMMIT,
            "evidence": NOT_RUN,
        },
        "AccessibilityAgent": {
            "standard": a11y.STANDARD,
            "scope": a11y.SCOPE,
            "executed": False,
            "checks": a11y.checks_made(),
            "pages": [],
            "violations": [],
            "commit": NO_COMMIT,
            "evidence": NOT_RUN,
        },
    }
    return reports[name]


def _context(run: Run, phase: dict[str, Any], visible: set[str], **extra: Any) -> dict[str, Any]:
    produced = {t for p in visible for t in _phase_types(p)}
    return {
        "idea": run.idea,
        "artifacts": {k: v for k, v in run.artifacts.items() if k in produced},
        "outputs": {},
        "history": [],
        "iteration": 1,
        "phase": phase["phase"],
        "attempt": 1,
        "feedback": list(run.feedback),
        **extra,
    }


@cache
def _phase_types(phase_name: str) -> tuple[str, ...]:
    agents = next(p[3] for p in PHASES if p[0] == phase_name)
    types: list[str] = []
    for name in agents:
        declared = agent(name)["artifact_type"]
        types.extend([declared] if isinstance(declared, str) else declared)
    return tuple(types)


def _run_phase(run: Run, phase: dict[str, Any], visible: set[str]) -> None:
    shares = phase["parallelism"] == "sequential"
    outputs: dict[str, Any] = {}
    merged: dict[str, Any] = {}
    for name in phase["agents"]:
        spec = agent(name)
        ctx = _context(run, phase, visible, outputs=dict(outputs) if shares else {})
        output = _render(run, spec, ctx, name)
        outputs[name] = output
        for artifact_type, content in _typed(spec, output):
            merged[artifact_type] = deep_merge(merged.get(artifact_type, {}), content)
    run.outputs.update(outputs)
    run.artifacts.update(merged)


def _run_loop(run: Run, phase: dict[str, Any], visible: set[str]) -> None:
    history: list[dict[str, Any]] = []
    items: dict[str, list[Any]] = {}
    for iteration in range(1, LOOP_MAX + 1):
        outputs: dict[str, Any] = {}
        for name in phase["agents"]:
            spec = agent(name)
            ctx = _context(
                run,
                phase,
                visible,
                outputs=dict(outputs),
                history=list(history),
                iteration=iteration,
            )
            outputs[name] = _render(run, spec, ctx, f"{name}#{iteration}")
            for artifact_type, content in _typed(spec, outputs[name]):
                items.setdefault(artifact_type, []).append(content)
        history.append(outputs)
        ctx = _context(run, phase, visible, iteration=iteration)
        if evaluate_condition(LOOP_UNTIL, ctx, where=phase["phase"]):
            break
    run.outputs["story-loop"] = history
    run.artifacts.update({k: {"items": v} for k, v in items.items()})


def run_pipeline(
    text: str,
    constraints: Mapping[str, Any] | None = None,
    feedback: list[dict[str, str]] | None = None,
) -> Run:
    """Walk every phase for one idea and return what it produced."""
    run = Run(idea={"text": text, "constraints": dict(constraints or {})}, feedback=feedback or [])
    phases = pipeline()
    for phase in phases:
        visible = _ancestors(phases, phase["phase"])
        if phase["parallelism"] == "iterative":
            _run_loop(run, phase, visible)
        else:
            _run_phase(run, phase, visible)
    for artifact_type, content in run.artifacts.items():
        declared = schema(artifact_type)
        if declared is not None:
            errors = [e.message for e in Draft202012Validator(declared).iter_errors(content)]
            assert not errors, f"merged {artifact_type} invalid: {errors[:3]}"
    return run


# --------------------------------------------------------------------------------------------
# The ideas under test.

AGENT_KEYS = {
    "name",
    "phase",
    "role",
    "artifact_type",
    "temperature",
    "max_tokens",
    "timeout_seconds",
    "prompt",
    "output_schema",
    "offline",
}
OPTIONAL_KEYS = {"model", "tools"}
CALLABLE_KEYS = {"name", "phase", "role", "artifact_type", "output_schema", "callable"}
EVIDENCE_TYPES = {
    "RepoManifest",
    "BuildReport",
    "CoverageReport",
    "SecurityPack",
    "SecretsScanReport",
    "SBOM",
    "VulnerabilityScan",
    "AcceptanceTestResults",
    "StoryProgress",
    "TestReport",
    "PerfReport",
    "A11yAudit",
}


def srdd_rows(count: int = 30) -> list[dict[str, str]]:
    """``count`` SRDD rows, one per category in sorted category order, picked by a fixed stride."""
    if not SRDD.is_file():
        pytest.fail(f"SRDD data set not found at {SRDD}: the offline template tests need it")
    with SRDD.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    by_category: dict[str, list[dict[str, str]]] = {}
    for row in rows:
        by_category.setdefault(row["Category"], []).append(row)
    picked = []
    for index, category in enumerate(sorted(by_category)[:count]):
        group = by_category[category]
        picked.append(group[(index * 7) % len(group)])
    return picked


IDEAS: dict[str, str] = {"farmers": FARMERS, **EDGE_CASES}
SRDD_IDS = [f"srdd-{i:02d}" for i in range(30)]


def idea_text(idea_id: str) -> str:
    if idea_id in IDEAS:
        return IDEAS[idea_id]
    row = srdd_rows()[int(idea_id.rsplit("-", 1)[1])]
    return row["Description"]


@cache
def run_for(idea_id: str) -> Run:
    """One cached pipeline walk per idea (the walks are deterministic, see the test below)."""
    return run_pipeline(idea_text(idea_id))


def _paths(run: Run) -> set[str]:
    return set(run.artifacts["OpenAPI"]["paths"]) - {"/health"}


# --------------------------------------------------------------------------------------------
# Files.


def test_every_agent_has_a_well_formed_file() -> None:
    expected = {name: (phase, mode) for phase, mode, _, agents in PHASES for name in agents}
    files = sorted(p.stem for p in (DEFAULTS / "agents").glob("*.yaml"))
    assert sorted(f for f in files if agent(f)["phase"] != "qav") == sorted(expected)
    for name, (phase, _) in expected.items():
        spec = agent(name)
        assert spec["name"] == name
        assert spec["phase"] == phase
        assert spec["output_schema"]["type"] == "object"
        Draft202012Validator.check_schema(spec["output_schema"])
        if "callable" in spec:  # an evidence agent: it runs tools, it renders no template
            assert CALLABLE_KEYS <= set(spec) <= CALLABLE_KEYS | {"evidence", "timeout_seconds"}
            assert spec["callable"].startswith("ideamine.tools.agents:"), name
            continue
        assert AGENT_KEYS <= set(spec) <= AGENT_KEYS | OPTIONAL_KEYS, name
        assert "tojson" in spec["offline"], f"{name} must quote interpolations with tojson"


def test_evidence_comes_only_from_agents_that_run_tools() -> None:
    """DESIGN.md invariant 7: every report of docs/evidence.md is produced by a callable that
    runs the real tool, never by a model agent's template."""
    for _, _, _, agents in PHASES:
        for name in agents:
            produced = set(_phase_types_of(name)) & EVIDENCE_TYPES
            if produced:
                assert "callable" in agent(name), f"{name} claims {sorted(produced)}"


def test_multi_producer_types_have_a_schema_file() -> None:
    producers: dict[str, list[str]] = {}
    for _, _, _, agents in PHASES:
        for name in agents:
            for artifact_type in _phase_types_of(name):
                producers.setdefault(artifact_type, []).append(name)
    shared = sorted(t for t, names in producers.items() if len(names) > 1)
    assert shared == [
        "DesignSystem",
        "IdeaSpec",
        "PerfReport",
        "ReleaseNotes",
        "SecurityPack",
        "SourceCode",
    ]
    for artifact_type in shared:
        declared = schema(artifact_type)
        assert declared is not None, artifact_type
        Draft202012Validator.check_schema(declared)


def _phase_types_of(name: str) -> list[str]:
    declared = agent(name)["artifact_type"]
    return [declared] if isinstance(declared, str) else list(declared)


# --------------------------------------------------------------------------------------------
# Whole-pipeline properties, for every idea.


@pytest.mark.parametrize("idea_id", [*IDEAS, *SRDD_IDS])
def test_pipeline_renders_schema_valid_specific_output(idea_id: str) -> None:
    """Every agent's output validates (checked inside the walk) and hangs together."""
    run = run_for(idea_id)
    spec = run.artifacts["IdeaSpec"]
    stories = run.artifacts["UserStories"]["stories"]
    assert 5 <= len(spec["title"]) <= 200
    assert len(stories) >= 5
    story_ids = [s["id"] for s in stories]
    assert len(set(story_ids)) == len(story_ids)
    personas = {p["name"] for p in run.artifacts["Personas"]["personas"]}
    assert {s["persona"] for s in stories} <= personas
    traced = {row["story_id"] for row in run.artifacts["RTM"]["traceability_matrix"]}
    assert traced == set(story_ids)
    # The API and the data model come from the same entity derivation.
    names = [e["name"] for e in run.artifacts["DataModel"]["entities"]]
    tags = {
        op["tags"][0]
        for item in run.artifacts["OpenAPI"]["paths"].values()
        for key, op in item.items()
        if key != "parameters"
    }
    assert tags - {"Health"} == set(names)
    tables = {e["table"] for e in run.artifacts["DataModel"]["entities"]}
    expected_paths = {"/" + t.replace("_", "-") for t in tables}
    assert _paths(run) == expected_paths | {p + "/{id}" for p in expected_paths}
    # The story loop ran once per story, capped at 10, in story order.
    done = [item["story_id"] for item in run.artifacts["StoryProgress"]["items"]]
    assert done == story_ids[: min(len(stories), LOOP_MAX)]
    # Generated Python parses.
    for path, file in run.artifacts["SourceCode"]["files"].items():
        if path.endswith(".py"):
            ast.parse(file["content"], filename=path)
    for item in run.artifacts["ImplementedStories"]["items"]:
        for path, content in item["files_changed"].items():
            ast.parse(content, filename=path)
    for prompt in run.prompts.values():
        assert prompt.strip()


@pytest.mark.parametrize("idea_id", [*IDEAS, *SRDD_IDS[:10]])
def test_offline_model_never_claims_evidence(idea_id: str) -> None:
    """What the model writes plans or describes; it reports nothing as run or measured."""
    a = run_for(idea_id).artifacts
    assert a["CompatibilityMatrix"]["executed"] is False
    assert {b["status"] for b in a["CompatibilityMatrix"]["browsers"]} == {"planned"}
    assert a["CanaryResults"]["observed"] is None
    assert a["DeploymentReport"]["executed"] is False
    assert a["BetaMetrics"]["measured"] is False
    # Without tools, every evidence report says its tool did not run and holds no numbers.
    assert a["CoverageReport"]["measured"] is False and a["CoverageReport"]["percent"] is None
    assert a["BuildReport"]["tests"]["total"] is None
    assert a["VulnerabilityScan"]["counts"] is None and a["SecretsScanReport"]["count"] is None
    assert a["PerfReport"]["rps"] is None and a["PerfReport"]["p95_ms"] is None
    assert a["TestReport"]["pass_rate"] is None
    outcomes = {r["outcome"] for i in a["AcceptanceTestResults"]["items"] for r in i["stories"]}
    assert outcomes == {"not_run"}
    assert all(i["tests_executed"] is False for i in a["StoryProgress"]["items"])
    assert all(i["completed_story_ids"] == [] for i in a["StoryProgress"]["items"])
    # The story implementations carry the acceptance tests that StoryTesterAgent runs.
    for item in a["ImplementedStories"]["items"]:
        assert item["test_file"] in item["files_changed"]
        test_code = item["files_changed"][item["test_file"]]
        assert all(f"def {t['test_name']}(" in test_code for t in item["tests"])


# --------------------------------------------------------------------------------------------
# Specific ideas.


def test_farmers_idea_is_about_farmers_and_restaurants() -> None:
    run = run_for("farmers")
    spec = run.artifacts["IdeaSpec"]
    assert "Farmers" in spec["title"]
    assert spec["target_users"] == ["farmers", "restaurants"]
    roles = [p["role"] for p in run.artifacts["Personas"]["personas"]]
    assert roles == ["farmer", "restaurant"]
    stories = run.artifacts["UserStories"]["stories"]
    assert {s["role"] for s in stories} == {"farmer", "restaurant"}
    assert any("sell produce" in s["text"] for s in stories)
    names = {e["name"] for e in run.artifacts["DataModel"]["entities"]}
    assert {"Farmer", "Restaurant", "Produce", "Order"} <= names
    assert {"/farmers", "/restaurants", "/produce", "/orders", "/farmers/{id}"} <= _paths(run)
    files = run.artifacts["SourceCode"]["files"]
    main = files["backend/app/main.py"]["content"]
    assert '@app.post(\n    "/farmers",' in main and 'operation_id="createFarmer"' in main
    assert 'CREATE TABLE IF NOT EXISTS "orders"' in files["db/schema.sql"]["content"]
    assert "/restaurants" in files["frontend/index.html"]["content"]
    assert "backend/tests/test_farmers.py" in run.artifacts["TestSuite"]["files"]


def test_idea_without_people_falls_back_to_users_and_records_it() -> None:
    spec = run_for("no-people").artifacts["IdeaSpec"]
    assert spec["target_users"] == ["users", "administrators"]
    assert spec["metadata"]["roles_inferred"] is True
    assert any(a["field"] == "target_users" for a in spec["assumptions"])


def test_every_filled_gap_is_a_recorded_assumption() -> None:
    spec = run_for("one-word").artifacts["IdeaSpec"]
    fields = {a["field"] for a in spec["assumptions"]}
    assert {
        "title",
        "target_users",
        "constraints.budget_usd",
        "constraints.timeline_days",
        "constraints.compliance",
        "constraints.tech_preferences",
    } <= fields
    assert all(a["statement"] and a["reason"] for a in spec["assumptions"])


def test_hostile_idea_text_is_data_not_template() -> None:
    spec = run_for("hostile").artifacts["IdeaSpec"]
    assert "<script>alert(1)</script>" in spec["description"]
    assert "{{ y }}" in spec["description"]


def test_unicode_idea_keeps_its_text_and_yields_ascii_identifiers() -> None:
    run = run_for("unicode")
    assert "Zürich" in run.artifacts["IdeaSpec"]["description"]
    for entity in run.artifacts["DataModel"]["entities"]:
        assert re.fullmatch(r"[A-Z][A-Za-z0-9]*", entity["name"])
    assert all(p.isascii() for p in _paths(run))


def test_compliance_is_inferred_and_carried_to_nfrs_and_risks() -> None:
    a = run_for("compliance").artifacts
    assert {"HIPAA", "PCI-DSS"} <= set(a["IdeaSpec"]["constraints"]["compliance"])
    assert {"patients", "doctors"} <= set(a["IdeaSpec"]["target_users"])
    categories = {n["category"] for n in a["NFRs"]["nfrs"]}
    assert "compliance" in categories
    assert any(r["category"] == "compliance" for r in a["RiskRegister"]["risks"])
    assert {c["regime"] for c in a["SecurityControls"]["compliance"]} >= {"HIPAA", "PCI-DSS"}


def test_given_constraints_are_kept_and_unknown_regimes_recorded() -> None:
    run = run_pipeline(
        FARMERS,
        {
            "budget_usd": 12000,
            "timeline_days": 45,
            "compliance": ["gdpr", "FERPA"],
            "tech_preferences": ["React", "PostgreSQL"],
        },
    )
    spec = run.artifacts["IdeaSpec"]
    assert spec["constraints"]["budget_usd"] == 12000
    assert spec["constraints"]["timeline_days"] == 45
    assert spec["constraints"]["compliance"] == ["GDPR"]
    assert spec["constraint_sources"]["unrecognized_compliance"] == ["FERPA"]
    assert any("FERPA" in a["statement"] for a in spec["assumptions"])
    stack = run.artifacts["TechStackProposal"]
    assert "React" in stack["tech_stack"]["frontend"]
    assert "psycopg" in {d["name"] for d in stack["dependencies"]}


def test_different_ideas_give_different_prds() -> None:
    prds = [
        json.dumps(run_for(i).artifacts["PRD"], sort_keys=True)
        for i in ["farmers", "one-word", "compliance", *SRDD_IDS[:8]]
    ]
    assert len(set(prds)) == len(prds)
    titles = [run_for(i).artifacts["IdeaSpec"]["title"] for i in SRDD_IDS]
    assert len(set(titles)) >= 25


def test_story_functions_are_never_collected_by_pytest() -> None:
    # SRDD's "Sports Trivia Game" story "test their knowledge…" once became test_knowledge(),
    # which the story's test module imports, so pytest collected it and errored
    run = run_pipeline(
        "A sports trivia game: players test their knowledge of various sports through "
        "timed quizzes and compare scores with friends."
    )
    steps = run.outputs["story-loop"]
    functions = [
        o["function"]
        for step in steps
        for o in step.values()
        if isinstance(o, dict) and "function" in o
    ]
    assert functions and not [f for f in functions if f.startswith("test")]
    assert any(f.startswith("story_test") for f in functions)


def test_same_idea_renders_byte_identically() -> None:
    first = run_pipeline(FARMERS)
    second = run_pipeline(FARMERS)
    assert first.rendered == second.rendered
    assert first.prompts == second.prompts


def test_prompts_carry_the_idea_context() -> None:
    run = run_for("farmers")
    assert FARMERS in run.prompts["IntakeAgent"]
    assert "Local Farmers Marketplace" in run.prompts["StoryCutterAgent"]
    assert "/farmers" in run.prompts["BackendAgent"]


def test_gate_feedback_reaches_every_prompt_without_changing_offline_output() -> None:
    issue = {"type": "grounding", "severity": "high", "description": "Cite the personas"}
    run = run_pipeline(FARMERS, feedback=[issue])
    assert all("Cite the personas" in prompt for prompt in run.prompts.values())
    assert run.rendered == run_for("farmers").rendered


def test_embedded_dag_matches_the_shipped_phase_files() -> None:
    """The driver's copy of the DAG must not drift from ``phases/*.yaml``."""
    for name, mode, deps, agents in PHASES:
        phase = _yaml(DEFAULTS / "phases" / f"{name}.yaml")
        assert phase["agents"] == list(agents), name
        assert phase["depends_on"] == list(deps), name
        assert str(phase["parallelism"]) == mode, name
        if mode == "iterative":
            assert phase["loop"]["until"] == LOOP_UNTIL
            assert phase["loop"]["max_iterations"] == LOOP_MAX
