"""Release dossiers end to end: the real CLI on real offline runs, checked against the rows.

Covers issue 7's proof: every section against the store, the HTML parsed strictly with no
unescaped artifact text, the PDF's text (sections, page numbers), the JSON against the
published schema, signature verification, reuse of an unchanged run's dossier, version
derivation across runs of one project, and the partial dossier of a failed run.
"""

from __future__ import annotations

import asyncio
import io
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import html5lib
import pytest
import yaml
from pypdf import PdfReader
from tests.acceptance.conftest import cli_env, ideamine, only_run_id, read_events
from tests.support.configs import write_shipped_phases

from ideamine.config.loader import default_config_dir
from ideamine.dossier.schema import schema_errors
from ideamine.stores.dossiers import DossierStore
from ideamine.stores.records import ArtifactRecord
from ideamine.stores.sqlite import SqliteStore

IDEA = "A marketplace where local farmers sell produce to nearby restaurants"
SECTION_TITLES = (
    "Summary",
    "Product",
    "Code",
    "Security",
    "Quality",
    "Deployment",
    "Gate history",
    "Timeline and cost",
    "Assumptions and open questions",
    "Evidence gaps",
    "Provenance",
    "Version and signature",
)


def _dossier(folder: Path, *args: str) -> Any:
    done = ideamine("dossier", *args, cwd=folder)
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def _json(folder: Path, run_id: str, name: str = "d.json") -> dict[str, Any]:
    _dossier(folder, run_id, "--format", "json", "-o", name)
    document: dict[str, Any] = json.loads((folder / name).read_text())
    return document


def _rows(db: Path, run_id: str) -> dict[str, Any]:
    async def load() -> dict[str, Any]:
        store = SqliteStore(db)
        try:
            latest: dict[str, ArtifactRecord] = {}
            for record in await store.artifacts(run_id):
                if record.type not in latest or record.version > latest[record.type].version:
                    latest[record.type] = record
            _, phases, _ = await store.run_rows(run_id)
            return {
                "artifacts": latest,
                "blobs": {t: await store.blob(r.content_hash) for t, r in latest.items()},
                "calls": await store.model_calls(run_id),
                "phases": phases,
                "dossier": await DossierStore(store).latest_for_run(run_id),
            }
        finally:
            await store.close()

    return asyncio.run(load())


@pytest.fixture(scope="module")
def full(farmers_run: tuple[Path, str]) -> tuple[Path, str, dict[str, Any]]:
    """README command 1's run (shared) and its dossier as JSON."""
    folder, run_id = farmers_run
    return folder, run_id, _json(folder, run_id)


def _item(document: dict[str, Any], section: str, key: str) -> dict[str, Any]:
    for part in document["sections"]:
        if part["key"] == section:
            for item in part["items"]:
                if item["key"] == key:
                    return dict(item)
    raise AssertionError(f"no item {section}/{key}")


def test_json_validates_against_the_published_schema(
    full: tuple[Path, str, dict[str, Any]],
) -> None:
    _, _, document = full
    assert schema_errors(document) == []
    assert [s["key"] for s in document["sections"]] == [
        "product",
        "code",
        "security",
        "quality",
        "deployment",
    ]


def test_every_section_matches_the_runs_rows(full: tuple[Path, str, dict[str, Any]]) -> None:
    folder, run_id, document = full
    rows = _rows(folder / "ideamine.db", run_id)
    latest, blobs = rows["artifacts"], rows["blobs"]
    for section, key, artifact in (
        ("product", "prd", "PRD"),
        ("product", "rtm", "RTM"),
        ("product", "openapi", "OpenAPI"),
        ("security", "sbom", "SBOM"),
        ("quality", "release_notes", "ReleaseNotes"),
        ("deployment", "rollback_plan", "RollbackPlan"),
    ):
        item = _item(document, section, key)
        assert item["content"][artifact] == blobs[artifact]
        ids = {a["type"]: (a["id"], a["sha256"]) for a in item["artifacts"]}
        assert ids[artifact] == (latest[artifact].id, latest[artifact].content_hash)
    prd = _item(document, "product", "prd")
    assert prd["status"] == "present" and prd["reason"] is None
    requirements = [row[0] for row in prd["table"]["rows"]]
    assert requirements == [r["id"] for r in blobs["PRD"]["requirements"]]
    paths = {row[1] for row in _item(document, "product", "openapi")["table"]["rows"]}
    assert paths == set(blobs["OpenAPI"]["paths"])
    assert document["run"]["id"] == run_id and document["run"]["status"] == "completed"
    assert document["status"]["partial"] is False


