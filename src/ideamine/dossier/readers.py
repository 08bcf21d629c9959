"""Readable summaries of artifacts: a few labelled facts and at most one table per item.

Readers only quote what an artifact says. A number that was not measured is shown as
"not measured", never as a value; every reader tolerates missing or oddly shaped fields.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

__all__ = [
    "Contents",
    "Details",
    "accessibility",
    "canary",
    "commit",
    "coverage",
    "deployment_plan",
    "fact",
    "make_table",
    "openapi",
    "performance",
    "prd",
    "release_notes",
    "repository",
    "rollback",
    "rtm",
    "sbom",
    "scans",
    "security_pack",
    "tests",
]

Contents = Mapping[str, Mapping[str, object]]
NOT_MEASURED = "not measured"


@dataclass(frozen=True, slots=True, kw_only=True)
class Details:
    facts: list[dict[str, object]]
    table: dict[str, object] | None = None


def fact(label: str, value: object) -> dict[str, object]:
    if isinstance(value, list | tuple):
        return {"label": label, "value": [_text(item) for item in value]}
    return {"label": label, "value": _text(value)}


def _text(value: object) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, Mapping):
        return "; ".join(f"{k}: {_text(v)}" for k, v in value.items())
    if isinstance(value, list | tuple):
        return ", ".join(_text(item) for item in value)
    return str(value)


def make_table(columns: Sequence[str], rows: Sequence[Sequence[object]]) -> dict[str, object]:
    return {"columns": list(columns), "rows": [[_text(cell) for cell in row] for row in rows]}


def _list(value: object) -> list[Mapping[str, object]]:
    return [item for item in value if isinstance(item, Mapping)] if isinstance(value, list) else []


def _map(value: object) -> Mapping[str, object]:
    return value if isinstance(value, Mapping) else {}


def _label(key: str) -> str:
    text = key.replace("_", " ").capitalize()
    return text.replace("Nfrs", "NFRs").replace("nfrs", "NFRs")


def _measured(node: Mapping[str, object], flag: str, value: object) -> object:
    return value if node.get(flag) is True else NOT_MEASURED


def prd(c: Contents) -> Details:
    doc = c["PRD"]
    rows = [
        (r.get("id"), r.get("title"), r.get("priority"), r.get("story_ids"))
        for r in _list(doc.get("requirements"))
    ]
    return Details(
        facts=[
            fact("Title", doc.get("title")),
            fact("Overview", doc.get("overview")),
            fact("Goals", doc.get("goals") or []),
            fact("Release criteria", doc.get("release_criteria") or []),
        ],
        table=make_table(("Requirement", "Title", "Priority", "Stories"), rows),
    )


def rtm(c: Contents) -> Details:
    doc = c["RTM"]
    rows = [
        (r.get("story_id"), r.get("requirement_ids"), r.get("nfr_ids"), r.get("test_ids"))
        for r in _list(doc.get("traceability_matrix"))
    ]
    return Details(
        facts=[fact(_label(key), value) for key, value in _map(doc.get("coverage")).items()],
        table=make_table(("Story", "Requirements", "NFRs", "Tests"), rows),
    )


def openapi(c: Contents) -> Details:
    doc = c["OpenAPI"]
    info = _map(doc.get("info"))
    rows = [
        (method.upper(), path, _map(operation).get("summary"))
        for path, item in _map(doc.get("paths")).items()
        for method, operation in _map(item).items()
        if method in ("get", "put", "post", "delete", "patch", "head", "options", "trace")
    ]
    return Details(
        facts=[
            fact("Title", info.get("title")),
            fact("API version", info.get("version")),
            fact("OpenAPI", doc.get("openapi")),
            fact("Operations", len(rows)),
        ],
        table=make_table(("Method", "Path", "Summary"), rows),
    )


def repository(c: Contents) -> Details:
    doc = c["RepoManifest"]
    repo = _map(doc.get("repository"))
    files = _list(_map(c.get("SourceCode")).get("files"))
    return Details(
        facts=[
            fact("Name", repo.get("name")),
            fact("Workspace path", doc.get("workspace") or "none created"),
            fact("Status", doc.get("status")),
            fact("Planned files", len(_list(doc.get("files")))),
            fact("Source files written by agents", len(files)),
            fact("Test command", _map(doc.get("commands")).get("test")),
        ],
        table=make_table(
            ("Path", "Owner", "Purpose"),
            [(f.get("path"), f.get("owner"), f.get("purpose")) for f in _list(doc.get("files"))],
        ),
    )


def commit(c: Contents) -> Details:
    doc = c["RepoManifest"]
    return Details(facts=[fact("Commit SHA", doc.get("commit") or "none recorded")])


def tests(c: Contents) -> Details:
    report = c["TestReport"]
    acceptance = _list(_map(c.get("AcceptanceTestResults")).get("items"))
    executed = [a for a in acceptance if a.get("executed") is True]
    return Details(
        facts=[
            fact("End-to-end tool", report.get("tool")),
            fact("End-to-end cases planned", report.get("planned_cases")),
            fact("End-to-end pass rate", _measured(report, "executed", report.get("pass_rate"))),
            fact("Acceptance test files", len(acceptance)),
            fact("Acceptance tests executed", f"{len(executed)} of {len(acceptance)}"),
            fact("Unit test cases written", len(_list(_map(c.get("TestSuite")).get("cases")))),
        ],
        table=make_table(
            ("Suite", "Flow", "Persona", "Stories"),
            [
                (s.get("id"), s.get("flow_id"), s.get("persona"), s.get("story_ids"))
                for s in _list(report.get("suites"))
            ],
        ),
    )


def coverage(c: Contents) -> Details:
    doc = c["CoverageReport"]
    return Details(
        facts=[
            fact("Measured coverage", _measured(doc, "measured", f"{doc.get('percent')} %")),
            fact("Target", f"{doc.get('target_percent')} %"),
            fact("Tool", doc.get("tool")),
            fact("Scope", doc.get("scope") or []),
        ]
    )


def security_pack(c: Contents) -> Details:
    doc = c["SecurityPack"]
    sast, dast = _map(doc.get("sast")), _map(doc.get("dast"))
    checks = [("SAST", k) for k in _list(sast.get("planned_checks"))]
    checks += [("DAST", k) for k in _list(dast.get("planned_checks"))]
    return Details(
        facts=[
            fact("SAST", sast.get("status")),
            fact("SAST findings", _measured(sast, "scanned", sast.get("findings"))),
            fact("DAST", dast.get("status")),
            fact("DAST alerts", _measured(dast, "executed", dast.get("alerts"))),
        ],
        table=make_table(
            ("Kind", "Check", "Control"),
            [(kind, k.get("check"), k.get("control_id")) for kind, k in checks],
        ),
    )


def sbom(c: Contents) -> Details:
    doc = c["SBOM"]
    components = _list(doc.get("components"))
    return Details(
        facts=[
            fact("Format", f"{doc.get('bomFormat')} {doc.get('specVersion')}"),
            fact("Components", len(components)),
        ],
        table=make_table(
            ("Name", "Version", "Scope", "Package URL"),
            [(p.get("name"), p.get("version"), p.get("scope"), p.get("purl")) for p in components],
        ),
    )


def scans(c: Contents) -> Details:
    vulns, secrets = c["VulnerabilityScan"], _map(c.get("SecretsScanReport"))
    return Details(
        facts=[
            fact("Dependency scan", vulns.get("status")),
            fact("Vulnerabilities", _measured(vulns, "scanned", vulns.get("counts"))),
            fact("Policy (max findings)", vulns.get("policy")),
            fact("Secrets scan", secrets.get("status") or "missing"),
            fact("Secrets found", _measured(secrets, "scanned", secrets.get("secrets_found"))),
        ]
    )


def performance(c: Contents) -> Details:
    doc = c["PerfReport"]
    perf, load = _map(doc.get("performance")), _map(doc.get("load"))
    return Details(
        facts=[
            fact("Load target", f"{load.get('target_rps')} requests per second"),
            fact("Load measurements", _measured(load, "executed", load.get("measurements"))),
            fact("Latency measurements", _measured(perf, "executed", perf.get("measurements"))),
            fact("Load tool", load.get("tool")),
        ],
        table=make_table(
            ("Operation", "Target p95 (ms)", "Data"),
            [
                (s.get("operation"), s.get("target_p95_ms"), s.get("data_setup"))
                for s in _list(perf.get("scenarios"))
            ],
        ),
    )


def accessibility(c: Contents) -> Details:
    doc = c["A11yAudit"]
    return Details(
        facts=[
            fact("Standard", doc.get("standard")),
            fact("Violations", _measured(doc, "executed", doc.get("violations"))),
            fact("Allowed violations", doc.get("max_violations")),
            fact("Tools", doc.get("tools") or []),
        ],
        table=make_table(
            ("Criterion", "How it is checked"),
            [(k.get("criterion"), k.get("how")) for k in _list(doc.get("checks"))],
        ),
    )


def release_notes(c: Contents) -> Details:
    doc = c["ReleaseNotes"]
    return Details(
        facts=[
            fact("Title", doc.get("title")),
            fact("Summary", doc.get("summary")),
            fact("Highlights", doc.get("highlights") or []),
            fact("Known limitations", doc.get("known_limitations") or []),
        ]
    )


def deployment_plan(c: Contents) -> Details:
    doc = c["DeploymentPlan"]
    return Details(
        facts=[
            fact("Strategy", doc.get("strategy")),
            fact("Environments", doc.get("environments") or []),
            fact("Prerequisites", doc.get("prerequisites") or []),
            fact("Steps", doc.get("steps") or []),
            fact("Health checks", doc.get("health_checks") or []),
        ]
    )


def rollback(c: Contents) -> Details:
    doc = c["RollbackPlan"]
    return Details(
        facts=[
            fact("Owner", doc.get("owner")),
            fact("Time limit", f"{doc.get('max_minutes')} minutes"),
            fact("Triggers", doc.get("triggers") or []),
            fact("Steps", doc.get("steps") or []),
            fact("Data", doc.get("data")),
        ]
    )


def canary(c: Contents) -> Details:
    rules = _map(c["DeploymentPlan"].get("canary"))
    results = _map(c.get("CanaryResults"))
    return Details(
        facts=[
            fact("Traffic", f"{rules.get('traffic_percent')} %"),
            fact("Duration", f"{rules.get('duration_minutes')} minutes"),
            fact("Promote when", rules.get("promote_when")),
            fact("Abort when", rules.get("abort_when")),
            fact("Observed", _measured(results, "executed", results.get("observed"))),
            fact("Decision", results.get("decision") or "—"),
        ]
    )
