"""ideamine.tools.osv: hand-written OSV advisories against an SBOM's pinned components."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import ideamine
from ideamine.errors import UsageError
from ideamine.tools.osv import AdvisoryError, cvss3_base_score, load_advisories, osv_scan

SBOM = {
    "bomFormat": "CycloneDX",
    "specVersion": "1.5",
    "components": [
        {"name": "PyYAML", "version": "5.3", "purl": "pkg:pypi/pyyaml@5.3"},
        {"name": "fastapi", "version": "0.100.0", "purl": "pkg:pypi/fastapi@0.100.0"},
        {"name": "left-pad", "version": "1.0.0", "purl": "pkg:npm/left-pad@1.0.0"},
        {"name": "typing_extensions", "version": "4.0.0"},
        {"name": "unversioned"},
    ],
}


def advisory(
    osv_id: str, name: str, *, versions: list[str] | None = None, events: list[dict] | None = None
) -> dict[str, object]:
    affected: dict[str, object] = {"package": {"ecosystem": "PyPI", "name": name}}
    if versions is not None:
        affected["versions"] = versions
    if events is not None:
        affected["ranges"] = [{"type": "ECOSYSTEM", "events": events}]
    return {"id": osv_id, "summary": f"{osv_id} summary", "affected": [affected]}


def folder(tmp_path: Path, *records: dict[str, object]) -> Path:
    root = tmp_path / "advisories"
    for index, record in enumerate(records):
        path = root / f"sub{index % 2}" / f"{record['id']}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(record))
    root.mkdir(exist_ok=True)
    return root


def test_without_a_source_it_is_not_scanned_never_zero() -> None:
    report = osv_scan(SBOM, None)
    assert {k: report[k] for k in ("scanned", "status", "source", "counts", "vulnerabilities")} == {
        "scanned": False,
        "status": "not_scanned",
        "source": None,
        "counts": None,
        "vulnerabilities": [],
    }
    assert str(report["reason"]).startswith("no advisory source: pass --advisories DIR")
    assert report["evidence"]["executed"] is False


def test_a_critical_advisory_naming_the_pinned_version_is_found(tmp_path: Path) -> None:
    record = advisory("GHSA-crit", "pyyaml", versions=["5.1", "5.3"])
    record["database_specific"] = {"severity": "CRITICAL"}
    report = osv_scan(SBOM, folder(tmp_path, record))
    assert report["scanned"] is True and report["status"] == "scanned"
    assert report["counts"] == {"critical": 1, "high": 0, "medium": 0, "low": 0, "unknown": 0}
    assert report["vulnerabilities"] == [
        {
            "id": "GHSA-crit",
            "package": "PyYAML",
            "version": "5.3",
            "severity": "critical",
            "summary": "GHSA-crit summary",
            "aliases": [],
            "fixed": None,
        }
    ]
    evidence = report["evidence"]
    assert (evidence["tool"], evidence["version"]) == ("osv-matcher", ideamine.__version__)
    assert evidence["executed"] is True and evidence["exit_code"] == 0


@pytest.mark.parametrize(
    ("events", "hit"),
    [
        ([{"introduced": "0"}, {"fixed": "5.4"}], True),  # fixed above the pinned version
        ([{"introduced": "0"}, {"fixed": "5.3"}], False),  # fixed at it
        ([{"introduced": "0"}, {"fixed": "5.1"}], False),  # fixed below it
        ([{"introduced": "5.3.1"}, {"fixed": "6.0"}], False),  # introduced after it
        ([{"introduced": "5.0"}, {"last_affected": "5.3"}], True),
        ([{"introduced": "5.0"}, {"last_affected": "5.2.9"}], False),
        ([{"introduced": "4.0"}, {"fixed": "4.5"}, {"introduced": "5.0"}], True),  # reopened
        ([{"fixed": "6.0"}, {"introduced": "5.2"}], True),  # events in any order
    ],
)
def test_ranges_follow_osv_semantics(tmp_path: Path, events: list[dict], hit: bool) -> None:
    report = osv_scan(SBOM, folder(tmp_path, advisory("OSV-range", "PyYAML", events=events)))
    assert bool(report["vulnerabilities"]) is hit


def test_the_next_fixed_version_is_reported(tmp_path: Path) -> None:
    events = [{"introduced": "0"}, {"fixed": "5.1"}, {"introduced": "5.2"}, {"fixed": "5.4"}]
    report = osv_scan(SBOM, folder(tmp_path, advisory("OSV-fix", "pyyaml", events=events)))
    assert report["vulnerabilities"][0]["fixed"] == "5.4"


def test_names_are_pep503_normalised_and_other_ecosystems_ignored(tmp_path: Path) -> None:
    npm = advisory("NPM-1", "left-pad", versions=["1.0.0"])
    npm["affected"][0]["package"]["ecosystem"] = "npm"
    named = advisory("OSV-name", "Typing.Extensions", versions=["4.0"])  # 4.0 == 4.0.0
    report = osv_scan(SBOM, folder(tmp_path, named, npm))
    assert [(v["id"], v["package"]) for v in report["vulnerabilities"]] == [
        ("OSV-name", "typing_extensions")
    ]
    assert report["vulnerabilities"][0]["severity"] == "unknown"
    assert report["counts"]["unknown"] == 1


def test_cvss_vectors_give_the_band_and_results_sort_by_severity(tmp_path: Path) -> None:
    high = advisory("A-high", "fastapi", versions=["0.100.0"])
    high["severity"] = [
        {"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:L/A:N"}
    ]
    critical = advisory("Z-critical", "fastapi", versions=["0.100.0"])
    critical["severity"] = [
        {"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}
    ]
    low = advisory("B-low", "pyyaml", versions=["5.3"])
    low["database_specific"] = {"severity": "LOW"}
    moderate = advisory("C-moderate", "pyyaml", versions=["5.3"])
    moderate["database_specific"] = {"severity": "MODERATE"}
    report = osv_scan(SBOM, folder(tmp_path, high, critical, low, moderate))
    ordered = [(v["id"], v["severity"]) for v in report["vulnerabilities"]]
    assert ordered == [
        ("Z-critical", "critical"),
        ("A-high", "high"),
        ("C-moderate", "medium"),
        ("B-low", "low"),
    ]
    assert report["counts"] == {"critical": 1, "high": 1, "medium": 1, "low": 1, "unknown": 0}


@pytest.mark.parametrize(
    ("vector", "score"),
    [
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", 9.8),
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N", 6.1),
        ("CVSS:3.1/AV:N/AC:L/PR:L/UI:N/S:C/C:H/I:H/A:H", 9.9),
        ("CVSS:3.0/AV:L/AC:H/PR:H/UI:R/S:U/C:L/I:N/A:N", 1.8),
        ("CVSS:3.1/AV:P/AC:H/PR:H/UI:R/S:U/C:N/I:N/A:N", 0.0),
    ],
)
def test_cvss3_base_scores_match_the_specification(vector: str, score: float) -> None:
    assert cvss3_base_score(vector) == score


def test_a_malformed_advisory_names_the_file_and_field(tmp_path: Path) -> None:
    events = [{"introduced": "0"}, {"fixed": "not a version!"}]
    root = folder(tmp_path, advisory("OSV-bad", "pyyaml", events=events))
    with pytest.raises(AdvisoryError) as caught:
        osv_scan(SBOM, root)
    error = caught.value
    assert isinstance(error, UsageError) and error.hint
    assert error.file.endswith("OSV-bad.json")
    assert error.field == "affected[0].ranges[0].events[1].fixed"
    assert "OSV-bad.json: affected[0].ranges[0].events[1].fixed: not a version" in str(error)


@pytest.mark.parametrize(
    ("content", "field"),
    [
        ({"summary": "no id"}, "id"),
        ({"id": "X", "affected": [{"versions": ["1"]}]}, "affected[0].package"),
        ({"id": "X", "affected": {"package": {}}}, "affected"),
        (
            {"id": "X", "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:Q"}]},
            "severity[0].score",
        ),
        ([{"id": "X"}, {"id": 7}], "[1].id"),
    ],
)
def test_structural_problems_name_their_field(tmp_path: Path, content: object, field: str) -> None:
    path = tmp_path / "advisories" / "record.json"
    path.parent.mkdir()
    path.write_text(json.dumps(content))
    with pytest.raises(AdvisoryError) as caught:
        load_advisories(path.parent)
    assert caught.value.field == field


def test_unreadable_json_and_a_missing_folder_are_usage_errors(tmp_path: Path) -> None:
    (tmp_path / "broken.json").write_text("{not json")
    with pytest.raises(AdvisoryError, match=r"broken\.json: not readable as JSON"):
        osv_scan(SBOM, tmp_path)
    with pytest.raises(AdvisoryError, match="no such folder"):
        osv_scan(SBOM, tmp_path / "absent")
