"""The SQL of task outputs, model calls, artifacts and content blobs, shared by both
dialects. Each function runs inside the caller's transaction."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ideamine.canonical import canonical_json, content_hash, sha256_hex
from ideamine.errors import StoreCorruptError
from ideamine.stores.queries import Db, load_json
from ideamine.stores.records import ArtifactRecord, ModelCallRecord, NewArtifact, TaskRecord

__all__ = [
    "insert_artifact",
    "insert_model_call",
    "insert_model_calls",
    "insert_output",
    "insert_outputs",
    "recorded_slots",
    "select_artifacts",
    "select_blob",
    "select_model_calls",
    "select_outputs",
]


def recorded_slots(db: Db, tasks: Sequence[TaskRecord]) -> set[tuple[str, str, int, str]]:
    """The (run, phase, attempt, key) slots of ``tasks`` that hold an output already."""
    found: set[tuple[str, str, int, str]] = set()
    runs: dict[str, list[str]] = {}
    for task in tasks:
        runs.setdefault(task.run_id, []).append(task.key)
    for run_id, keys in runs.items():
        marks = ", ".join("?" * len(keys))
        rows = db.query(
            f"SELECT phase, attempt, key FROM task_outputs WHERE run_id = ? AND key IN ({marks})",
            (run_id, *keys),
        )
        found |= {(run_id, str(phase), int(attempt), str(key)) for phase, attempt, key in rows}
    return found


def insert_output(db: Db, task: TaskRecord, output: object, at: str) -> None:
    text = canonical_json(output)
    insert_outputs(db, [(task, text, sha256_hex(text))], at)


def insert_outputs(db: Db, outputs: Sequence[tuple[TaskRecord, str, str]], at: str) -> None:
    """Insert each (task, canonical JSON of its output, that text's hash)."""
    db.query_many(
        "INSERT INTO task_outputs (run_id, phase, attempt, key, task_id, output, "
        "output_hash, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (task.run_id, task.phase, task.attempt, task.key, task.id, text, digest, at)
            for task, text, digest in outputs
        ],
    )


def select_outputs(db: Db, run_id: str, phase: str, attempt: int) -> dict[str, object]:
    rows = db.query(
        "SELECT key, output FROM task_outputs WHERE run_id = ? AND phase = ? AND "
        "attempt = ? ORDER BY key",
        (run_id, phase, attempt),
    )
    return {key: load_json(text, f"task output {run_id}/{phase}/{key}") for key, text in rows}


def insert_model_call(db: Db, run_id: str, task_id: str, call: ModelCallRecord, at: str) -> None:
    insert_model_calls(db, [(run_id, task_id, call)], at)


def insert_model_calls(db: Db, calls: Sequence[tuple[str, str, ModelCallRecord]], at: str) -> None:
    """Insert each (run id, task id, call)."""
    if not calls:
        return
    db.query_many(
        "INSERT INTO model_calls (run_id, task_id, provider, model, prompt_hash, params, "
        "tokens_in, tokens_out, cost_usd, latency_ms, outcome, created_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (
                run_id,
                task_id,
                call.provider,
                call.model,
                call.prompt_hash,
                canonical_json(call.params),
                call.tokens_in,
                call.tokens_out,
                call.cost_usd,
                call.latency_ms,
                call.outcome,
                at,
            )
            for run_id, task_id, call in calls
        ],
    )


def select_model_calls(db: Db, run_id: str) -> list[dict[str, object]]:
    rows = db.query(
        "SELECT m.task_id, t.phase, t.attempt, t.key, m.provider, m.model, "
        "m.prompt_hash, m.tokens_in, m.tokens_out, m.cost_usd, m.latency_ms, m.outcome "
        "FROM model_calls m JOIN tasks t ON t.id = m.task_id WHERE m.run_id = ? "
        "ORDER BY m.id",
        (run_id,),
    )
    names = (
        "task_id",
        "phase",
        "attempt",
        "key",
        "provider",
        "model",
        "prompt_hash",
        "tokens_in",
        "tokens_out",
        "cost_usd",
        "latency_ms",
        "outcome",
    )
    return [dict(zip(names, row, strict=True)) for row in rows]


def call_totals(calls: Sequence[Mapping[str, object]]) -> dict[str, object]:
    """What a finished run's event tells of its model calls (``select_model_calls`` rows):
    tokens in and out, the cost in USD and how many calls."""
    return {
        "tokens": sum(int(str(c["tokens_in"])) + int(str(c["tokens_out"])) for c in calls),
        "cost_usd": round(sum(float(str(c["cost_usd"])) for c in calls), 6),
        "model_calls": len(calls),
    }


def insert_artifact(
    db: Db, run_id: str, phase: str, attempt: int, artifact: NewArtifact, artifact_id: str, at: str
) -> ArtifactRecord:
    text = canonical_json(artifact.content)
    digest = sha256_hex(text)
    # content-addressed: a blob another transaction is writing (an identical artifact of a
    # phase fanning in beside this one) is waited for, and then kept as it is
    db.query(
        "INSERT INTO blobs (hash, content) VALUES (?, ?) ON CONFLICT (hash) DO NOTHING",
        (digest, text),
    )
    rows = db.query(
        "SELECT COALESCE(MAX(version), 0) + 1 FROM artifacts WHERE run_id = ? AND type = ?",
        (run_id, artifact.type),
    )
    version = int(rows[0][0])
    db.query(
        "INSERT INTO artifacts (id, run_id, phase, attempt, type, version, content_hash, "
        "provenance, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            artifact_id,
            run_id,
            phase,
            attempt,
            artifact.type,
            version,
            digest,
            canonical_json(artifact.provenance),
            at,
        ),
    )
    return ArtifactRecord(
        id=artifact_id,
        run_id=run_id,
        phase=phase,
        attempt=attempt,
        type=artifact.type,
        version=version,
        content_hash=digest,
        provenance=artifact.provenance,
        created_at=at,
    )


def select_artifacts(db: Db, run_id: str) -> list[ArtifactRecord]:
    rows = db.query(
        "SELECT id, run_id, phase, attempt, type, version, content_hash, "
        "provenance, created_at FROM artifacts WHERE run_id = ? "
        "ORDER BY created_at, type, version",
        (run_id,),
    )
    return [
        ArtifactRecord(
            id=r[0],
            run_id=r[1],
            phase=r[2],
            attempt=r[3],
            type=r[4],
            version=r[5],
            content_hash=r[6],
            provenance=load_json(r[7], f"artifact {r[0]}"),
            created_at=r[8],
        )
        for r in rows
    ]


def select_blob(db: Db, digest: str) -> object:
    rows = db.query("SELECT content FROM blobs WHERE hash = ?", (digest,))
    if not rows:
        raise StoreCorruptError(f"blob {digest} is missing", hint="restore from a backup")
    value = load_json(rows[0][0], f"blob {digest}")
    if content_hash(value) != digest:
        raise StoreCorruptError(
            f"blob {digest} does not match its hash (edited?)", hint="restore from a backup"
        )
    return value
