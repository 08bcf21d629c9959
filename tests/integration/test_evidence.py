"""Evidence from real tools on real code (docs/evidence.md), no mocks.

A module fixture runs the default pipeline offline from intake to qa (Q/A/V switched off in
an overlay, so only the evidence under test decides), on SQLite with a data directory. The
build's evidence agent materialises the generated service and runs compileall, pytest with
coverage and ruff; security runs bandit, HTTP probes, detect-secrets, cyclonedx-py and the OSV
matcher; the story loop commits and tests each story; qa starts the service and measures it.
The other tests take that generated workspace and break it on purpose: a planted secret and a
``shell=True``, an advisory naming a pinned dependency, a broken endpoint, a hanging test.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from ideamine import service
from ideamine.agents.base import AgentContext
from ideamine.config.loader import default_config_dir, load_pipeline
from ideamine.engine.gate import score_gate
from ideamine.engine.states import PhaseStatus, RunStatus
from ideamine.errors import RunStateError
from ideamine.knowledge.guards.base import GuardInput, guard_for
from ideamine.runtime.runner import Runner
from ideamine.stores.records import EventDraft
from ideamine.stores.sqlite import SqliteStore
from ideamine.stores.verdicts import Verdict, VerdictStore, Waiver
from ideamine.tools import agents
from ideamine.tools.chain import build_snapshots
from ideamine.tools.workspace import Snapshot, build_repository, has_commit

IDEA = "A marketplace where local farmers sell produce to nearby restaurants"
UP_TO_QA = [
    "intake", "ideation", "critique", "prd", "bizdev", "architecture", "build", "security",
    "story-loop", "qa",
]  # fmt: skip
pytestmark = pytest.mark.timeout(900)


def _overlay(folder: Path) -> Path:
    """The default pipeline up to qa, with Q/A/V off: only tool evidence decides the gates."""
    defaults = default_config_dir()
    pipeline = yaml.safe_load((defaults / "pipeline.yaml").read_text())
    pipeline["phases"] = UP_TO_QA
    (folder / "phases").mkdir(parents=True)
    (folder / "pipeline.yaml").write_text(yaml.safe_dump(pipeline))
    for phase in UP_TO_QA:
        document = yaml.safe_load((defaults / "phases" / f"{phase}.yaml").read_text())
        document["qav"]["enabled"] = False
        (folder / "phases" / f"{phase}.yaml").write_text(yaml.safe_dump(document))
    return folder


class Run:
    """A finished run: its store file, data directory, id and latest artifacts."""

    def __init__(self, db: Path, data_dir: Path, run_id: str, status: RunStatus) -> None:
        self.db, self.data_dir, self.id, self.status = db, data_dir, run_id, status
        self.artifacts: dict[str, Any] = asyncio.run(self._latest())

    async def _latest(self) -> dict[str, Any]:
        store = SqliteStore(self.db)
        try:
            latest: dict[str, Any] = {}
            for record in await store.artifacts(self.id):
                if record.type not in latest or record.version > latest[record.type][0]:
                    latest[record.type] = (record.version, await store.blob(record.content_hash))
            return {name: content for name, (_, content) in latest.items()}
        finally:
            await store.close()


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    folder = tmp_path_factory.mktemp("evidence")
    config = _overlay(folder / "config")
    db, data_dir = folder / "ideamine.db", folder / "data"

    async def go() -> tuple[str, RunStatus]:
        pipeline = load_pipeline(config)
        store = await service.open_store(str(db))
        try:
            record = await service.create_run(
                store, pipeline, IDEA, constraints={}, source="cli", config_dir=config
            )
            final = await Runner(store, pipeline, data_dir=data_dir).drive(record.id)
            return record.id, final.status
        finally:
            await store.close()

    run_id, status = asyncio.run(go())
    return Run(db, data_dir, run_id, status)


def _git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(repo), *args], check=False, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def _workspace_files(run: Run) -> dict[str, str]:
    """Path → text of every file of the build's commit."""
    repo = Path(run.artifacts["RepoManifest"]["path"])
    return {name: (repo / name).read_text() for name in _git(repo, "ls-files").splitlines()}