def test_measured_evidence_is_shown_as_measured(full: tuple[Path, str, dict[str, Any]]) -> None:
    """The code section quotes the workspace, commit, test counts and coverage exactly as
    the tools' reports hold them."""
    folder, run_id, document = full
    blobs = _rows(folder / "ideamine.db", run_id)["blobs"]
    manifest, coverage_report = blobs["RepoManifest"], blobs["CoverageReport"]
    repository = _item(document, "code", "repository")
    assert repository["status"] == "present"
    assert {"label": "Workspace path", "value": manifest["path"]} in repository["facts"]
    assert Path(manifest["path"]).is_dir()
    commit = _item(document, "code", "commit")
    assert commit["status"] == "present"
    assert {"label": "Commit SHA", "value": manifest["commit"]} in commit["facts"]
    coverage = _item(document, "code", "coverage")
    assert coverage["status"] == "present"
    shown = f"{coverage_report['percent']} %"
    assert {"label": "Measured coverage", "value": shown} in coverage["facts"]
    tests = blobs["BuildReport"]["tests"]
    counts = ", ".join(
        f"{tests[k]} {k}" for k in ("total", "passed", "failed", "errors", "skipped")
    )
    item = _item(document, "code", "tests")
    assert item["status"] == "present"
    assert {"label": "Unit and API tests (pytest)", "value": counts} in item["facts"]
    assert item["table"]["rows"][0][2:5] == [str(tests["total"]), str(tests["passed"]), "0"]


def test_unscanned_and_unmeasured_evidence_is_a_gap_never_a_result(
    full: tuple[Path, str, dict[str, Any]],
) -> None:
    _, _, document = full
    scans = _item(document, "security", "scans")  # no --advisories: nothing to match against
    assert scans["status"] == "gap" and "no advisory source" in scans["reason"]
    assert any(f["value"].startswith("not scanned") for f in scans["facts"])
    gaps = {(g["artifact"], g["path"]) for g in document["evidence_gaps"]}
    assert ("VulnerabilityScan", "/") in gaps and ("CompatibilityMatrix", "/") in gaps
    assert ("CoverageReport", "/") not in gaps and ("TestReport", "/") not in gaps
    completeness = document["completeness"]
    assert (
        completeness["present"] + completeness["gaps"] + completeness["missing"]
        == (completeness["total"])
    )
    assert completeness["percent"] == round(
        100 * completeness["present"] / completeness["total"], 1
    )


def test_gates_costs_timeline_provenance_and_assumptions(
    full: tuple[Path, str, dict[str, Any]],
) -> None:
    folder, run_id, document = full
    rows = _rows(folder / "ideamine.db", run_id)
    gates = document["gates"]
    assert gates["judged"] is True and gates["note"] is None
    assert all(a["judged"] and 0 <= a["score"] <= 1 for a in gates["attempts"])
    assert len(gates["attempts"]) == len(rows["phases"])
    passed = {a["phase"] for a in gates["attempts"] if a["passed"]}
    assert passed == {p["phase"] for p in document["phases"]}  # every phase passed its gate
    calls = rows["calls"]
    total = document["costs"]["total"]
    assert total["calls"] == len(calls)
    assert total["tokens"] == sum(c["tokens_in"] + c["tokens_out"] for c in calls)
    by_phase = {p["phase"]: p for p in document["costs"]["by_phase"]}
    for phase in {c["phase"] for c in calls}:
        assert by_phase[phase]["calls"] == sum(1 for c in calls if c["phase"] == phase)
    provenance = {p["artifact"]: p for p in document["provenance"]}
    assert set(provenance) == set(rows["artifacts"])
    for artifact_type, record in rows["artifacts"].items():
        entry = provenance[artifact_type]
        assert entry["id"] == record.id and entry["sha256"] == record.content_hash
        assert entry["agents"] == record.provenance["agents"]
        assert entry["prompt_hashes"] == record.provenance["prompt_hashes"]
        assert [i["id"] for i in entry["inputs"]] == record.provenance["input_artifact_ids"]
        assert all(i["type"] for i in entry["inputs"])
    spec = rows["blobs"]["IdeaSpec"]
    assert [a["id"] for a in document["assumptions"]["initial"]] == [
        a["id"] for a in spec["assumptions"]
    ]
    questions = {q["question"] for q in document["open_questions"]}
    assert set(rows["blobs"]["PRD"]["open_questions"]) <= questions


