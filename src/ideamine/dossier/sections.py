"""The five release sections of SPEC §8: product, code, security, quality, deployment.

Each section is a list of *items*. An item names the artifacts it draws on and has a status:
``present`` (the artifact is there and claims nothing it has not got), ``gap`` (it is there,
but says its evidence was not measured, scanned or executed) or ``missing`` (the run never
produced it; ``reason`` says why). Items carry the full artifact contents, and for reading,
a few labelled facts and at most one table.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from ideamine.dossier.evidence import artifact_gaps, missing_reason
from ideamine.dossier.facts import RunFacts
from ideamine.dossier.readers import (
    Contents,
    Details,
    accessibility,
    canary,
    commit,
    coverage,
    deployment_plan,
    fact,
    make_table,
    openapi,
    performance,
    prd,
    release_notes,
    repository,
    rollback,
    rtm,
    sbom,
    scans,
    security_pack,
    tests,
)

__all__ = ["SECTIONS", "ItemSpec", "build_sections"]

Check = Callable[[Contents], str | None]


@dataclass(frozen=True, slots=True, kw_only=True)
class ItemSpec:
    """One dossier item: its artifacts (the first is required), how to describe it, and an
    extra check for gaps that no evidence flag states."""

    key: str
    title: str
    sources: tuple[str, ...]
    describe: Callable[[Contents], Details]
    check: Check | None = None
    context: tuple[str, ...] = ()  # read for the description, not judged for gaps


def _no_commit(contents: Contents) -> str | None:
    manifest = contents.get("RepoManifest", {})
    if manifest.get("commit"):
        return None
    return str(manifest.get("note") or "no commit has been recorded for the repository")


def _no_workspace(contents: Contents) -> str | None:
    manifest = contents.get("RepoManifest", {})
    if manifest.get("path"):
        return None
    return str(manifest.get("note") or "no workspace has been created for the repository")


def _failing_build(contents: Contents) -> str | None:
    """A gap when the build's tests did not all pass or lint found errors (measured, but not
    the evidence a release needs)."""
    report = contents.get("BuildReport", {})
    tests = report.get("tests")
    if isinstance(tests, Mapping) and tests.get("total") is not None:
        failing = int(str(tests.get("failed") or 0)) + int(str(tests.get("errors") or 0))
        if failing or not tests.get("total"):
            return f"pytest: {failing} of {tests.get('total')} tests fail"
    return None


def _declared_sbom(contents: Contents) -> str | None:
    metadata = contents.get("SBOM", {}).get("metadata")
    properties = metadata.get("properties") if isinstance(metadata, Mapping) else None
    values = (
        {str(p.get("name")): str(p.get("value")) for p in properties if isinstance(p, Mapping)}
        if isinstance(properties, list)
        else {}
    )
    if values.get("ideamine:resolution") != "declared":
        return None
    return values.get("ideamine:note") or "components are declared, not resolved by an SBOM tool"


SECTIONS: tuple[tuple[str, str, tuple[ItemSpec, ...]], ...] = (
    (
        "product",
        "Product",
        (
            ItemSpec(key="prd", title="Product requirements (PRD)", sources=("PRD",), describe=prd),
            ItemSpec(
                key="rtm", title="Requirements traceability (RTM)", sources=("RTM",), describe=rtm
            ),
            ItemSpec(
                key="openapi",
                title="API contract (OpenAPI)",
                sources=("OpenAPI",),
                describe=openapi,
            ),
        ),
    ),
    (
        "code",
        "Code",
        (
            ItemSpec(
                key="repository",
                title="Repository",
                sources=("RepoManifest", "SourceCode"),
                describe=repository,
                check=_no_workspace,
            ),
            ItemSpec(
                key="commit",
                title="Commit",
                sources=("RepoManifest",),
                describe=commit,
                check=_no_commit,
            ),
            ItemSpec(
                key="tests",
                title="Test reports",
                sources=("BuildReport", "TestReport", "AcceptanceTestResults"),
                context=("TestSuite",),
                describe=tests,
                check=_failing_build,
            ),
            ItemSpec(
                key="coverage", title="Coverage", sources=("CoverageReport",), describe=coverage
            ),
        ),
    ),
    (
        "security",
        "Security",
        (
            ItemSpec(
                key="security_pack",
                title="Security pack (SAST, DAST)",
                sources=("SecurityPack",),
                describe=security_pack,
            ),
            ItemSpec(
                key="sbom",
                title="Software bill of materials (SBOM)",
                sources=("SBOM",),
                describe=sbom,
                check=_declared_sbom,
            ),
            ItemSpec(
                key="scans",
                title="Dependency and secrets scans",
                sources=("VulnerabilityScan", "SecretsScanReport"),
                describe=scans,
            ),
        ),
    ),
    (
        "quality",
        "Quality",
        (
            ItemSpec(
                key="performance",
                title="Performance",
                sources=("PerfReport",),
                describe=performance,
            ),
            ItemSpec(
                key="accessibility",
                title="Accessibility",
                sources=("A11yAudit",),
                describe=accessibility,
            ),
            ItemSpec(
                key="release_notes",
                title="Release notes",
                sources=("ReleaseNotes",),
                describe=release_notes,
            ),
        ),
    ),
    (
        "deployment",
        "Deployment",
        (
            ItemSpec(
                key="deployment_plan",
                title="Deployment plan",
                sources=("DeploymentPlan",),
                describe=deployment_plan,
            ),
            ItemSpec(
                key="rollback_plan",
                title="Rollback plan",
                sources=("RollbackPlan",),
                describe=rollback,
            ),
            ItemSpec(
                key="canary_rules",
                title="Canary rules",
                sources=("DeploymentPlan",),
                context=("CanaryResults",),
                describe=canary,
            ),
        ),
    ),
)


def build_sections(facts: RunFacts) -> list[dict[str, object]]:
    """The five sections, each with its items, in SPEC order."""
    sections: list[dict[str, object]] = []
    for key, title, specs in SECTIONS:
        items = [build_item(facts, spec) for spec in specs]
        if key == "security":
            items.append(signatures(facts))
        sections.append({"key": key, "title": title, "items": items})
    return sections


def signatures(facts: RunFacts) -> dict[str, object]:
    """What is signed or hash-chained, checked now: the run's ledger and the artifacts."""
    chain = facts.chain
    ledger = (
        f"{chain.checked} events verified (SHA-256 hash chain)"
        if chain.ok
        else f"broken at event {chain.broken_at}: {chain.reason}"
    )
    rows = [(name, fact.record.content_hash) for name, fact in sorted(facts.artifacts.items())]
    return {
        "key": "signatures",
        "title": "Signatures",
        "sources": [],
        "status": "present" if chain.ok else "gap",
        "reason": None if chain.ok else f"the run's ledger is {ledger}",
        "artifacts": [],
        "facts": [
            fact("Run ledger", ledger),
            fact("Ledger head", facts.chain_head),
            fact("Artifacts", f"{len(rows)}, each stored under the SHA-256 of its canonical JSON"),
            fact("This dossier", "signed with the SHA-256 of its canonical JSON (signature field)"),
            fact("Release image signature", "none: no image has been built or signed yet"),
        ],
        "table": make_table(("Artifact", "SHA-256"), rows),
        "content": {},
    }


