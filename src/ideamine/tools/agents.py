"""The evidence agents: Python callables (``callable: ideamine.tools.agents:<name>``) that run
real tools inside phases and return the reports of docs/evidence.md.

- build: ``integrate_build`` writes the build's files into the run's workspace (one commit per
  build attempt) and runs compileall, pytest with coverage and ruff on it;
- security: ``sast_scan``, ``dast_scan``, ``dependency_scan``, ``secrets_scan_agent`` and
  ``sbom_agent``, each in a checkout of its own at the build's commit;
- story loop: ``story_test`` commits the iteration's story on top of the build's commit and runs
  that story's acceptance tests; ``story_progress`` records progress from those results;
- qa: ``e2e_agent``, ``latency_agent``, ``load_agent`` and ``a11y_agent`` each start the
  service of a checkout at the story loop's last commit and measure it over HTTP.

Tools run on worker threads (``asyncio.to_thread``) with a heartbeat between them. No agent
here reports a number that a tool did not measure.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from ideamine.agents.base import AgentContext
from ideamine.errors import AgentError, IdeaMineError
from ideamine.tools import a11y, dast, osv, python_checks, security, service
from ideamine.tools.chain import build_snapshots, commit_stories, stored_build_snapshots
from ideamine.tools.process import ToolRun
from ideamine.tools.stories import acceptance_results, story_progress_of
from ideamine.tools.warm import warm_python
from ideamine.tools.workspace import (
    RepoManifest,
    Snapshot,
    build_repository,
    checkout,
    checkout_dir,
    ensure_repository,
    has_commit,
    workspace_dir,
)

__all__ = [
    "a11y_agent",
    "build_evidence",
    "dast_scan",
    "dependency_scan",
    "e2e_agent",
    "integrate_build",
    "latency_agent",
    "load_agent",
    "sast_scan",
    "sbom_agent",
    "secrets_scan_agent",
    "story_progress",
    "story_test",
]

_T = TypeVar("_T")
COMMANDS = {
    "install": "python -m pip install -r backend/requirements.txt",
    "test": "cd backend && python -m pytest",
    "lint": "python -m ruff check backend",
    "run": "cd backend && python -m uvicorn app.main:app --port 8000",
}
"""How to work with the generated workspace (as its README says)."""


# ---------------------------------------------------------------- shared steps


def _data_dir(ctx: AgentContext) -> Path:
    if ctx.data_dir is None:
        raise AgentError(
            ctx.spec.name,
            "no data directory for the run's workspace",
            hint="run with --data-dir DIR (or set IDEAMINE_DATA_DIR)",
        )
    return ctx.data_dir


def _artifact(ctx: AgentContext, name: str) -> Mapping[str, Any]:
    artifacts = ctx.values.get("artifacts")
    found = artifacts.get(name) if isinstance(artifacts, Mapping) else None
    if not isinstance(found, Mapping):
        raise AgentError(ctx.spec.name, f"needs the {name} artifact, which this run lacks")
    return found


async def _step(ctx: AgentContext, work: Callable[..., _T], *args: Any, **kwargs: Any) -> _T:
    """Run one blocking tool step on a thread, renewing the task's lease around it."""
    await ctx.heartbeat()
    try:
        result = await asyncio.to_thread(work, *args, **kwargs)
    except IdeaMineError as exc:
        raise AgentError(ctx.spec.name, str(exc), hint=exc.hint) from exc
    await ctx.heartbeat()
    return result


async def _ensure_build(ctx: AgentContext) -> tuple[Path, RepoManifest]:
    """The run's repository holding the build's commit (rebuilt from the stored outputs when
    this machine has none), and the build's manifest."""
    data_dir = _data_dir(ctx)
    recorded = _artifact(ctx, "RepoManifest")
    manifest = RepoManifest.from_json(recorded)
    repo = workspace_dir(data_dir, ctx.run_id)
    if not await _step(ctx, has_commit, repo, manifest.commit):
        if ctx.store is None:
            raise AgentError(ctx.spec.name, "the workspace is missing and there is no store")
        phase = str(recorded.get("phase") or "build")
        snapshots = await stored_build_snapshots(ctx.store, ctx.run_id, manifest, phase)
        await _step(ctx, ensure_repository, repo, snapshots, manifest.commit)
    return repo, manifest


