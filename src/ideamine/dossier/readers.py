"""Readable summaries of artifacts: a few labelled facts and at most one table per item.

Readers only quote what an artifact says. A number that was not measured (no evidence envelope
of a tool that ran to the end, docs/evidence.md) is shown as "not measured", never as a value;
every reader tolerates missing or oddly shaped fields.
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


def _ran(node: Mapping[str, object]) -> bool:
    """True when ``node``'s evidence envelope says its tool ran to the end (docs/evidence.md)."""
    envelope = _map(node.get("evidence"))
    return envelope.get("executed") is True and envelope.get("timed_out") is not True


def _tool(node: Mapping[str, object]) -> str:
    """``pytest 8.3.3`` from a report's evidence envelope (``—`` when it has none)."""
    envelope = _map(node.get("evidence"))
    if not envelope:
        return "—"
    shown = f"{envelope.get('tool')} {envelope.get('version') or ''}".strip()
    if envelope.get("timed_out") is True:
        return f"{shown} (cut by its time limit)"
    if envelope.get("executed") is not True:
        return f"{shown} (did not run: {envelope.get('reason') or 'no reason given'})"
    return shown


def _counted(node: Mapping[str, object], *keys: str) -> object:
    """``"41 total, 41 passed, 0 failed"`` from a measured report; NOT_MEASURED otherwise."""
    if not _ran(node) or node.get(keys[0]) is None:
        return NOT_MEASURED
    return ", ".join(f"{node.get(key)} {key}" for key in keys)


def repository(c: Contents) -> Details:
    doc = c["RepoManifest"]
    repo = _map(doc.get("repository"))
    files = doc.get("files")
    commits = _list(doc.get("commits"))
    return Details(
        facts=[
            fact("Name", repo.get("name")),
            fact("Workspace path", doc.get("path") or "none created"),
            fact("Branch", doc.get("branch")),
            fact("Files committed", len(files) if isinstance(files, list) else 0),
            fact("Commits", len(commits)),
            fact("Built with", _tool(doc)),
            fact("Test command", _map(doc.get("commands")).get("test")),
        ],
        table=make_table(
            ("Commit", "Message"), [(k.get("sha"), k.get("message")) for k in commits]
        ),
    )


def commit(c: Contents) -> Details:
    doc = c["RepoManifest"]
    return Details(
        facts=[
            fact("Commit SHA", doc.get("commit") or "none recorded"),
            fact("Branch", doc.get("branch")),
            fact("Workspace path", doc.get("path") or "none created"),
        ]
    )


_TEST_KEYS = ("total", "passed", "failed", "errors", "skipped")


def tests(c: Contents) -> Details:
    build = _map(c["BuildReport"].get("tests"))
    e2e = _map(c.get("TestReport"))
    runs = _acceptance_runs(c.get("AcceptanceTestResults"))
    rows: list[tuple[object, ...]] = [
        ("Unit and API tests", _tool(build), *_numbers(build), c["BuildReport"].get("commit"))
    ]
    rows += [
        (f"Acceptance {run.get('story_id')}", _tool(run), *_numbers(run), run.get("commit"))
        for run in runs
    ]
    if e2e:
        rows.append(("End-to-end HTTP", _tool(e2e), *_numbers(e2e), e2e.get("commit")))
    measured = [run for run in runs if _ran(run) and run.get("total") is not None]
    return Details(
        facts=[
            fact("Unit and API tests (pytest)", _counted(build, *_TEST_KEYS)),
            fact("Failing tests", [f.get("name") for f in _list(build.get("failures"))] or "none"),
            fact(
                "Acceptance tests (story loop)",
                f"{sum(int(str(r.get('passed') or 0)) for r in measured)} passed of "
                f"{sum(int(str(r.get('total') or 0)) for r in measured)}, "
                f"{len(measured)} of {len(runs)} stories measured",
            ),
            fact("End-to-end HTTP cases", _counted(e2e, "total", "passed", "failed")),
            fact("End-to-end pass rate", e2e.get("pass_rate") if _ran(e2e) else NOT_MEASURED),
            fact("Lint (ruff)", _counted(_map(c["BuildReport"].get("lint")), "errors", "warnings")),
        ],
        table=make_table(("Suite", "Tool", "Total", "Passed", "Failed", "Commit"), rows),
    )


def _acceptance_runs(value: object) -> list[Mapping[str, object]]:
    """Every iteration's acceptance report (one report, or concat's ``items``)."""
    doc = _map(value)
    return _list(doc.get("items")) if "items" in doc else ([doc] if doc else [])


def _numbers(report: Mapping[str, object]) -> tuple[object, object, object]:
    if not _ran(report) or report.get("total") is None:
        return NOT_MEASURED, NOT_MEASURED, NOT_MEASURED
    failed = int(str(report.get("failed") or 0)) + int(str(report.get("errors") or 0))
    return report.get("total"), report.get("passed"), failed


def coverage(c: Contents) -> Details:
    doc = c["CoverageReport"]
    measured = doc.get("measured") is True and _ran(doc)
    files = _map(doc.get("files"))
    return Details(
        facts=[
            fact("Measured coverage", f"{doc.get('percent')} %" if measured else NOT_MEASURED),
            fact(
                "Lines covered",
                f"{doc.get('lines_covered')} of {doc.get('lines_total')}"
                if measured
                else NOT_MEASURED,
            ),
            fact("Target", f"{doc.get('target_percent')} %"),
            fact("Tool", _tool(doc)),
        ],
        table=make_table(("File", "Coverage %"), sorted(files.items())),
    )


