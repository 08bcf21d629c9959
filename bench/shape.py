"""The workloads' shape, shared with the peer benchmarks (bench-peers/common.py): the SPEC
DAG, K agents per phase, the agents' payload and the expected final artifact, computed here
without the engine so every run's output can be checked against it."""

from __future__ import annotations

import hashlib
import json

DAG: dict[str, list[str]] = {
    "intake": [],
    "ideation": ["intake"],
    "critique": ["ideation"],
    "prd": ["critique"],
    "bizdev": ["prd"],
    "architecture": ["bizdev"],
    "build": ["architecture"],
    "security": ["build"],
    "story-loop": ["build"],
    "qa": ["security", "story-loop"],
    "aesthetic": ["qa"],
    "release": ["aesthetic"],
    "beta": ["release"],
}
K = 8  # agents per phase
LEVELS = 12  # dependency levels: security and story-loop share one
TASKS = K * len(DAG)  # 104 agent tasks
W1_SLEEP = 0.02
W3_SLEEP = 0.2
W1_IDEAL = LEVELS * W1_SLEEP  # 0.24 s
W3_IDEAL = LEVELS * W3_SLEEP  # 2.4 s
FANOUT_PHASE = "fanout"


def pascal(name: str) -> str:
    """``story-loop`` → ``StoryLoop`` (how artifact types and agent names are spelled)."""
    return "".join(part.capitalize() for part in name.split("-"))


def result_type(phase: str) -> str:
    """The artifact type a phase writes."""
    return f"{pascal(phase)}Result"


def digest(value: object) -> str:
    """A short hash of canonical JSON."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def agent_result(phase: str, index: int, upstream: dict[str, str]) -> dict[str, object]:
    """The small dict agent ``index`` of ``phase`` returns, given its inputs' digests."""
    return {"agent": f"{phase}-{index}", "phase": phase, "i": index, "in": digest(upstream)}


def expected_artifacts() -> dict[str, object]:
    """Every phase's artifact as a correct engine must produce it: the merge of its K agent
    outputs, each computed from the digests of its direct dependencies' artifacts."""
    artifacts: dict[str, object] = {}
    for phase, deps in DAG.items():  # DAG is listed in topological order
        upstream = {dep: digest(artifacts[dep]) for dep in deps}
        parts = {f"{phase}-{i}": agent_result(phase, i, upstream) for i in range(K)}
        artifacts[phase] = {"value": dict(sorted(parts.items()))}
    return artifacts


def expected_final() -> object:
    """The ``beta`` phase's artifact."""
    return expected_artifacts()["beta"]


def fanout_expected(n: int) -> int:
    """The sum of the N no-op agents' indices (what W2's fan-in must hold)."""
    return n * (n - 1) // 2