def _context(
    name: str,
    data_dir: Path,
    artifacts: Mapping[str, object],
    *,
    options: Mapping[str, object] | None = None,
    store: SqliteStore | None = None,
    run_id: str = "planted",
) -> AgentContext:
    spec = load_pipeline(None).agents[name]
    return AgentContext(
        run_id=run_id,
        phase=spec.phase,
        attempt=1,
        key=f"00.{name}",
        iteration=1,
        spec=spec,
        values={"artifacts": dict(artifacts)},
        data_dir=data_dir,
        options=dict(options or {}),
        store=store,
    )


def _gate(phase: str, artifacts: Mapping[str, Any]) -> dict[str, Any]:
    """The shipped phase's guards and gate on ``artifacts`` (Q/A/V off), as the judge runs
    them."""
    spec = load_pipeline(None).phase(phase)

    async def judge() -> list[dict[str, Any]]:
        return [
            (
                await guard_for(g.type).check(
                    GuardInput(
                        phase=phase,
                        artifacts=artifacts,
                        upstream={},
                        config=dict(g.config),
                        producers={},
                    )
                )
            ).as_dict()
            for g in spec.guards
        ]

    return score_gate(spec.gate, asyncio.run(judge()), grounding=None, attempt=1)


def _refused_waiver(tmp_path: Path, result: Mapping[str, Any]) -> str:
    """The message with which a waiver of a gate that failed with ``result`` is refused."""

    async def go() -> str:
        store = await service.open_store(str(tmp_path / "waive.db"))
        try:
            config = _overlay(tmp_path / "waive-config")
            pipeline = load_pipeline(config)
            record = await service.create_run(
                store, pipeline, IDEA, constraints={}, source="cli", config_dir=config
            )
            verdicts = VerdictStore(store)
            await store.start_phase(
                record.id, "security", 1, EventDraft(type="phase.started", phase="security")
            )
            await store.record_artifacts(
                record.id, "security", 1, [], EventDraft(type="phase.ready", phase="security")
            )
            await verdicts.record(
                Verdict(
                    run_id=record.id,
                    phase="security",
                    attempt=1,
                    result=result,
                    phase_status=PhaseStatus.FAILED,
                    events=[EventDraft(type="phase.gate.failed", phase="security")],
                )
            )
            with pytest.raises(RunStateError) as refused:
                await verdicts.waive(
                    Waiver(
                        run_id=record.id,
                        phase="security",
                        reason="accepted for the beta",
                        expires_at="2099-01-01T00:00:00+00:00",
                    )
                )
            return str(refused.value)
        finally:
            await store.close()

    return asyncio.run(go())


def _planted_workspace(run: Run, data_dir: Path, extra: Mapping[str, str]) -> dict[str, object]:
    """The run's generated files plus ``extra``, committed as run ``planted``'s workspace."""
    files = {**_workspace_files(run), **extra}
    manifest = build_repository(
        data_dir / "workspaces" / "planted", [Snapshot(message="build attempt 1", files=files)]
    )
    return {**run.artifacts, "RepoManifest": manifest.to_json()}


# ---------------------------------------------------------------- the pipeline's own evidence


def test_the_run_reaches_qa_on_measured_evidence(run: Run) -> None:
    assert run.status is RunStatus.COMPLETED
    for name in ("RepoManifest", "BuildReport", "CoverageReport", "SecurityPack", "SBOM",
                 "VulnerabilityScan", "SecretsScanReport", "AcceptanceTestResults",
                 "TestReport", "PerfReport", "A11yAudit"):  # fmt: skip
        assert name in run.artifacts, name


def test_the_workspace_is_the_committed_repository(run: Run) -> None:
    manifest = run.artifacts["RepoManifest"]
    repo = Path(manifest["path"])
    assert repo == run.data_dir / "workspaces" / run.id
    assert _git(repo, "rev-parse", "HEAD").strip() == manifest["commit"]
    assert _git(repo, "ls-files").split() == manifest["files"]
    assert [c["message"] for c in manifest["commits"]] == ["build attempt 1"]
    layout = set(manifest["files"])
    assert {"README.md", "Dockerfile", ".github/workflows/ci.yml", "db/schema.sql",
            "backend/requirements.txt", "backend/app/main.py", "backend/app/storage.py",
            "frontend/index.html"} <= layout  # fmt: skip
    generated = "\n".join(_workspace_files(run).values())
    for placeholder in ("TODO", "FIXME", "NotImplementedError"):
        assert placeholder not in generated
    assert not re.search(r":\n\s+(pass|\.\.\.)\n", generated)


