"""The security checks of a generated workspace: SAST (bandit), secrets, SBOM (CycloneDX).

Each function runs the real tool on the workspace and returns the report of docs/evidence.md
with its ``evidence`` envelope. Tools write their reports into temporary folders outside the
workspace. No report ever holds a secret's value: the secrets scan keeps file, line and type.
"""

from __future__ import annotations

import json
import re
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from ideamine.tools.process import ToolRun, run_module

__all__ = ["SAST_SKIPPED", "bom_problem", "sast", "sbom", "secrets_scan"]

SAST_SKIPPED = ("B101",)
"""Bandit checks not run: B101 (assert used) fires on every pytest test."""

_SEVERITIES = ("high", "medium", "low")
_APP_REF = "workspace-app"
# Bandit's hardcoded-password checks quote the value they found; a report never keeps it.
_QUOTES_SECRET = frozenset({"B105", "B106", "B107"})
_QUOTED = re.compile(r"'[^']*'")
_OPTION = re.compile(r"\s+--?[a-z]")
_URL_CREDENTIALS = re.compile(r"://[^/@\s]+@")


def sast(
    workspace: Path, *, paths: Sequence[str] = ("backend",), timeout: float = 300
) -> dict[str, object]:
    """Scan ``paths`` with bandit: the SecurityPack's ``sast`` section.

    Everything under ``paths`` is scanned (tests too) except bandit's default exclusions
    (``.git``, ``__pycache__``, …); ``SAST_SKIPPED`` checks are skipped and listed.

    Returns:
        ``{"findings": [{"file", "line", "test_id", "issue", "severity", "confidence"}],
        "counts": {"high", "medium", "low"}, "skipped_checks", "scan_errors": [{"file",
        "reason"}], "evidence"}``, files relative to the workspace and severities lower case;
        ``counts`` is None when bandit could not run or was cut by its time limit.
    """
    present = [path for path in paths if (workspace / path).exists()]
    if not present:
        missing = ToolRun.not_run("bandit", f"nothing to scan: {', '.join(paths)} not found")
        return _sast_section(None, missing)
    with tempfile.TemporaryDirectory(prefix="ideamine-bandit-") as tmp:
        output = Path(tmp) / "bandit.json"
        args = ["-r", *present, "-f", "json", "-o", str(output), "-q", "--exit-zero"]
        args += ["--skip", ",".join(SAST_SKIPPED)]
        run = run_module("bandit", "bandit", args, cwd=workspace, timeout=timeout)
        report = json.loads(output.read_text()) if run.ok and output.is_file() else None
    return _sast_section(report, run)


def _sast_section(report: dict[str, Any] | None, run: ToolRun) -> dict[str, object]:
    """Findings sorted by place, counts by severity, files bandit could not read."""
    if report is None:
        return {
            "findings": [],
            "counts": None,
            "skipped_checks": list(SAST_SKIPPED),
            "scan_errors": [],
            "evidence": run.envelope(),
        }
    findings = sorted(
        (
            {
                "file": item["filename"],
                "line": int(item["line_number"]),
                "test_id": item["test_id"],
                "issue": _issue_text(item),
                "severity": str(item["issue_severity"]).lower(),
                "confidence": str(item["issue_confidence"]).lower(),
            }
            for item in report.get("results", [])
        ),
        key=lambda finding: (finding["file"], finding["line"], finding["test_id"]),
    )
    counts = {level: sum(1 for f in findings if f["severity"] == level) for level in _SEVERITIES}
    errors = [{"file": e["filename"], "reason": e["reason"]} for e in report.get("errors", [])]
    return {
        "findings": findings,
        "counts": counts,
        "skipped_checks": list(SAST_SKIPPED),
        "scan_errors": errors,
        "evidence": run.envelope(),
    }


def _issue_text(item: dict[str, Any]) -> str:
    """Bandit's issue text, with the value of a hardcoded password redacted."""
    text = str(item["issue_text"])
    return _QUOTED.sub("'[redacted]'", text) if item["test_id"] in _QUOTES_SECRET else text


def secrets_scan(workspace: Path, *, timeout: float = 300) -> dict[str, object]:
    """Scan every file of the workspace (but ``.git``) with detect-secrets.

    Returns:
        The SecretsScanReport ``{"scanned", "count", "findings": [{"file", "line", "type"}],
        "evidence"}``: ``scanned`` is false and ``count`` None when detect-secrets could not
        run or was cut by its time limit. Neither the secret nor its hash is kept.
    """
    args = ["scan", "--all-files", "--exclude-files", r"(^|/)\.git/"]
    # detect-secrets prints its report only on stdout, so none of it may be cut off.
    run = run_module(
        "detect-secrets", "detect_secrets", args, cwd=workspace, timeout=timeout, stdout_limit=None
    )
    if not run.ok:
        return {"scanned": False, "count": None, "findings": [], "evidence": run.envelope()}
    results: dict[str, list[dict[str, Any]]] = json.loads(run.stdout).get("results", {})
    findings = sorted(
        {
            (file, int(secret["line_number"]), str(secret["type"]))
            for file, secrets in results.items()
            for secret in secrets
        }
    )
    return {
        "scanned": True,
        "count": len(findings),
        "findings": [{"file": file, "line": line, "type": kind} for file, line, kind in findings],
        "evidence": run.envelope(),
    }