def _task_checkout(ctx: AgentContext, suffix: str = "") -> Path:
    """This task's own checkout folder (a phase attempt never shares a working tree)."""
    name = f"{ctx.phase}-{ctx.attempt}-{ctx.spec.name}{suffix}"
    return checkout_dir(_data_dir(ctx), ctx.run_id, name)


async def _build_checkout(ctx: AgentContext) -> tuple[Path, RepoManifest]:
    """A checkout of the build's commit for this task."""
    repo, manifest = await _ensure_build(ctx)
    dest = _task_checkout(ctx)
    branch = f"{ctx.phase}-{ctx.attempt}"
    await _step(ctx, checkout, repo, dest, manifest.commit, branch=branch)
    return dest, manifest


# ---------------------------------------------------------------- build


async def integrate_build(ctx: AgentContext) -> dict[str, object]:
    """Commit the build attempt's files into the workspace and run the build checks.

    Returns ``{"RepoManifest", "BuildReport", "CoverageReport"}``. Earlier attempts whose
    evidence agent ran are committed first, so the chain is the same on every machine.
    """
    if ctx.store is None:
        raise AgentError(ctx.spec.name, "needs the run's store to read the build's outputs")
    repo = workspace_dir(_data_dir(ctx), ctx.run_id)
    snapshots = await build_snapshots(ctx.store, ctx.run_id, ctx.phase, ctx.attempt, ctx.spec.name)
    if not snapshots[-1].files:
        raise AgentError(ctx.spec.name, "the build's agents wrote no files")
    warm_python().start_soon()  # ready for the tests by the time the build is compiled
    found = await _step(ctx, build_evidence, repo, snapshots)
    manifest = {**found["RepoManifest"], "phase": ctx.phase, **_repository(ctx)}
    return {**found, "RepoManifest": manifest}


def build_evidence(
    repo: Path, snapshots: Sequence[Snapshot], *, limit_s: float | None = None
) -> dict[str, dict[str, object]]:
    """Build the repository from ``snapshots`` and run compileall, pytest with coverage and
    ruff on its head: ``{"RepoManifest", "BuildReport", "CoverageReport"}``.

    ``limit_s`` replaces each tool's own time limit (a tool cut by it reports ``timed_out``
    and no numbers).
    """
    manifest = build_repository(repo, snapshots)
    compiled = python_checks.compile_check(repo, timeout=limit_s or 120)
    tests, coverage = python_checks.run_tests(repo, timeout=limit_s or 600)
    linted = python_checks.lint(repo, timeout=limit_s or 120)
    report: dict[str, object] = {
        "commit": manifest.commit,
        "compile": compiled,
        "tests": tests,
        "lint": linted,
    }
    return {"RepoManifest": manifest.to_json(), "BuildReport": report, "CoverageReport": coverage}


def _repository(ctx: AgentContext) -> dict[str, object]:
    """The repository's name, description and commands (the generated layout's, see its
    README), for the agents of later phases that describe or deploy it."""
    artifacts = ctx.values.get("artifacts")
    spec = artifacts.get("IdeaSpec") if isinstance(artifacts, Mapping) else None
    description = str(spec.get("title", "")) if isinstance(spec, Mapping) else ""
    return {
        "repository": {"name": _repository_name(ctx), "description": description},
        "commands": dict(COMMANDS),
    }


# ---------------------------------------------------------------- security


async def sast_scan(ctx: AgentContext) -> dict[str, object]:
    """SecurityPack ``sast``: bandit over the build's backend."""
    dest, _ = await _build_checkout(ctx)
    section = await _step(ctx, security.sast, dest)
    return {"sast": {**section, "scanned": section["counts"] is not None}}


async def secrets_scan_agent(ctx: AgentContext) -> dict[str, object]:
    """SecretsScanReport: detect-secrets over every file of the build's commit."""
    dest, manifest = await _build_checkout(ctx)
    report = await _step(ctx, security.secrets_scan, dest)
    return {**report, "commit": manifest.commit}


async def sbom_agent(ctx: AgentContext) -> dict[str, object]:
    """SBOM: CycloneDX 1.5 of the build's pinned requirements."""
    dest, _ = await _build_checkout(ctx)
    return _named_bom(ctx, await _step(ctx, security.sbom, dest))