def test_build_numbers_are_what_pytest_coverage_and_ruff_measured(run: Run) -> None:
    report, coverage = run.artifacts["BuildReport"], run.artifacts["CoverageReport"]
    tests = report["tests"]
    written = sum(
        len(re.findall(r"^def test_", content, re.MULTILINE))
        for path, content in _workspace_files(run).items()
        if path.startswith("backend/tests/test_")
    )
    assert tests["total"] == written > 0
    assert tests["passed"] == tests["total"] and tests["failures"] == []
    assert tests["evidence"]["tool"] == "pytest" and tests["evidence"]["executed"] is True
    assert report["compile"]["ok"] is True
    assert report["lint"]["errors"] == 0 and report["lint"]["warnings"] <= 10
    assert coverage["measured"] is True and coverage["percent"] >= 70
    assert coverage["target_percent"] == 70
    assert 0 < coverage["lines_covered"] <= coverage["lines_total"]
    assert set(coverage["files"]) <= set(run.artifacts["RepoManifest"]["files"])
    assert report["commit"] == run.artifacts["RepoManifest"]["commit"]


def test_security_scans_ran_on_the_build(run: Run) -> None:
    pack = run.artifacts["SecurityPack"]
    assert pack["sast"]["evidence"]["tool"] == "bandit" and pack["sast"]["counts"]["high"] == 0
    assert pack["dast"]["evidence"]["executed"] is True and pack["dast"]["checks"]
    assert pack["dast"]["findings"] == []
    secrets = run.artifacts["SecretsScanReport"]
    assert secrets["scanned"] is True and secrets["count"] == 0
    bom = run.artifacts["SBOM"]
    assert bom["bomFormat"] == "CycloneDX" and bom["specVersion"] == "1.5"
    assert sorted(c["name"] for c in bom["components"]) == bom["requirements"]
    assert "fastapi" in bom["requirements"]
    scan = run.artifacts["VulnerabilityScan"]  # no --advisories: a gap, never zero CVEs
    assert scan["scanned"] is False and scan["status"] == "not_scanned" and scan["counts"] is None


def test_each_story_is_committed_and_its_acceptance_tests_run(run: Run) -> None:
    items = run.artifacts["AcceptanceTestResults"]["items"]
    stories = run.artifacts["UserStories"]["stories"]
    assert [i["story_id"] for i in items] == [s["id"] for s in stories][: len(items)]
    assert len(items) >= 5
    for item in items:
        assert item["evidence"]["tool"] == "pytest" and item["evidence"]["executed"] is True
        assert item["total"] == len(item["stories"]) == item["passed"]
        assert {row["outcome"] for row in item["stories"]} == {"passed"}
    commits = [i["commit"] for i in items]
    assert len(set(commits)) == len(commits)
    progress = run.artifacts["StoryProgress"]["items"][-1]
    assert progress["completed_story_ids"] == [i["story_id"] for i in items]
    assert progress["commit"] == commits[-1]


def test_qa_measured_the_running_service(run: Run) -> None:
    e2e = run.artifacts["TestReport"]
    assert e2e["total"] == len(e2e["cases"]) > 0 and e2e["passed"] == e2e["total"]
    stories = run.artifacts["AcceptanceTestResults"]["items"]
    assert e2e["commit"] == stories[-1]["commit"]  # qa tested the story loop's last commit
    perf = run.artifacts["PerfReport"]
    assert perf["evidence"]["executed"] is True and perf["evidence"]["timed_out"] is False
    assert perf["requests"] > 0 and perf["errors"] == 0 and perf["concurrency"] == 16
    assert perf["rps"] == pytest.approx(perf["requests"] / perf["duration_s"], rel=0.01)
    assert perf["p95_ms"] <= perf["budget"]["p95_ms"] and perf["rps"] >= perf["budget"]["rps"]
    assert perf["performance"]["endpoints"] and perf["performance"]["executed"] is True
    audit = run.artifacts["A11yAudit"]
    assert "static subset" in audit["standard"] and audit["violations"] == []
    assert "/" in [page["url"] for page in audit["pages"]]


