"""What a run has used against its budgets, and the budget's writes: announcements (warning,
throttled) appended once each, and the pause when a call would exceed a budget.

A store extension: its SQL lives here, inside ``ideamine.stores`` (invariant 5), and runs
through ``SqlStore.run_in_transaction`` (reads through ``run_read``). A budget check reads
everything it needs in one transaction (``read``). The throttle flag (``budget_throttled``
in the run's options) is set in the same transaction as the ``budget.throttled`` event, so
every worker reads the same answer with one indexed query (``throttled_runs``); ``resume
--add-budget`` clears it with its ``budget.added`` event.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ideamine.canonical import canonical_json
from ideamine.engine.budget import Level
from ideamine.engine.states import RunStatus, TaskStatus
from ideamine.stores import outputs as o
from ideamine.stores import queries as q
from ideamine.stores import task_queries as tq
from ideamine.stores.base import Store
from ideamine.stores.checked import escalate, fenced, require_run
from ideamine.stores.records import EventDraft, ModelCallRecord
from ideamine.stores.sqlstore import SqlStore
from ideamine.stores.task_queries import THROTTLED_OPTION

__all__ = ["THROTTLED_OPTION", "UsageRows", "UsageStore"]

ANNOUNCED = (Level.WARN.event, Level.THROTTLE.event)
# the events a budget check reads: its own, and what starts and ends a pause (wall clock)
BUDGET_EVENTS = (
    *ANNOUNCED,
    Level.EXCEED.event,
    "budget.added",
    "run.paused",
    "run.needs_attention",
    "run.resumed",
    "run.started",
)


@dataclass(frozen=True, slots=True, kw_only=True)
class UsageRows:
    """A run's usage as stored, read in one transaction."""

    calls: tuple[tuple[str, str, int, float], ...]  # (phase, task id, tokens, USD) per task
    phases: tuple[tuple[str, str, str | None], ...]  # (phase, started_at, finished_at)
    events: tuple[tuple[str, str, Mapping[str, Any]], ...]  # (type, at, payload), id order
    tool_outputs: tuple[tuple[str, object], ...]  # (phase, output) that report durations
    options: Mapping[str, Any]  # the run's options (``added_budget``, the throttle flag)
    now: float  # the store's clock when read: the times above were written by it

    @property
    def marks(self) -> frozenset[str]:
        """Marks of the warnings and throttles already announced."""
        return frozenset(
            str(payload.get("mark")) for kind, _, payload in self.events if kind in ANNOUNCED
        )


class UsageStore:
    """Budget reads and writes on a SQL store."""

    def __init__(self, store: Store) -> None:
        if not isinstance(store, SqlStore):
            raise TypeError("budgets need a SQL store")
        self._store = store

    async def read(self, run_id: str, *, skip_agents: Sequence[str] = ()) -> UsageRows:
        """The run's usage; outputs of ``skip_agents`` (the gate judge, which quotes other
        tasks' evidence) and carried-over outputs are not counted as tool time again."""
        now = self._store._clock.now()
        return await self._store.run_read(lambda db: _read(db, run_id, skip_agents, now))

    async def announce(self, run_id: str, drafts: Sequence[EventDraft]) -> list[EventDraft]:
        """Append each draft whose ``mark`` is not in the ledger yet (checked under the run's
        lock, so two workers never announce the same crossing); a ``budget.throttled`` also
        sets the throttle flag. Returns the drafts appended."""

        def work(db: q.Db) -> list[EventDraft]:
            at = self._store._now()
            db.lock_run(run_id)
            have = {str(p.get("mark")) for kind, _, p in _events(db, run_id) if kind in ANNOUNCED}
            fresh = []
            for draft in drafts:
                mark = str(draft.payload.get("mark"))
                if mark not in have:
                    have.add(mark)
                    fresh.append(draft)
                    q.append_event(db, run_id, draft, at)
            if any(draft.type == Level.THROTTLE.event for draft in fresh):
                _set_option(db, run_id, THROTTLED_OPTION, True, at)
            return fresh

        return await self._store.run_in_transaction(work)

    async def pause(
        self,
        task_id: str,
        token: str,
        *,
        calls: Sequence[ModelCallRecord],
        exceeded: EventDraft,
        reason: str,
    ) -> bool:
        """A call would exceed a budget: in one transaction, record the task's calls so far,
        hand the task back untouched (pending, its try not counted) and, if the run is still
        running, append ``exceeded`` and move the run to ``needs_attention``. Returns True if
        this call paused the run (False: someone paused it first).

        Raises:
            StaleLeaseError: ``token`` no longer holds the task.
        """

        def work(db: q.Db) -> bool:
            at = self._store._now()
            task = fenced(db, task_id, token)
            for call in calls:
                o.insert_model_call(db, task.run_id, task_id, call, at)
            _hand_back(db, task_id)
            running = require_run(db, task.run_id).status is RunStatus.RUNNING
            if running:
                q.append_event(db, task.run_id, exceeded, at)
                escalate(db, task.run_id, reason, at)
            retry = {"key": task.key, "agent": task.agent, "strategy": "budget", "reason": reason}
            draft = EventDraft(type="task.retry", phase=task.phase, task_id=task_id, payload=retry)
            q.append_event(db, task.run_id, draft, at)
            return running

        return await self._store.run_in_transaction(work)

    async def throttled_runs(self, run_id: str | None = None) -> frozenset[str]:
        """Running runs (or just ``run_id``) whose concurrency is halved."""
        return await self._store.run_read(lambda db: tq.select_throttled(db, run_id))