def build_item(facts: RunFacts, spec: ItemSpec) -> dict[str, object]:
    """One item: status, reason, artifacts drawn on, readable details and full contents."""
    contents: dict[str, Mapping[str, object]] = {}
    for artifact_type in (*spec.sources, *spec.context):
        content = facts.content(artifact_type)
        if content is not None:
            contents[artifact_type] = content
    base: dict[str, object] = {"key": spec.key, "title": spec.title, "sources": list(spec.sources)}
    primary = spec.sources[0]
    if primary not in contents:
        return {**base, **_empty(), "status": "missing", "reason": missing_reason(facts, primary)}
    status, reason = _judge(spec, contents)
    details = spec.describe(contents)
    return {
        **base,
        "status": status,
        "reason": reason,
        "artifacts": _artifacts(facts, contents),
        "facts": details.facts,
        "table": details.table,
        "content": {name: contents[name] for name in sorted(contents)},
    }


def _judge(spec: ItemSpec, contents: Mapping[str, Mapping[str, object]]) -> tuple[str, str | None]:
    extra = spec.check(contents) if spec.check else None
    if extra:
        return "gap", extra
    for name in spec.sources:
        if name in contents:
            gaps = artifact_gaps(name, contents[name])
            if gaps:
                return "gap", f"{name}: {gaps[0]['reason']}"
    return "present", None


def _empty() -> dict[str, object]:
    return {"artifacts": [], "facts": [], "table": None, "content": {}}


def _artifacts(facts: RunFacts, contents: Mapping[str, object]) -> list[dict[str, object]]:
    found: Sequence[tuple[str, str, str, int]] = [
        (name, fact.record.id, fact.record.content_hash, fact.record.version)
        for name in sorted(contents)
        if (fact := facts.artifacts.get(name)) is not None
    ]
    return [{"type": t, "id": i, "sha256": h, "version": v} for t, i, h, v in found]