def test_two_materialisations_give_the_same_commit(run: Run, tmp_path: Path) -> None:
    manifest = run.artifacts["RepoManifest"]

    async def rebuild() -> str:
        store = SqliteStore(run.db)
        try:
            snapshots = await build_snapshots(store, run.id, "build", 1, "IntegrationAgent")
        finally:
            await store.close()
        return build_repository(tmp_path / "elsewhere", snapshots).commit

    assert asyncio.run(rebuild()) == manifest["commit"]


def test_a_worker_without_the_workspace_rebuilds_it_from_the_store(
    run: Run, tmp_path: Path
) -> None:
    data_dir = tmp_path / "other-machine"
    repo = data_dir / "workspaces" / run.id

    async def scan() -> dict[str, object]:
        store = SqliteStore(run.db)
        try:
            ctx = _context("SBOMAgent", data_dir, run.artifacts, store=store, run_id=run.id)
            return await agents.sbom_agent(ctx)
        finally:
            await store.close()

    bom = asyncio.run(scan())
    assert has_commit(repo, run.artifacts["RepoManifest"]["commit"])
    assert bom["requirements"] == run.artifacts["SBOM"]["requirements"]


# ---------------------------------------------------------------- the workspace broken on purpose

PLANTED = '''\
"""Operations helpers (planted by the test)."""

import subprocess

AWS_ACCESS_KEY_ID = "AKIAZ7Q3R5T2LKJH4M6N"


def run(command: str) -> int:
    return subprocess.run(command, shell=True, check=False).returncode
'''


def test_a_planted_secret_and_shell_true_are_found_with_their_files(
    run: Run, tmp_path: Path
) -> None:
    artifacts = _planted_workspace(run, tmp_path, {"backend/app/ops.py": PLANTED})
    sast = asyncio.run(agents.sast_scan(_context("SASTAgent", tmp_path, artifacts)))["sast"]
    shell = [f for f in sast["findings"] if f["test_id"] == "B602"]  # type: ignore[index]
    assert shell and shell[0]["file"] == "backend/app/ops.py" and shell[0]["line"] == 9
    assert shell[0]["severity"] == "high" and sast["counts"]["high"] >= 1  # type: ignore[index]
    secrets = asyncio.run(agents.secrets_scan_agent(_context("SecretsAgent", tmp_path, artifacts)))
    assert secrets["scanned"] is True and secrets["count"] >= 1
    found = {(f["file"], f["line"]) for f in secrets["findings"]}  # type: ignore[attr-defined]
    assert ("backend/app/ops.py", 5) in found
    assert "AKIAZ7Q3R5T2LKJH4M6N" not in json.dumps([sast, secrets])  # never the value

    # the security gate fails on the secret (critical), naming it; a waiver is refused
    pack = dict(artifacts["SecurityPack"])  # type: ignore[arg-type]
    result = _gate(
        "security",
        {**artifacts, "SecurityPack": {**pack, "sast": sast}, "SecretsScanReport": secrets},
    )
    assert result["pass"] is False
    assert any("backend/app/ops.py" in reason for reason in result["reasons"])
    assert any(not issue["waivable"] for issue in result["issues"])
    assert "can never be waived" in _refused_waiver(tmp_path, result)
    # the SAST finding is in the SecurityPack the gate judged, with its file and line
    assert {(f["file"], f["line"]) for f in sast["findings"]} >= {("backend/app/ops.py", 9)}  # type: ignore[index]


def _advisory(folder: Path, package: str, version: str) -> Path:
    folder.mkdir()
    record = {
        "id": "GHSA-test-0001",
        "summary": f"{package} lets anyone in",
        "affected": [{"package": {"ecosystem": "PyPI", "name": package}, "versions": [version]}],
        "database_specific": {"severity": "CRITICAL"},
    }
    (folder / "GHSA-test-0001.json").write_text(json.dumps(record))
    return folder


