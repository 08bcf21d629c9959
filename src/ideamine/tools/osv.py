"""The OSV matcher: the SBOM's PyPI components against a folder of OSV advisories.

Without a folder there is no source, and the VulnerabilityScan says so (``scanned: false``,
``status: not_scanned``); it is never reported as zero findings. With one, every ``*.json`` file
below it is read as an OSV record (https://ossf.github.io/osv-schema/), or a list of them: a
component is affected when an advisory's ``affected[].package`` names it (PEP 503 names, the
``PyPI`` ecosystem) and its version is listed in ``versions`` or falls in an ``ECOSYSTEM`` or
``SEMVER`` range (PEP 440 order). The severity band comes from ``database_specific.severity``,
else from a CVSS v3 vector's base score, else it is ``unknown``. A malformed advisory stops the
scan with an ``AdvisoryError`` naming the file and the field.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from ideamine import __version__
from ideamine.errors import UsageError
from ideamine.tools.process import ToolRun

__all__ = ["Advisory", "AdvisoryError", "cvss3_base_score", "load_advisories", "osv_scan"]

SEVERITY_ORDER = ("critical", "high", "medium", "low", "unknown")
_LABELS = {
    "CRITICAL": "critical",
    "HIGH": "high",
    "MODERATE": "medium",
    "MEDIUM": "medium",
    "LOW": "low",
}
_EVENT_KINDS = ("introduced", "fixed", "last_affected", "limit")
_NO_SOURCE = (
    "no advisory source: pass --advisories DIR (a folder of OSV JSON records) to match the "
    "SBOM's components against known vulnerabilities"
)


class AdvisoryError(UsageError):
    """An advisory file (or the folder) is not usable; ``file`` and ``field`` say where."""

    def __init__(self, file: str, field: str, problem: str) -> None:
        self.file, self.field, self.problem = file, field, problem
        where = f"{file}: {field}" if field else file
        super().__init__(
            f"advisory {where}: {problem}",
            hint="fix or remove that file: each *.json holds one OSV record (or a list of them), "
            "see https://ossf.github.io/osv-schema/",
        )


# An event of an OSV range: its kind (introduced, fixed, last_affected, limit) and version.
Event = tuple[str, Version]


@dataclass(frozen=True, slots=True, kw_only=True)
class Affected:
    """One PyPI package an advisory affects: listed versions and version ranges."""

    name: str
    versions: frozenset[str]
    ranges: tuple[tuple[Event, ...], ...]

    def includes(self, version: str) -> bool:
        """True when ``version`` is listed or inside one of the ranges (OSV's algorithm)."""
        if version in self.versions:
            return True
        parsed = _version_or_none(version)
        if parsed is None:
            return False
        listed = {_version_or_none(v) for v in self.versions}
        return parsed in listed or any(_in_range(parsed, events) for events in self.ranges)

    def fixed_after(self, version: str) -> str | None:
        """The lowest ``fixed`` version above ``version`` (where to upgrade), if any."""
        parsed = _version_or_none(version)
        if parsed is None:
            return None
        later = [
            at for events in self.ranges for kind, at in events if kind == "fixed" and at > parsed
        ]
        return str(min(later)) if later else None


@dataclass(frozen=True, slots=True, kw_only=True)
class Advisory:
    """An OSV record, reduced to what the matcher needs."""

    id: str
    summary: str
    severity: str
    aliases: tuple[str, ...]
    affected: tuple[Affected, ...]
    file: str


def osv_scan(sbom: Mapping[str, Any], advisories: Path | None) -> dict[str, object]:
    """Match the SBOM's PyPI components against the OSV records in ``advisories``.

    Args:
        sbom: a CycloneDX document (``components`` with ``name``, ``version``, ``purl``).
        advisories: a folder of OSV JSON files, or None when there is no source.

    Returns:
        The VulnerabilityScan: ``scanned``, ``status``, ``source``, ``reason``, ``counts``
        {critical, high, medium, low, unknown} (None when not scanned), ``vulnerabilities``
        [{id, package, version, severity, summary, aliases, fixed}] sorted by severity then
        id, and ``evidence``.

    Raises:
        AdvisoryError: the folder is missing or an advisory file is malformed.
    """
    if advisories is None:
        return _not_scanned()
    started = time.perf_counter()
    records = load_advisories(advisories)
    components = _pypi_components(sbom)
    found = _match(components, records)
    run = ToolRun(
        tool="osv-matcher",
        version=__version__,
        command=("osv-matcher", str(advisories)),
        exit_code=0,
        timed_out=False,
        duration_ms=(time.perf_counter() - started) * 1000,
        stdout="",
        stderr="",
    )
    return {
        "scanned": True,
        "status": "scanned",
        "source": str(advisories),
        "reason": f"{len(components)} PyPI components matched against {len(records)} advisories",
        "counts": {level: sum(v["severity"] == level for v in found) for level in SEVERITY_ORDER},
        "vulnerabilities": found,
        "evidence": run.envelope(),
    }


def _not_scanned() -> dict[str, object]:
    """The report of a scan that had no advisory source: a gap, never zero findings."""
    run = ToolRun.not_run("osv-matcher", _NO_SOURCE, version=__version__)
    return {
        "scanned": False,
        "status": "not_scanned",
        "source": None,
        "reason": _NO_SOURCE,
        "counts": None,
        "vulnerabilities": [],
        "evidence": run.envelope(),
    }


def _pypi_components(sbom: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """(normalised name, name as written, version) of each versioned PyPI component."""
    components: list[tuple[str, str, str]] = []
    for component in sbom.get("components") or []:
        name, version = component.get("name"), component.get("version")
        purl = str(component.get("purl") or "pkg:pypi/")
        if isinstance(name, str) and isinstance(version, str) and purl.startswith("pkg:pypi/"):
            components.append((canonicalize_name(name), name, version))
    return components


def _match(
    components: list[tuple[str, str, str]], records: list[Advisory]
) -> list[dict[str, object]]:
    """One vulnerability per (advisory, component) it affects, most severe first."""
    found: list[dict[str, object]] = []
    for key, name, version in components:
        for advisory in records:
            hit = next(
                (a for a in advisory.affected if a.name == key and a.includes(version)), None
            )
            if hit is not None:
                found.append(_vulnerability(advisory, name, version, hit.fixed_after(version)))
    rank = {level: index for index, level in enumerate(SEVERITY_ORDER)}
    return sorted(found, key=lambda v: (rank[str(v["severity"])], str(v["id"]), str(v["package"])))


def _vulnerability(
    advisory: Advisory, package: str, version: str, fixed: str | None
) -> dict[str, object]:
    """The report entry for one affected component."""
    return {
        "id": advisory.id,
        "package": package,
        "version": version,
        "severity": advisory.severity,
        "summary": advisory.summary,
        "aliases": list(advisory.aliases),
        "fixed": fixed,
    }


def load_advisories(folder: Path) -> list[Advisory]:
    """Every OSV record in the ``*.json`` files below ``folder``, in path order.

    Raises:
        AdvisoryError: the folder is missing, or a file is not JSON or not an OSV record.
    """
    if not folder.is_dir():
        raise AdvisoryError(str(folder), "", "no such folder")
    records: list[Advisory] = []
    for path in sorted(folder.rglob("*.json")):
        file = str(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise AdvisoryError(file, "", f"not readable as JSON: {exc}") from exc
        if isinstance(data, list):
            records += [_advisory(item, file, f"[{i}].") for i, item in enumerate(data)]
        else:
            records.append(_advisory(data, file, ""))
    return records


def _advisory(data: object, file: str, prefix: str) -> Advisory:
    """Validate one OSV record and keep its PyPI ``affected`` entries."""
    record = _mapping(data, file, prefix.rstrip(".") or "(record)")
    affected = []
    for i, entry in enumerate(_list(record.get("affected", []), file, f"{prefix}affected")):
        parsed = _affected(entry, file, f"{prefix}affected[{i}]")
        if parsed is not None:
            affected.append(parsed)
    aliases = _list(record.get("aliases", []), file, f"{prefix}aliases")
    return Advisory(
        id=_text(record.get("id"), file, f"{prefix}id"),
        summary=str(record.get("summary") or record.get("details") or "")[:300],
        severity=_severity(record, file, prefix),
        aliases=tuple(_text(alias, file, f"{prefix}aliases") for alias in aliases),
        affected=tuple(affected),
        file=file,
    )


def _affected(data: object, file: str, field: str) -> Affected | None:
    """One ``affected`` entry, or None when its package is not on PyPI."""
    entry = _mapping(data, file, field)
    package = _mapping(entry.get("package"), file, f"{field}.package")
    ecosystem = _text(package.get("ecosystem"), file, f"{field}.package.ecosystem")
    name = _text(package.get("name"), file, f"{field}.package.name")
    if ecosystem.split(":", 1)[0].lower() != "pypi":
        return None
    versions = _list(entry.get("versions", []), file, f"{field}.versions")
    ranges = []
    for i, item in enumerate(_list(entry.get("ranges", []), file, f"{field}.ranges")):
        events = _range(item, file, f"{field}.ranges[{i}]")
        if events is not None:
            ranges.append(events)
    return Affected(
        name=canonicalize_name(name),
        versions=frozenset(_text(v, file, f"{field}.versions") for v in versions),
        ranges=tuple(ranges),
    )


def _range(data: object, file: str, field: str) -> tuple[Event, ...] | None:
    """A range's events sorted for OSV's walk (introduced first at equal versions); None
    for a ``GIT`` range, which names commits rather than versions."""
    entry = _mapping(data, file, field)
    kind = _text(entry.get("type"), file, f"{field}.type")
    if kind == "GIT":
        return None
    if kind not in ("ECOSYSTEM", "SEMVER"):
        raise AdvisoryError(file, f"{field}.type", f"unknown range type {kind!r}")
    events = [
        _event(item, file, f"{field}.events[{i}]")
        for i, item in enumerate(_list(entry.get("events"), file, f"{field}.events"))
    ]
    return tuple(sorted(events, key=lambda event: (event[1], event[0] != "introduced")))


def _event(data: object, file: str, field: str) -> Event:
    """One range event: exactly one of introduced, fixed, last_affected, limit."""
    entry = _mapping(data, file, field)
    kinds = [kind for kind in _EVENT_KINDS if kind in entry]
    if len(kinds) != 1:
        raise AdvisoryError(file, field, f"needs exactly one of {', '.join(_EVENT_KINDS)}")
    text = _text(entry[kinds[0]], file, f"{field}.{kinds[0]}")
    try:
        return kinds[0], Version(text)
    except InvalidVersion as exc:
        raise AdvisoryError(file, f"{field}.{kinds[0]}", f"not a version: {text!r}") from exc


def _in_range(version: Version, events: tuple[Event, ...]) -> bool:
    """OSV's range walk over events sorted by version."""
    affected = False
    for kind, at in events:
        if kind == "introduced" and version >= at:
            affected = True
        elif (kind in ("fixed", "limit") and version >= at) or (
            kind == "last_affected" and version > at
        ):
            affected = False
    return affected


def _severity(record: Mapping[str, object], file: str, prefix: str) -> str:
    """The band from ``database_specific.severity``, else a CVSS v3 vector, else unknown."""
    specific = record.get("database_specific")
    label = specific.get("severity") if isinstance(specific, Mapping) else None
    if isinstance(label, str) and label.upper() in _LABELS:
        return _LABELS[label.upper()]
    scores = _list(record.get("severity", []), file, f"{prefix}severity")
    for i, item in enumerate(scores):
        entry = _mapping(item, file, f"{prefix}severity[{i}]")
        if entry.get("type") == "CVSS_V3":
            vector = _text(entry.get("score"), file, f"{prefix}severity[{i}].score")
            try:
                return _band(cvss3_base_score(vector))
            except ValueError as exc:
                raise AdvisoryError(file, f"{prefix}severity[{i}].score", str(exc)) from exc
    return "unknown"


def _band(score: float) -> str:
    """CVSS v3 qualitative band (a 0.0 score, "none", counts as low)."""
    if score >= 9.0:
        return "critical"
    if score >= 7.0:
        return "high"
    return "medium" if score >= 4.0 else "low"


_CVSS_WEIGHTS: dict[str, dict[str, float]] = {
    "AV": {"N": 0.85, "A": 0.62, "L": 0.55, "P": 0.2},
    "AC": {"L": 0.77, "H": 0.44},
    "PR": {"N": 0.85, "L": 0.62, "H": 0.27},
    "UI": {"N": 0.85, "R": 0.62},
    "S": {"U": 0.0, "C": 0.0},
    "C": {"H": 0.56, "L": 0.22, "N": 0.0},
    "I": {"H": 0.56, "L": 0.22, "N": 0.0},
    "A": {"H": 0.56, "L": 0.22, "N": 0.0},
}
_CVSS_PR_CHANGED = {"N": 0.85, "L": 0.68, "H": 0.5}


def cvss3_base_score(vector: str) -> float:
    """The CVSS v3.x base score of a vector such as ``CVSS:3.1/AV:N/AC:L/PR:N/UI:N/…``.

    Raises:
        ValueError: the vector is not a CVSS v3 vector with every base metric.
    """
    prefix, *parts = vector.strip().split("/")
    metrics = dict(part.split(":", 1) for part in parts if ":" in part)
    if not prefix.startswith("CVSS:3") or any(
        metrics.get(name) not in values for name, values in _CVSS_WEIGHTS.items()
    ):
        raise ValueError(f"not a CVSS v3 base vector: {vector!r}")
    changed = metrics["S"] == "C"
    weight = {name: values[metrics[name]] for name, values in _CVSS_WEIGHTS.items()}
    if changed:
        weight["PR"] = _CVSS_PR_CHANGED[metrics["PR"]]
    iss = 1 - (1 - weight["C"]) * (1 - weight["I"]) * (1 - weight["A"])
    impact = 7.52 * (iss - 0.029) - 3.25 * (iss - 0.02) ** 15 if changed else 6.42 * iss
    if impact <= 0:
        return 0.0
    exploitability = 8.22 * weight["AV"] * weight["AC"] * weight["PR"] * weight["UI"]
    total = (1.08 if changed else 1.0) * (impact + exploitability)
    return _round_up(min(total, 10.0))


def _round_up(value: float) -> float:
    """CVSS v3.1's Roundup: the smallest one-decimal number >= value, float-error safe."""
    scaled = round(value * 100_000)
    if scaled % 10_000 == 0:
        return scaled / 100_000
    return (math.floor(scaled / 10_000) + 1) / 10.0


def _version_or_none(text: str) -> Version | None:
    """``Version(text)``, or None when it is not a PEP 440 version."""
    try:
        return Version(text)
    except InvalidVersion:
        return None


def _mapping(value: object, file: str, field: str) -> Mapping[str, object]:
    """``value`` when it is a JSON object, else an AdvisoryError naming the field."""
    if not isinstance(value, Mapping):
        raise AdvisoryError(file, field, "must be an object")
    return value


def _list(value: object, file: str, field: str) -> list[object]:
    """``value`` when it is a JSON array, else an AdvisoryError naming the field."""
    if not isinstance(value, list):
        raise AdvisoryError(file, field, "must be a list")
    return value


def _text(value: object, file: str, field: str) -> str:
    """``value`` when it is a non-empty string, else an AdvisoryError naming the field."""
    if not isinstance(value, str) or not value.strip():
        raise AdvisoryError(file, field, "must be a non-empty string")
    return value