def test_stored_row_signature_event_and_reuse(full: tuple[Path, str, dict[str, Any]]) -> None:
    folder, run_id, document = full
    record = _rows(folder / "ideamine.db", run_id)["dossier"]
    assert record is not None and record.sha256 == document["signature"]["value"]
    assert record.version == document["version"]["number"] == "0.1.0"
    again = _dossier(folder, run_id, "--format", "json", "-o", "again.json")
    assert "reused" in again.stderr
    assert (folder / "again.json").read_text() == (folder / "d.json").read_text()
    compiled = [
        e for e in read_events(folder / "ideamine.db", run_id) if e.type == "dossier.compiled"
    ]
    assert len(compiled) == 1 and compiled[0].kind == "signature"
    assert compiled[0].payload["sha256"] == record.sha256
    assert ideamine("verify", run_id, cwd=folder).returncode == 0


def test_verify_accepts_the_export_and_rejects_a_change(
    full: tuple[Path, str, dict[str, Any]],
) -> None:
    folder, _, document = full
    assert ideamine("dossier", "verify", "d.json", cwd=folder).returncode == 0
    changed = dict(document, title="Someone else's product")
    (folder / "tampered.json").write_text(json.dumps(changed))
    result = ideamine("dossier", "verify", "tampered.json", cwd=folder)
    assert result.returncode == 1
    assert "signature mismatch" in result.stderr
    assert ideamine("dossier", "verify", "missing.json", cwd=folder).returncode == 2


def test_html_is_valid_offline_and_navigable(full: tuple[Path, str, dict[str, Any]]) -> None:
    folder, run_id, _ = full
    _dossier(folder, run_id, "--format", "html", "-o", "d.html")
    text = (folder / "d.html").read_text()
    tree = html5lib.HTMLParser(strict=True, namespaceHTMLElements=False).parse(text)
    links = [e.get("href") for e in tree.iter() if e.get("href") is not None]
    sources = [e.get("src") for e in tree.iter() if e.get("src") is not None]
    assert sources == [] and links and all(link.startswith("#") for link in links)
    ids = {e.get("id") for e in tree.iter() if e.get("id")}
    assert {link[1:] for link in links} <= ids
    assert not re.search(r"<(script|link|img|iframe)\b", text, re.IGNORECASE)
    assert text.count("<svg") == 2  # the phase Gantt and cost by phase


def test_pdf_has_every_section_a_contents_page_and_page_numbers(
    full: tuple[Path, str, dict[str, Any]],
) -> None:
    folder, run_id, _ = full
    _dossier(folder, run_id, "--format", "pdf", "-o", "d.pdf")
    reader = PdfReader(io.BytesIO((folder / "d.pdf").read_bytes()))
    pages = [page.extract_text() for page in reader.pages]
    text = "\n".join(pages)
    assert "Contents" in pages[0]
    for title in SECTION_TITLES:
        assert title in text, title
        assert re.search(rf"{re.escape(title)}\s*\.+\s*\d+", pages[0]), (
            f"no page number for {title}"
        )
    for number, page in enumerate(pages, start=1):
        assert f"Page {number} of {len(pages)}" in page