def _read(db: q.Db, run_id: str, skip_agents: Sequence[str], now: float) -> UsageRows:
    calls = db.query(
        "SELECT t.phase, m.task_id, COALESCE(SUM(m.tokens_in + m.tokens_out), 0), "
        "COALESCE(SUM(m.cost_usd), 0) FROM model_calls m JOIN tasks t ON t.id = m.task_id "
        "WHERE m.run_id = ? GROUP BY t.phase, m.task_id",
        (run_id,),
    )
    phases = db.query(
        "SELECT phase, started_at, finished_at FROM phases WHERE run_id = ? ORDER BY started_at",
        (run_id,),
    )
    return UsageRows(
        calls=tuple((str(p), str(t), int(str(n)), float(str(u))) for p, t, n, u in calls),
        phases=tuple((str(p), str(s), None if f is None else str(f)) for p, s, f in phases),
        events=tuple(_events(db, run_id)),
        tool_outputs=tuple(_tool_outputs(db, run_id, skip_agents)),
        options=_options(db, run_id),
        now=now,
    )


def _events(db: q.Db, run_id: str) -> list[tuple[str, str, Mapping[str, Any]]]:
    marks = ", ".join("?" for _ in BUDGET_EVENTS)
    rows = db.query(
        f"SELECT type, at, payload FROM events WHERE run_id = ? AND type IN ({marks}) ORDER BY id",
        (run_id, *BUDGET_EVENTS),
    )
    found: list[tuple[str, str, Mapping[str, Any]]] = []
    for kind, at, text in rows:
        payload = q.load_json(str(text), f"event payload of run {run_id}")
        found.append((str(kind), str(at), payload if isinstance(payload, dict) else {}))
    return found


def _tool_outputs(db: q.Db, run_id: str, skip_agents: Sequence[str]) -> list[tuple[str, object]]:
    """Outputs that mention ``duration_ms`` (a cheap filter; the caller finds the evidence
    envelopes), not carried over from an earlier attempt (counted there already)."""
    skip = "".join(" AND t.agent <> ?" for _ in skip_agents)
    rows = db.query(
        "SELECT o.phase, o.output FROM task_outputs o JOIN tasks t ON t.id = o.task_id "
        "WHERE o.run_id = ? AND o.output LIKE ? AND t.input NOT LIKE ?" + skip,
        (run_id, '%"duration_ms"%', '%"carried_from"%', *skip_agents),
    )
    return [
        (str(phase), q.load_json(str(text), f"task output of run {run_id}")) for phase, text in rows
    ]


def _options(db: q.Db, run_id: str) -> dict[str, Any]:
    rows = db.query("SELECT options FROM run_options WHERE run_id = ?", (run_id,))
    loaded = q.load_json(str(rows[0][0]), f"run_options of run {run_id}") if rows else {}
    return dict(loaded) if isinstance(loaded, dict) else {}


def _set_option(db: q.Db, run_id: str, key: str, value: object, at: str) -> None:
    merged = {**_options(db, run_id), key: value}
    db.query(
        "INSERT INTO run_options (run_id, options, updated_at) VALUES (?, ?, ?) "
        "ON CONFLICT (run_id) DO UPDATE SET options = excluded.options, "
        "updated_at = excluded.updated_at",
        (run_id, canonical_json(merged), at),
    )


def _hand_back(db: q.Db, task_id: str) -> None:
    """Back to pending as if never claimed: the try it used is given back."""
    db.query(
        "UPDATE tasks SET status = ?, tries = CASE WHEN tries > 0 THEN tries - 1 ELSE 0 END, "
        "lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL, not_before = 0, "
        "revision = ? WHERE id = ?",
        (TaskStatus.PENDING.value, db.next_task_revision(), task_id),
    )
