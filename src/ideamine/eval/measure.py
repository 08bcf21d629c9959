"""Measure one finished run of an evaluation: the facts of the run from its store, and the
metrics of its product (the workspace at the story loop's last commit)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path

from ideamine.config.compiled import run_pipeline
from ideamine.config.model import PipelineSpec
from ideamine.engine.states import PhaseStatus
from ideamine.eval.completeness import completeness
from ideamine.eval.embedding import Embedder, cosine
from ideamine.eval.executability import executability
from ideamine.eval.ideas import Idea
from ideamine.eval.validity import validity
from ideamine.knowledge.guards.reading import strings
from ideamine.stores.base import Store
from ideamine.stores.dossiers import DossierStore
from ideamine.stores.records import ArtifactRecord, latest_attempts
from ideamine.tools.chain import commit_stories
from ideamine.tools.workspace import RepoManifest, workspace_dir

__all__ = [
    "CODE_SUFFIXES",
    "code_text",
    "consistency",
    "latest_artifacts",
    "measure_run",
    "product_checkout",
    "run_facts",
]

CODE_SUFFIXES = (".py", ".sql", ".js", ".ts", ".html")
"""The files whose text is "the code" for consistency (tests excluded)."""


async def measure_run(
    store: Store, run_id: str, idea: Idea, *, data_dir: Path, folder: Path, embedder: Embedder
) -> dict[str, object]:
    """Everything recorded for one idea: the run's facts and the product's metrics.

    ``folder`` receives the product's checkout (``folder/product``, replaced if present).
    """
    pipeline = await run_pipeline(store, run_id)
    facts = await run_facts(store, run_id, pipeline)
    artifacts = await latest_artifacts(store, run_id)
    product = await asyncio.to_thread(
        product_checkout, data_dir, run_id, artifacts, folder / "product"
    )
    if product is None:
        complete: dict[str, object] = {"score": 0.0, "problem": "the run built no workspace"}
        runs: dict[str, object] = {"score": 0.0, "failed_step": "workspace", "steps": []}
        code = ""
    else:
        complete = await asyncio.to_thread(completeness, product)
        runs = await executability(product)
        code = await asyncio.to_thread(code_text, product)
    prd = "\n".join(text for _, text in strings(artifacts.get("PRD"), "PRD") if text)
    vectors = await asyncio.to_thread(embedder.embed, [idea.description, prd, code])
    consistent = consistency(vectors[0], {"prd": (vectors[1], prd), "code": (vectors[2], code)})
    quality = _score(complete) * _score(runs) * _score(consistent)
    return {
        **facts,
        "completeness": complete,
        "executability": runs,
        "consistency": consistent,
        "quality": round(quality, 4),
        "validity": validity(pipeline, artifacts),
        "embeddings": {
            name: [round(x, 6) for x in vector]
            for name, vector in zip(("idea", "prd", "code"), vectors, strict=True)
        },
    }


def consistency(
    idea: Sequence[float], parts: Mapping[str, tuple[Sequence[float], str]]
) -> dict[str, float]:
    """The cosine of the idea's embedding with each part's (0 for a part with no text), and
    ``score``, their mean."""
    found = {
        name: cosine(idea, vector) if text.strip() else 0.0
        for name, (vector, text) in parts.items()
    }
    rounded = {name: round(value, 4) for name, value in found.items()}
    return {"score": round(sum(found.values()) / len(found), 4), **rounded}


async def run_facts(store: Store, run_id: str, pipeline: PipelineSpec) -> dict[str, object]:
    """Status, phases passed, gate verdicts and attempts, tokens, cost and wall time."""
    run, phases, _ = await store.run_rows(run_id)
    latest = latest_attempts(phases)
    verdicts = await DossierStore(store).gate_evaluations(run_id)
    calls = await store.model_calls(run_id)
    passed = sum(1 for v in verdicts if v.passed)
    return {
        "run_id": run_id,
        "status": run.status.value,
        "error": run.error,
        "phases_total": len(pipeline.phases),
        "phases_passed": sum(1 for p in latest.values() if p.status is PhaseStatus.PASSED),
        "gates": {
            "verdicts": len(verdicts),
            "passed": passed,
            "pass_rate": round(passed / len(verdicts), 4) if verdicts else None,
            "attempts": sum(p.attempt for p in latest.values()),
            "phases_retried": sorted(p.phase for p in latest.values() if p.attempt > 1),
        },
        "model_calls": len(calls),
        "tokens": sum(int(str(c["tokens_in"])) + int(str(c["tokens_out"])) for c in calls),
        "cost_usd": round(sum(float(str(c["cost_usd"])) for c in calls), 6),
        "wall_s": round(_seconds(run.created_at, run.updated_at), 1),
    }


async def latest_artifacts(store: Store, run_id: str) -> dict[str, object]:
    """The content of the latest version of each artifact type of the run."""
    latest: dict[str, ArtifactRecord] = {}
    for record in await store.artifacts(run_id):
        if record.type not in latest or record.version > latest[record.type].version:
            latest[record.type] = record
    return {kind: await store.blob(r.content_hash) for kind, r in sorted(latest.items())}


def product_checkout(
    data_dir: Path, run_id: str, artifacts: Mapping[str, object], dest: Path
) -> Path | None:
    """A checkout of the run's product into ``dest``: the build's commit with every story the
    story loop implemented committed on top (None when the run built no workspace)."""
    recorded = artifacts.get("RepoManifest")
    repo = workspace_dir(data_dir, run_id)
    if not isinstance(recorded, Mapping) or not repo.is_dir():
        return None
    stories = artifacts.get("ImplementedStories")
    items = stories.get("items") if isinstance(stories, Mapping) else None
    commit = RepoManifest.from_json(recorded).commit
    commit_stories(repo, dest, commit, items if isinstance(items, list) else [])
    return dest


def code_text(workspace: Path) -> str:
    """The text of the product's code: every file with a ``CODE_SUFFIXES`` suffix outside
    tests and git's own folder, each headed by its path."""
    parts = []
    for path in sorted(workspace.rglob("*")):
        relative = path.relative_to(workspace)
        if ".git" in relative.parts or "tests" in relative.parts or not path.is_file():
            continue
        if path.suffix in CODE_SUFFIXES:
            parts.append(f"{relative.as_posix()}\n{path.read_text(errors='replace')}")
    return "\n\n".join(parts)


def _score(metric: Mapping[str, object]) -> float:
    return float(str(metric["score"]))


def _seconds(start: str, end: str) -> float:
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()