def test_markdown_has_every_section(full: tuple[Path, str, dict[str, Any]]) -> None:
    folder, run_id, document = full
    _dossier(folder, run_id, "--format", "md", "-o", "d.md")
    text = (folder / "d.md").read_text()
    for title in SECTION_TITLES:
        assert f"## {title}" in text
    assert document["signature"]["value"] in text


def test_an_export_to_stdout_is_the_export(full: tuple[Path, str, dict[str, Any]]) -> None:
    """``-o -`` writes text (Markdown) and bytes (PDF) to stdout, unchanged."""
    folder, run_id, _ = full
    _dossier(folder, run_id, "--format", "md", "-o", "s.md")
    written: dict[str, bytes] = {}
    for fmt in ("md", "pdf"):
        done = subprocess.run(
            [sys.executable, "-m", "ideamine", "dossier", run_id, "--format", fmt, "-o", "-"],
            cwd=folder,
            env=cli_env(),
            capture_output=True,
            timeout=600,
            check=False,
        )
        assert done.returncode == 0, done.stderr.decode(errors="replace")
        written[fmt] = done.stdout
    assert written["md"] == (folder / "s.md").read_bytes()
    pages = PdfReader(io.BytesIO(written["pdf"])).pages
    assert written["pdf"].startswith(b"%PDF-") and "Contents" in pages[0].extract_text()


def test_summary_prints_completeness_and_missing_items(
    full: tuple[Path, str, dict[str, Any]],
) -> None:
    folder, run_id, document = full
    done = _dossier(folder, run_id, "--summary")
    assert f"{document['completeness']['percent']} %" in done.stdout
    assert "security/scans" in done.stdout  # no advisories given: an evidence gap
    assert "gates/gate_history" not in done.stdout  # every phase was judged


def test_artifact_text_is_escaped_everywhere(tmp_path: Path) -> None:
    idea = "<script>alert(1)</script> A marketplace where farmers sell produce to restaurants"
    design = str(_design_only(tmp_path / "design"))  # the idea's text reaches every section
    assert ideamine("run", "--quiet", "--config", design, idea, cwd=tmp_path).returncode == 0
    run_id = only_run_id(tmp_path)
    _dossier(tmp_path, run_id, "--format", "html", "-o", "x.html")
    _dossier(tmp_path, run_id, "--format", "md", "-o", "x.md")
    html = (tmp_path / "x.html").read_text()
    html5lib.HTMLParser(strict=True).parse(html)
    assert "<script" not in html.lower() and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script" not in (tmp_path / "x.md").read_text().lower()


# -- versions ------------------------------------------------------------------------------


DESIGN = ["intake", "ideation", "critique", "prd", "bizdev", "architecture"]


def _design_only(root: Path) -> Path:
    """A config folder running the shipped phases up to architecture: everything a version is
    derived from (stories, the OpenAPI contract, the data model), without the build's tools."""
    return write_shipped_phases(root, DESIGN)


def _overlay(root: Path, agent: str, old: str, new: str) -> Path:
    """A design-only config folder overriding one shipped agent file with ``old`` replaced
    by ``new``."""
    text = (default_config_dir() / "agents" / f"{agent}.yaml").read_text()
    assert old in text, f"{agent}: {old!r} not found"
    (root / "agents").mkdir(parents=True)
    (root / "agents" / f"{agent}.yaml").write_text(text.replace(old, new, 1))
    return _design_only(root)


NEW_PATH = """
  paths:
    /stats:
      get:
        operationId: getStats
        summary: "Usage statistics"
        responses:
          "200": {description: "Counts", content: {application/json: {schema: {type: object}}}}
    /health:"""


def _release(folder: Path, project: str, config: Path | None = None) -> dict[str, Any]:
    extra = ["--config", str(config)] if config else []
    done = ideamine("run", "--quiet", "--project", project, *extra, IDEA, cwd=folder)
    assert done.returncode == 0, done.stdout + done.stderr
    listed = json.loads(ideamine("runs", "--json", cwd=folder).stdout)
    return _json(folder, str(listed[0]["id"]), f"{listed[0]['id']}.json")