async def dependency_scan(ctx: AgentContext) -> dict[str, object]:
    """VulnerabilityScan: the SBOM's components against the run's OSV folder, if any."""
    dest, manifest = await _build_checkout(ctx)
    bom = await _step(ctx, security.sbom, dest)
    option = ctx.options.get("advisories")
    folder = Path(str(option)) if option else None
    try:
        scan = await asyncio.to_thread(osv.osv_scan, bom, folder)
    except osv.AdvisoryError as exc:
        raise AgentError(ctx.spec.name, str(exc), hint=exc.hint) from exc
    return {**scan, "commit": manifest.commit, "sbom_evidence": bom["evidence"]}


def _named_bom(ctx: AgentContext, bom: dict[str, object]) -> dict[str, object]:
    """Name the BOM's subject after the repository, not after this task's checkout folder."""
    metadata = bom.get("metadata")
    if isinstance(metadata, Mapping) and isinstance(metadata.get("component"), Mapping):
        name = _repository_name(ctx)
        component = {**metadata["component"], "name": name}
        bom = {**bom, "metadata": {**metadata, "component": component}}
    return bom


def _repository_name(ctx: AgentContext) -> str:
    artifacts = ctx.values.get("artifacts")
    spec = artifacts.get("IdeaSpec") if isinstance(artifacts, Mapping) else None
    title = str(spec.get("title", "")) if isinstance(spec, Mapping) else ""
    words = "".join(ch.lower() if ch.isalnum() else "-" for ch in title).split("-")
    return "-".join(word for word in words if word)[:48] or ctx.run_id


async def dast_scan(ctx: AgentContext) -> dict[str, object]:
    """SecurityPack ``dast``: probes of the build's service running on loopback."""
    dest, _ = await _build_checkout(ctx)
    openapi = _artifact(ctx, "OpenAPI")
    empty: dict[str, object] = {"target": None, "findings": [], "checks": []}
    probes = await _with_service(
        ctx, dest, lambda svc: dast.dast_probes(svc, openapi), "dast-http", empty
    )
    return {"dast": probes}


# ---------------------------------------------------------------- story loop


async def story_test(ctx: AgentContext) -> dict[str, object]:
    """AcceptanceTestResults of this iteration: its story committed on top of the build's
    commit (after the earlier iterations' stories), then that story's tests run by pytest."""
    if not any(isinstance(o, Mapping) and "files_changed" in o for o in _outputs(ctx).values()):
        raise AgentError(ctx.spec.name, "no story implementation in this iteration's outputs")
    implemented = _implemented(ctx)
    repo, manifest = await _ensure_build(ctx)
    dest = _task_checkout(ctx, f"-{ctx.iteration:03d}")
    head = await _step(ctx, commit_stories, repo, dest, manifest.commit, implemented)
    current = implemented[-1]
    select = [str(current.get("test_file") or "tests/acceptance").removeprefix("backend/")]
    tests = await _step(ctx, python_checks.run_selected_tests, dest, select)
    return acceptance_results(current, tests, head.commit)


def _outputs(ctx: AgentContext) -> Mapping[str, Any]:
    outputs = ctx.values.get("outputs")
    return outputs if isinstance(outputs, Mapping) else {}


def _implemented(ctx: AgentContext) -> list[Mapping[str, Any]]:
    """Every iteration's implementation so far (earlier ones first, this one last)."""
    history = ctx.values.get("history")
    steps = [*(history if isinstance(history, list) else []), _outputs(ctx)]
    found = []
    for step in steps:
        if isinstance(step, Mapping):
            found += [o for o in step.values() if isinstance(o, Mapping) and "files_changed" in o]
    return found


async def story_progress(ctx: AgentContext) -> dict[str, object]:
    """StoryProgress of this iteration, from the acceptance results recorded so far."""
    stories = _artifact(ctx, "UserStories").get("stories") or []
    history = ctx.values.get("history")
    outputs = ctx.values.get("outputs")
    return story_progress_of(
        stories=list(stories),
        iteration=ctx.iteration,
        history=list(history) if isinstance(history, list) else [],
        outputs=outputs if isinstance(outputs, Mapping) else {},
    )


# ---------------------------------------------------------------- qa


