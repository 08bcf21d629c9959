"""The security phase's guards, over scan reports only (docs/evidence.md): cve_count,
secrets_detected and sbom_completeness.

**cve_count** reads VulnerabilityScan (the OSV matcher). ``status: not_scanned`` (no advisory
source) is an evidence gap: a passing warning with no ``vulnerabilities`` score, or a critical
failure under strict evidence. Otherwise the counts per severity (the larger of ``counts`` and
the listed ``vulnerabilities``) must stay within ``critical`` (0), ``high`` (2) and ``medium``
(10); rubric ``vulnerabilities`` scores 1 − the worst count / (limit + 1). Critical CVEs are an
issue no one may waive.

**secrets_detected** reads SecretsScanReport (detect-secrets): at most ``max`` (0) findings;
rubric ``secrets`` scores 1 − count / (max + 1). Every finding is critical and not waivable.

**sbom_completeness** reads SBOM (CycloneDX): the share of the pinned ``requirements`` that
appear as components with a version and a purl must reach ``min_score`` (0.95); rubric ``sbom``
scores that share.

Each fails with "no evidence" (severity high) when its report is missing or was not produced by
a scan that ran.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ideamine.knowledge.guards.base import GuardInput, GuardReport, Issue, Severity
from ideamine.knowledge.guards.evidence import evidence_gap, no_evidence, unmeasured
from ideamine.knowledge.guards.reading import is_number, records
from ideamine.knowledge.guards.settings import COUNT, NUMBER, settings
from ideamine.knowledge.guards.verdict import fraction, report, shown, worst

__all__ = ["check_cve_count", "check_sbom_completeness", "check_secrets_detected"]

CVE_KEYS = {"critical": COUNT, "high": COUNT, "medium": COUNT}
SECRET_KEYS = {"max": COUNT}
SBOM_KEYS = {"min_score": NUMBER}
CVE_LIMITS = {"critical": 0, "high": 2, "medium": 10}
_LEVEL_SEVERITY: Mapping[str, Severity] = {
    "critical": "critical",
    "high": "high",
    "medium": "medium",
}


def check_cve_count(given: GuardInput) -> GuardReport:
    """The cve_count guard."""
    cfg = settings("cve_count", given.config, CVE_KEYS)
    limits = {level: cfg.count(level, default) for level, default in CVE_LIMITS.items()}
    scan = given.artifacts.get("VulnerabilityScan")
    if isinstance(scan, Mapping) and scan.get("status") == "not_scanned":
        why = scan.get("reason") or "no advisory source was available"
        return evidence_gap("cve_count", given, f"VulnerabilityScan was not scanned: {why}")
    scan = _scanned(given, "cve_count", "vulnerabilities", "VulnerabilityScan")
    return scan if isinstance(scan, GuardReport) else _cve_report(scan, limits)


def _cve_report(scan: Mapping[str, Any], limits: Mapping[str, int]) -> GuardReport:
    counts = _severity_counts(scan)
    over = [level for level, limit in limits.items() if counts[level] > limit]
    score = max(0.0, 1.0 - max(counts[lv] / (lim + 1) for lv, lim in limits.items()))
    summary = ", ".join(f"{counts[lv]} {lv} (limit {lim})" for lv, lim in limits.items())
    issues = tuple(_cve_issue(scan, level, counts[level], limits[level]) for level in over)
    severity = worst(_LEVEL_SEVERITY[level] for level in over) if over else "low"
    return GuardReport(
        type="cve_count",
        passed=not over,
        score=score,
        reasons=(
            f"vulnerabilities: {summary}; {counts['low']} low",
            *(i.description for i in issues),
        ),
        severity=severity,
        scores={"vulnerabilities": score},
        issues=issues,
    )


def _severity_counts(scan: Mapping[str, Any]) -> dict[str, int]:
    found = scan.get("counts")
    stated: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
    listed = [str(v.get("severity", "")).lower() for v in records(scan, "vulnerabilities")]
    return {
        level: max(int(stated[level]) if is_number(stated.get(level)) else 0, listed.count(level))
        for level in ("critical", "high", "medium", "low")
    }


def _cve_issue(scan: Mapping[str, Any], level: str, count: int, limit: int) -> Issue:
    named = [
        f"{v.get('id', '?')} in {v.get('package', '?')} {v.get('version', '')}".strip()
        for v in records(scan, "vulnerabilities")
        if str(v.get("severity", "")).lower() == level
    ]
    text = f"{count} {level} vulnerabilities, more than the limit {limit}"
    return Issue(
        kind="security",
        severity=_LEVEL_SEVERITY[level],
        description=f"{text}: {shown(named)}" if named else text,
        waivable=level != "critical",
    )


def _scanned(given: GuardInput, type_: str, rubric: str, artifact: str) -> Any:
    """The measured scan report, or the no-evidence verdict when it is not one."""
    scan = given.artifacts.get(artifact)
    problem = unmeasured(scan, artifact)
    if problem is None and isinstance(scan, Mapping) and scan.get("scanned") is False:
        problem = f"{artifact} says scanned is false{_reason(scan)}"
    return no_evidence(type_, (rubric,), [problem]) if problem else scan


def _reason(scan: Mapping[str, Any]) -> str:
    return f" ({scan['reason']})" if isinstance(scan.get("reason"), str) else ""


def check_secrets_detected(given: GuardInput) -> GuardReport:
    """The secrets_detected guard."""
    cfg = settings("secrets_detected", given.config, SECRET_KEYS)
    limit = cfg.count("max", 0)
    scan = _scanned(given, "secrets_detected", "secrets", "SecretsScanReport")
    if isinstance(scan, GuardReport):
        return scan
    findings = [
        f"{f.get('file', '?')}:{f.get('line', '?')} ({f.get('type', 'secret')})"
        for f in records(scan, "findings")
    ]
    count = max(len(findings), int(scan["count"]) if is_number(scan.get("count")) else 0)
    score = max(0.0, 1.0 - count / (limit + 1))
    head = f"{count} secret(s) found (limit {limit})" + (f": {shown(findings)}" if findings else "")
    return report(
        "secrets_detected",
        passed=count <= limit,
        score=score,
        reasons=[head],
        scores={"secrets": score},
        kind="security",
        severity="critical",  # any secret in the code: never waivable (SPEC §5)
        waivable=False,
    )


def check_sbom_completeness(given: GuardInput) -> GuardReport:
    """The sbom_completeness guard."""
    cfg = settings("sbom_completeness", given.config, SBOM_KEYS)
    minimum = cfg.number("min_score", 0.95)
    sbom = _scanned(given, "sbom_completeness", "sbom", "SBOM")
    if isinstance(sbom, GuardReport):
        return sbom
    if not isinstance(sbom.get("requirements"), list):
        reason = "SBOM has no requirements list to check its components against"
        return no_evidence("sbom_completeness", ("sbom",), [reason])
    required = [_pep503(str(r)) for r in sbom["requirements"]]
    complete = {
        _pep503(str(c.get("name", "")))
        for c in records(sbom, "components")
        if c.get("version") and c.get("purl")
    }
    missing = [r for r in required if r not in complete]
    share = fraction(len(required) - len(missing), len(required)) if required else 1.0
    cyclonedx = sbom.get("bomFormat") == "CycloneDX"
    reasons = [
        f"SBOM covers {len(required) - len(missing)} of {len(required)} pinned requirements "
        f"with version and purl ({share:.2f}, minimum {minimum:.2f})",
        *([f"missing or without version/purl: {shown(missing)}"] if missing else []),
        *([] if cyclonedx else ["SBOM is not a CycloneDX document"]),
    ]
    return report(
        "sbom_completeness",
        passed=share >= minimum - 1e-9 and cyclonedx,
        score=share,
        reasons=reasons,
        scores={"sbom": share},
        kind="security",
        severity="medium",
    )


def _pep503(requirement: str) -> str:
    """The normalised project name of ``name==1.2`` or ``Name_x``."""
    name = re.split(r"[<>=!~;\[ @]", requirement.strip(), maxsplit=1)[0]
    return re.sub(r"[-_.]+", "-", name).lower()