def test_an_osv_advisory_naming_a_pinned_dependency_is_reported(run: Run, tmp_path: Path) -> None:
    artifacts = _planted_workspace(run, tmp_path, {})
    pins = dict(
        line.split("==")
        for line in _workspace_files(run)["backend/requirements.txt"].splitlines()
        if "==" in line
    )
    folder = _advisory(tmp_path / "osv", "starlette", pins["starlette"])
    ctx = _context("DependencyAgent", tmp_path, artifacts, options={"advisories": str(folder)})
    scan = asyncio.run(agents.dependency_scan(ctx))
    assert scan["scanned"] is True and scan["status"] == "scanned"
    assert scan["counts"]["critical"] == 1  # type: ignore[index]
    assert [(v["id"], v["package"], v["version"]) for v in scan["vulnerabilities"]] == [  # type: ignore[attr-defined]
        ("GHSA-test-0001", "starlette", pins["starlette"])
    ]
    without = asyncio.run(agents.dependency_scan(_context("DependencyAgent", tmp_path, artifacts)))
    assert without["scanned"] is False and without["status"] == "not_scanned"
    assert without["counts"] is None and without["vulnerabilities"] == []

    # the critical advisory fails the security gate; without it the gate passes (a gap)
    failed = _gate("security", {**artifacts, "VulnerabilityScan": scan})
    assert failed["pass"] is False
    assert any("GHSA-test-0001" in reason for reason in failed["reasons"])
    assert any(not issue["waivable"] for issue in failed["issues"])
    removed = _folder_without_the_advisory(tmp_path / "osv")
    clean_ctx = _context("DependencyAgent", tmp_path, artifacts, options={"advisories": removed})
    clean = asyncio.run(agents.dependency_scan(clean_ctx))
    assert clean["scanned"] is True and clean["counts"]["critical"] == 0  # type: ignore[index]
    assert _gate("security", {**artifacts, "VulnerabilityScan": clean})["pass"] is True


def _folder_without_the_advisory(folder: Path) -> str:
    (folder / "GHSA-test-0001.json").unlink()
    return str(folder)


def test_breaking_a_generated_endpoint_fails_its_test_by_name(run: Run, tmp_path: Path) -> None:
    files = _workspace_files(run)
    main = files["backend/app/main.py"]
    broken = main.replace(
        'if not storage.delete(conn, "farmers", id):', 'if storage.delete(conn, "farmers", id):'
    )
    assert broken != main
    snapshot = Snapshot(message="build attempt 1", files={**files, "backend/app/main.py": broken})
    found = agents.build_evidence(tmp_path / "broken", [snapshot])
    tests = found["BuildReport"]["tests"]
    names = [f["name"] for f in tests["failures"]]  # type: ignore[index]
    assert "tests/test_farmers.py::test_delete_farmer_then_it_is_gone" in names
    assert tests["failed"] >= 1 and tests["passed"] == tests["total"] - tests["failed"]  # type: ignore[index, operator]
    assert found["BuildReport"]["compile"]["ok"] is True  # type: ignore[index]

    # the build gate fails with the failing test named; its issue is the next attempt's
    # feedback (runtime.context: each issue's description), fixed from that feedback
    result = _gate("build", {**run.artifacts, **found})
    assert result["pass"] is False
    failing = "tests/test_farmers.py::test_delete_farmer_then_it_is_gone"
    assert any(failing in reason for reason in result["reasons"])
    tests_issue = next(i for i in result["issues"] if i["kind"] == "tests")
    assert (
        failing in tests_issue["description"] and tests_issue["fix_strategy"] == "fix-from-feedback"
    )


def test_a_hanging_tool_is_cut_by_its_time_limit(run: Run, tmp_path: Path) -> None:
    files = _workspace_files(run)
    hang = "import time\n\n\ndef test_waits_forever() -> None:\n    time.sleep(600)\n"
    snapshot = Snapshot(
        message="build attempt 1", files={**files, "backend/tests/test_hang.py": hang}
    )
    started = time.monotonic()
    found = agents.build_evidence(tmp_path / "hang", [snapshot], limit_s=10)
    assert time.monotonic() - started < 120
    tests, coverage = found["BuildReport"]["tests"], found["CoverageReport"]
    assert tests["evidence"]["timed_out"] is True and tests["evidence"]["exit_code"] is None  # type: ignore[index]
    assert tests["total"] is None and tests["passed"] is None  # type: ignore[index]
    assert coverage["measured"] is False and coverage["percent"] is None
    assert _git(tmp_path / "hang", "status", "--porcelain") == ""  # the tree stays clean