def security_pack(c: Contents) -> Details:
    doc = c["SecurityPack"]
    sast, dast = _map(doc.get("sast")), _map(doc.get("dast"))
    rows: list[tuple[object, ...]] = [
        ("SAST", f"{f.get('file')}:{f.get('line')}", f.get("test_id"), f.get("severity"),
         f.get("issue"))
        for f in _list(sast.get("findings"))
    ]  # fmt: skip
    rows += [
        ("DAST", f.get("path"), f.get("check"), f.get("severity"), f.get("detail"))
        for f in _list(dast.get("findings"))
    ]
    return Details(
        facts=[
            fact("SAST tool", _tool(sast)),
            fact("SAST findings by severity", sast.get("counts") if _ran(sast) else NOT_MEASURED),
            fact("DAST tool", _tool(dast)),
            fact("DAST target", dast.get("target")),
            fact("DAST probes made", len(_list(dast.get("checks"))) if _ran(dast) else 0),
            fact("DAST findings", len(_list(dast.get("findings"))) if _ran(dast) else NOT_MEASURED),
        ],
        table=make_table(("Kind", "Where", "Rule", "Severity", "Detail"), rows),
    )


def sbom(c: Contents) -> Details:
    doc = c["SBOM"]
    components = _list(doc.get("components"))
    return Details(
        facts=[
            fact("Format", f"{doc.get('bomFormat')} {doc.get('specVersion')}"),
            fact("Components", len(components)),
            fact("Pinned requirements", doc.get("requirements") or []),
            fact("Tool", _tool(doc)),
        ],
        table=make_table(
            ("Name", "Version", "Package URL"),
            [(p.get("name"), p.get("version"), p.get("purl")) for p in components],
        ),
    )


def scans(c: Contents) -> Details:
    vulns, secrets = c["VulnerabilityScan"], _map(c.get("SecretsScanReport"))
    scanned = vulns.get("scanned") is True and _ran(vulns)
    rows: list[tuple[object, ...]] = [
        ("Vulnerability", f"{v.get('package')} {v.get('version')}", v.get("id"),
         v.get("severity"), v.get("summary"))
        for v in _list(vulns.get("vulnerabilities"))
    ]  # fmt: skip
    rows += [
        ("Secret", f"{s.get('file')}:{s.get('line')}", s.get("type"), "critical", "")
        for s in _list(secrets.get("findings"))
    ]
    return Details(
        facts=[
            fact("Dependency scan", vulns.get("status")),
            fact("Advisory source", vulns.get("source") or "none"),
            fact(
                "Vulnerabilities by severity",
                vulns.get("counts") if scanned else f"not scanned: {vulns.get('reason')}",
            ),
            fact("Secrets scan", _tool(secrets) if secrets else "missing"),
            fact(
                "Secrets found",
                secrets.get("count") if secrets.get("scanned") is True else NOT_MEASURED,
            ),
        ],
        table=make_table(("Kind", "Where", "Id or type", "Severity", "Summary"), rows),
    )


def performance(c: Contents) -> Details:
    doc = c["PerfReport"]
    latency = _map(doc.get("performance"))
    budget = _map(doc.get("budget"))
    measured = _ran(doc) and doc.get("rps") is not None
    return Details(
        facts=[
            fact("Throughput", f"{doc.get('rps')} requests/s" if measured else NOT_MEASURED),
            fact("Latency p50 / p95", f"{doc.get('p50_ms')} / {doc.get('p95_ms')} ms"
                 if measured else NOT_MEASURED),
            fact("Requests (errors)", f"{doc.get('requests')} ({doc.get('errors')})"
                 if measured else NOT_MEASURED),
            fact("Load", f"{doc.get('concurrency')} concurrent clients for "
                 f"{doc.get('duration_s')} s"),
            fact("Budget", f"p95 ≤ {budget.get('p95_ms')} ms, ≥ {budget.get('rps')} requests/s"),
            fact("Tool", _tool(doc)),
        ],
        table=make_table(
            ("Endpoint", "Requests", "Errors", "p50 (ms)", "p95 (ms)"),
            [
                (e.get("path"), e.get("requests"), e.get("errors"), e.get("p50_ms"),
                 e.get("p95_ms"))
                for e in _list(latency.get("endpoints"))
            ],
        ),
    )  # fmt: skip


def accessibility(c: Contents) -> Details:
    doc = c["A11yAudit"]
    violations = _list(doc.get("violations"))
    pages = _list(doc.get("pages"))
    rows = [(v.get("rule"), v.get("page"), v.get("impact"), v.get("detail")) for v in violations]
    return Details(
        facts=[
            fact("Standard", doc.get("standard")),
            fact("Scope", doc.get("scope")),
            fact("Pages checked", [p.get("url") for p in pages] if _ran(doc) else NOT_MEASURED),
            fact("Violations", len(violations) if _ran(doc) else NOT_MEASURED),
            fact("Tool", _tool(doc)),
        ],
        table=make_table(("Rule", "Page", "Impact", "Detail"), rows)
        if rows
        else make_table(
            ("Rule", "Criterion", "How it is checked"),
            [(k.get("rule"), k.get("criterion"), k.get("how")) for k in _list(doc.get("checks"))],
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
            fact(
                "Observed",
                results.get("observed") if results.get("executed") is True else NOT_MEASURED,
            ),
            fact("Decision", results.get("decision") or "—"),
        ]
    )