def test_versions_follow_each_rule_across_runs_of_a_project(tmp_path: Path) -> None:
    design = _design_only(tmp_path / "design")
    first = _release(tmp_path, "farm", design)
    assert first["version"]["number"] == "0.1.0" and first["version"]["bump"] == "initial"

    same = _release(tmp_path, "farm", design)
    assert (same["version"]["number"], same["version"]["bump"]) == ("0.1.1", "patch")

    added = _overlay(tmp_path / "added", "APIDesignAgent", "\n  paths:\n    /health:", NEW_PATH)
    minor = _release(tmp_path, "farm", added)
    assert (minor["version"]["number"], minor["version"]["bump"]) == ("0.2.0", "minor")
    assert "new endpoint: GET /stats" in minor["version"]["reasons"]

    removed = _overlay(
        tmp_path / "removed", "APIDesignAgent", "{% for e in ents %}", "{% for e in ents[1:] %}"
    )
    major = _release(tmp_path, "farm", removed)
    assert (major["version"]["number"], major["version"]["bump"]) == ("1.0.0", "major")
    assert any(r.startswith("path removed: /") for r in major["version"]["reasons"])

    required = _overlay(
        tmp_path / "required", "APIDesignAgent", "required: [detail]", "required: [detail, code]"
    )
    changed = _release(tmp_path, "farm", required)
    assert (changed["version"]["number"], changed["version"]["bump"]) == ("2.0.0", "major")
    assert "required fields of schema Error changed (+code)" in changed["version"]["reasons"]

    other = _release(tmp_path, "another-product", design)
    assert other["version"]["number"] == "0.1.0"


def test_version_override(tmp_path: Path) -> None:
    design = str(_design_only(tmp_path / "design"))
    assert ideamine("run", "--quiet", "--config", design, IDEA, cwd=tmp_path).returncode == 0
    run_id = only_run_id(tmp_path)
    document = _json(tmp_path, run_id)
    assert document["project"] == "local-farmers-marketplace"  # the IdeaSpec title's slug
    _dossier(tmp_path, run_id, "--version", "3.1.4", "-o", "v.json")
    pinned = json.loads((tmp_path / "v.json").read_text())
    assert pinned["version"]["number"] == "3.1.4" and pinned["version"]["bump"] == "override"
    bad = ideamine("dossier", run_id, "--version", "three", cwd=tmp_path)
    assert bad.returncode == 2 and "semantic version" in bad.stderr


# -- partial dossiers ----------------------------------------------------------------------


def test_a_failed_run_compiles_a_partial_dossier(tmp_path: Path) -> None:
    config = tmp_path / "broken"
    (config / "agents").mkdir(parents=True)
    agent = yaml.safe_load((default_config_dir() / "agents" / "SBOMAgent.yaml").read_text())
    for key in ("prompt", "offline"):
        agent.pop(key, None)
    agent["callable"] = "tests.support.agents:wrong_shape"
    agent["output_schema"] = {"type": "object", "required": ["value"]}
    (config / "agents" / "SBOMAgent.yaml").write_text(yaml.safe_dump(agent))
    done = ideamine("run", "--quiet", "--config", str(config), IDEA, cwd=tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    run_id = only_run_id(tmp_path)
    document = _json(tmp_path, run_id)
    assert schema_errors(document) == []
    status = document["status"]
    assert status["partial"] is True and "stopped early" in status["note"]
    failed = {p["phase"]: p["reason"] for p in status["phases_not_passed"]}
    assert failed["security"].startswith("failed in attempt 1")
    assert "never started" in failed["release"]
    sbom = _item(document, "security", "sbom")
    assert sbom["status"] == "missing" and "phase security failed" in sbom["reason"]
    rollback = _item(document, "deployment", "rollback_plan")
    assert rollback["status"] == "missing" and "never started" in rollback["reason"]
    assert _item(document, "product", "prd")["status"] == "present"
    summary = _dossier(tmp_path, run_id, "--summary").stdout
    assert "partial" in summary and "missing" in summary