def sbom(
    workspace: Path, *, requirements: str = "backend/requirements.txt", timeout: float = 300
) -> dict[str, object]:
    """A CycloneDX 1.5 JSON BOM of the workspace's pinned requirements (cyclonedx-py).

    Components are the ``name==version`` lines (``type: library``, ``name``, ``version``,
    ``purl``, ``bom-ref``); ``metadata.component`` is the workspace app, depending on all of
    them. The document has no serial number or timestamp, so the same requirements give the
    same BOM. It is validated here against the CycloneDX 1.5 schema (:func:`bom_problem`),
    after the edits above, rather than by the tool: cyclonedx-py's own check builds an IRI
    grammar on every start, 3 of its 4 seconds.

    Returns:
        The BOM plus ``"requirements"`` (pinned names, PEP 503 normalised, sorted),
        ``"unpinned"`` (the lines that are not a plain pin, as written) and ``"evidence"``.
        When the requirements file is missing, the tool fails or its BOM does not validate
        (``evidence.schema_problem``), there is no BOM: only those three fields, with the
        evidence saying why.
    """
    path = workspace / requirements
    if not path.is_file():
        missing = ToolRun.not_run("cyclonedx-py", f"no requirements file: {requirements}")
        return {"requirements": [], "unpinned": [], "evidence": missing.envelope()}
    pinned, unpinned = _read_requirements(path)
    with tempfile.TemporaryDirectory(prefix="ideamine-sbom-") as tmp:
        output = Path(tmp) / "bom.json"
        args = ["requirements", str(path), "--spec-version", "1.5", "--output-format", "JSON"]
        args += ["--output-reproducible", "--no-validate", "--output-file", str(output)]
        run = run_module("cyclonedx-py", "cyclonedx_py", args, cwd=workspace, timeout=timeout)
        bom = json.loads(output.read_text()) if run.ok and output.is_file() else None
    names = sorted(pinned)
    evidence = run.envelope()
    if bom is not None:
        bom = _with_app(_pinned_only(bom), workspace.name)
        problem = bom_problem(bom)
        if problem is not None:
            bom, evidence = None, {**evidence, "schema_problem": problem}
    if bom is None:
        return {"requirements": names, "unpinned": unpinned, "evidence": evidence}
    return {**bom, "requirements": names, "unpinned": unpinned, "evidence": evidence}


def bom_problem(document: Mapping[str, Any]) -> str | None:
    """Why a CycloneDX JSON document does not validate against the schema of its
    ``specVersion`` (the first line of the validator's message), or None when it does."""
    # imported here, not at the top: loading them costs every `ideamine` command 0.2 s;
    # jsonschema first, through ideamine.jsonschemas (without its slow format plug-ins)
    import ideamine.jsonschemas  # noqa: F401, PLC0415

    # isort: split
    from cyclonedx.schema import SchemaVersion  # noqa: PLC0415
    from cyclonedx.validation.json import JsonStrictValidator  # noqa: PLC0415

    try:
        version = SchemaVersion.from_version(str(document.get("specVersion")))
    except ValueError:
        return f"unknown specVersion {document.get('specVersion')!r}"
    error = JsonStrictValidator(version).validate_str(json.dumps(document))
    return None if error is None else str(error).splitlines()[0][:500]


def _read_requirements(path: Path) -> tuple[dict[str, str], list[str]]:
    """Pinned ``name → version`` and the other requirement lines (options included)."""
    pinned: dict[str, str] = {}
    unpinned: list[str] = []
    text = path.read_text(errors="replace").replace("\\\n", " ")  # join continued lines
    for raw in text.splitlines():
        # drop comments and per-requirement options (``--hash=…``); keep a leading ``-e``
        line = _OPTION.split(raw.split(" #", 1)[0].strip(), maxsplit=1)[0]
        if not line or line.startswith("#"):
            continue
        version = _pinned_version(line)
        if version is None:
            unpinned.append(_URL_CREDENTIALS.sub("://[redacted]@", line))
        else:
            pinned[canonicalize_name(Requirement(line).name)] = version
    return pinned, unpinned


def _pinned_version(line: str) -> str | None:
    """The version of a ``name==version`` requirement, else None (ranges, URLs, options)."""
    try:
        requirement = Requirement(line)
    except InvalidRequirement:
        return None
    specifiers = list(requirement.specifier)
    if requirement.url or len(specifiers) != 1:
        return None
    spec = specifiers[0]
    if spec.operator not in ("==", "===") or spec.version.endswith(".*"):
        return None
    return spec.version


def _pinned_only(bom: dict[str, Any]) -> dict[str, Any]:
    """Drop the components cyclonedx-py made of unpinned lines (they have no version)."""
    components = [c for c in bom.get("components", []) if c.get("version")]
    refs = {c["bom-ref"] for c in components}
    dependencies = [d for d in bom.get("dependencies", []) if d.get("ref") in refs]
    return {**bom, "components": components, "dependencies": dependencies}


def _with_app(bom: dict[str, Any], name: str) -> dict[str, Any]:
    """Name the workspace app as the BOM's subject, depending on every component."""
    refs = sorted(c["bom-ref"] for c in bom["components"])
    app = {"type": "application", "name": name, "bom-ref": _APP_REF}
    metadata = {**bom.get("metadata", {}), "component": app}
    dependencies = [{"ref": _APP_REF, "dependsOn": refs}, *bom["dependencies"]]
    return {**bom, "metadata": metadata, "dependencies": dependencies}