async def _qa_checkout(ctx: AgentContext) -> tuple[Path, str]:
    """A checkout at the story loop's last commit: the build's commit with the implemented
    stories replayed on top, checked against the commit the story loop tested."""
    repo, manifest = await _ensure_build(ctx)
    items = _artifact(ctx, "ImplementedStories").get("items") or []
    dest = _task_checkout(ctx)
    head = await _step(ctx, commit_stories, repo, dest, manifest.commit, list(items))
    expected = _last_commit(ctx)
    if expected and head.commit != expected:
        raise AgentError(
            ctx.spec.name,
            f"replaying the stories gave {head.commit}, the story loop tested {expected}",
        )
    return dest, head.commit


def _last_commit(ctx: AgentContext) -> str:
    """The commit the story loop's last acceptance run tested ("" when none is recorded)."""
    artifacts = ctx.values.get("artifacts")
    results = artifacts.get("AcceptanceTestResults") if isinstance(artifacts, Mapping) else None
    items = results.get("items") if isinstance(results, Mapping) else None
    last = items[-1] if isinstance(items, list) and items else results
    return str(last.get("commit") or "") if isinstance(last, Mapping) else ""


async def e2e_agent(ctx: AgentContext) -> dict[str, object]:
    """TestReport: end-to-end HTTP cases derived from the OpenAPI contract."""
    dest, commit = await _qa_checkout(ctx)
    openapi = _artifact(ctx, "OpenAPI")
    empty: dict[str, object] = {
        "total": None,
        "passed": None,
        "failed": None,
        "pass_rate": None,
        "cases": [],
    }
    report = await _with_service(
        ctx, dest, lambda svc: service.e2e_tests(svc, openapi), "e2e-http", empty
    )
    return {"base_url": None, **report, "commit": commit}


async def latency_agent(ctx: AgentContext) -> dict[str, object]:
    """PerfReport ``performance``: p50/p95 per GET endpoint, one request at a time."""
    dest, commit = await _qa_checkout(ctx)
    openapi = _artifact(ctx, "OpenAPI")

    async def measure(svc: service.Service) -> dict[str, object]:
        return await service.latency(svc, await service.seed(svc, openapi))

    found = await _with_service(ctx, dest, measure, "latency-http", {"endpoints": []})
    executed = bool(found["endpoints"])
    return {"performance": {**found, "executed": executed, "commit": commit}}


async def load_agent(ctx: AgentContext) -> dict[str, object]:
    """PerfReport: a short bounded load test at a fixed concurrency (rps, p50, p95)."""
    dest, commit = await _qa_checkout(ctx)
    openapi = _artifact(ctx, "OpenAPI")

    async def measure(svc: service.Service) -> dict[str, object]:
        return await service.load_test(svc, await service.seed(svc, openapi))

    empty: dict[str, object] = dict.fromkeys(
        ("requests", "errors", "rps", "duration_s", "p50_ms", "p95_ms")
    )
    empty["budget"] = dict(service.PERF_BUDGET)
    found = await _with_service(ctx, dest, measure, "load-http", empty)
    return {**found, "commit": commit}


async def a11y_agent(ctx: AgentContext) -> dict[str, object]:
    """A11yAudit: the static WCAG 2.1 AA subset over every HTML page the service serves."""
    dest, commit = await _qa_checkout(ctx)
    empty = {"standard": a11y.STANDARD, "scope": a11y.SCOPE, "pages": [], "violations": []}
    found = await _with_service(ctx, dest, a11y.a11y_audit, "a11y-static", empty)
    evidence = found.get("evidence")
    executed = (
        isinstance(evidence, Mapping) and evidence.get("executed") is True and bool(found["pages"])
    )
    return {**found, "executed": executed, "checks": a11y.checks_made(), "commit": commit}


async def _with_service(
    ctx: AgentContext,
    dest: Path,
    check: Callable[[service.Service], Awaitable[dict[str, object]]],
    tool: str,
    empty: Mapping[str, object],
) -> dict[str, object]:
    """Run ``check`` against the checkout's service; when the service does not start, the
    ``empty`` report with an envelope saying the tool could not run, and why."""
    await ctx.heartbeat()
    try:
        async with service.running_service(dest / "backend") as svc:
            result = await check(svc)
    except service.ServiceError as exc:
        return {**empty, "evidence": ToolRun.not_run(tool, str(exc)).envelope()}
    await ctx.heartbeat()
    return result
