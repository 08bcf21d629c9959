"""The runner: ask the engine what happens next, do it, repeat — for one run in this
process (``drive``) or for every run in the store (``serve``, the worker).

Resume is the same loop: it reads the run's rows and asks the engine again, so no finished
task runs twice (its output row exists) and no phase is judged twice. Side tasks (the reaper)
run under the loop and stop with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
from collections.abc import Coroutine, Sequence
from pathlib import Path

from ideamine.clock import Clock, SystemClock
from ideamine.config.model import PipelineSpec
from ideamine.engine.states import RunStatus, TaskStatus
from ideamine.errors import (
    FinishingRefusedError,
    IllegalTransitionError,
    RowsExistError,
    RunStateError,
    StaleLeaseError,
    StoreError,
    UsageError,
)
from ideamine.llm.registry import Providers
from ideamine.runtime import DEFAULT_CONCURRENCY
from ideamine.runtime.budget import claim_within_budget
from ideamine.runtime.bundles import Bundle, Bundles
from ideamine.runtime.finishing import Finishing
from ideamine.runtime.identity import process_owner
from ideamine.runtime.preload import preload
from ideamine.runtime.reaper import reap
from ideamine.stores.base import Store
from ideamine.stores.records import (
    ClaimedTask,
    ClaimRequest,
    EventDraft,
    OutputWrite,
    RunRecord,
)

__all__ = ["DEFAULT_CONCURRENCY", "Runner"]

log = logging.getLogger(__name__)
POLL_SECONDS = 0.25
ADVANCE_LEASE_SECONDS = 30.0
MAX_CONFLICTS = 3  # steps in a row that found the run moved on before that is a bug
_LIVE = (RunStatus.CREATED, RunStatus.RUNNING)


class Runner:
    """Executes runs with bounded concurrency in this process."""

    def __init__(
        self,
        store: Store,
        pipeline: PipelineSpec | None = None,
        *,
        concurrency: int = DEFAULT_CONCURRENCY,
        clock: Clock | None = None,
        providers: Providers | None = None,
        owner: str | None = None,
        poll_seconds: float = POLL_SECONDS,
        grace_seconds: float = 30.0,
        advance_seconds: float = ADVANCE_LEASE_SECONDS,
        data_dir: Path | None = None,
    ) -> None:
        self.store = store
        self.concurrency = concurrency
        self.owner = owner or process_owner()
        self.poll_seconds = poll_seconds
        self.grace_seconds = grace_seconds
        self.advance_seconds = advance_seconds
        self._clock = clock or SystemClock()
        self._bundles = Bundles(store, self._clock, providers or Providers(), data_dir)
        if pipeline is not None:
            self._bundles.add(pipeline)
        self._inflight: dict[asyncio.Task[None], ClaimedTask] = {}
        self._held: dict[str, float] = {}  # run id → when our advance lease needs renewing
        self._touched: set[str] = set()  # runs whose bundle we used: what `_forget` drops
        self._conflicts: dict[str, int] = {}  # run id → steps in a row overtaken (`_overtaken`)
        self._scope: str | None = None  # the run `drive` is limited to; None when serving
        self._driving: tuple[RunRecord, Bundle] | None = None  # `drive`'s run, as last read
        self._quiet: set[str] = set()  # task ids whose ending needs no turn (`_ride`)
        self._stopping = False  # winding down: tasks claimed now are handed back, not run
        self._unstarted: list[ClaimedTask] = []  # claimed while stopping (`_Lessee.take`)
        self._retried = store.retried_writes  # the store's count this runner has acted on

    async def drive(self, run_id: str) -> RunRecord:
        """Run ``run_id`` here until it completes, fails, or is paused or cancelled.

        In-flight tasks of a paused run finish first; those of a failed or cancelled run
        are cancelled and handed back.
        """
        run = await self.store.get_run(run_id)
        if run.status is RunStatus.CREATED:
            await self._start(run)
        recorder = self._bundles.recorder
        recorder.rider = self._ride  # a phase's last outputs go with its fan-in
        recorder.writer = self._record  # the others claim the next tasks as they are written
        try:
            await self._supervised(self._loop(run_id, None))
        finally:
            recorder.rider = None
            recorder.writer = None
            self._driving = None
            await self._wind_down(run_id)
        return await self.store.get_run(run_id)

    async def serve(self, stop: asyncio.Event) -> None:
        """Work on every live run in the store until ``stop`` is set, then stop claiming,
        let in-flight tasks finish for up to ``grace_seconds``, and hand the rest back."""
        try:
            await self._supervised(self._loop(None, stop))
        finally:
            await self._wind_down(None)

    # -- the loop -------------------------------------------------------------------------

    async def _supervised(self, main: Coroutine[object, object, None]) -> None:
        """Run ``main`` with the reaper beside it; whichever fails first stops both, and its
        error propagates (never swallowed)."""
        work = asyncio.create_task(main, name="runner loop")
        reaper = asyncio.create_task(self._reap_forever(), name="reaper")
        try:
            await asyncio.wait([work, reaper], return_when=asyncio.FIRST_COMPLETED)
        finally:
            for side in (reaper, work):
                if not side.done():
                    side.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await side
        if reaper.done() and not reaper.cancelled():
            reaper.result()
        work.result()

    async def _loop(self, scope: str | None, stop: asyncio.Event | None) -> None:
        self._scope = scope
        while stop is None or not stop.is_set():
            runs = await self._runs(scope)
            live = {run.id for run in runs if run.status in _LIVE}
            await self._forget_left(live)
            if scope is not None and scope not in live:
                return
            dropped = await self._drop_dead_work(live)
            advanced = [await self._advance(run) for run in runs]
            steps = {step for step, _ in advanced}
            # Driving one run, a step that created tasks claimed the run's claimable tasks as
            # it did (`_Lessee`), up to this process's room: a claim now would find none.
            claimed = any(taken for _, taken in advanced)
            if not claimed:
                claimed = await self._claim(scope, runs)
            if self.store.retried_writes != self._retried:  # a lost commit may hold tasks
                await self._release_unrun(live)
            if dropped or _Step.AGAIN in steps or (_Step.ACTED in steps and not claimed):
                continue  # what was done may open more: a finished run, tasks to claim
            await self._idle(scope, stop)  # until a claimed task ends (or a poll interval)

    async def _runs(self, scope: str | None) -> list[RunRecord]:
        if scope is not None:
            return [await self.store.get_run(scope)]
        return await self.store.active_runs()

    async def _advance(self, run: RunRecord) -> tuple[_Step, int]:
        """One engine step for ``run`` if this process holds (or can take) its advance lease:
        what it did, and how many tasks it created and claimed for this process."""
        if run.status not in _LIVE or not await self._hold(run):
            return _Step.NOTHING, 0
        if run.status is RunStatus.CREATED:
            await self._start(run)
            return _Step.AGAIN, 0
        bundle = await self._bundle(run)
        if bundle is None:
            return _Step.NOTHING, 0
        # Serving every run, claims stay oldest first across runs (`_claim`).
        lessee = _Lessee(self, run, bundle) if self._scope is not None else None
        self._driving = (run, bundle) if self._scope is not None else None
        try:
            acted = await bundle.advancer.advance(run.id, lessee)
        except (IllegalTransitionError, RowsExistError) as exc:
            self._overtaken(run.id, exc)
            step = _Step.AGAIN
        else:
            self._conflicts.pop(run.id, None)
            step = _Step.ACTED if acted else _Step.NOTHING
        return step, lessee.taken if lessee else 0

    def _overtaken(
        self,
        run_id: str,
        exc: IllegalTransitionError | RowsExistError | FinishingRefusedError,
    ) -> None:
        """A step's action found the run moved on since the step read it: another process
        advanced it while this one's lease lapsed (a connection lost for longer than the
        lease), or the store retried a commit whose reply was lost (a state change refused
        as illegal, or rows to insert found stored). The step's retry wrote nothing (what
        the lost commit wrote stands); the next step reads the run again, once the lease is
        taken again through the store. The same conflict step after step is a bug, and
        raised."""
        self._held.pop(run_id, None)
        self._conflicts[run_id] = self._conflicts.get(run_id, 0) + 1
        if self._conflicts[run_id] > MAX_CONFLICTS:
            raise exc
        log.warning("run %s moved on under this step (%s); reading it again", run_id, exc)

    async def _ride(self, writes: Sequence[OutputWrite]) -> bool:
        """Hand outputs that finish a phase attempt of the run being driven (all tasks this
        process holds) to its advancer, to be recorded in the transaction that fans the
        attempt in (``Advancer.ride``); False to record them on their own."""
        run_id, driving = self._scope, self._driving
        if run_id is None or driving is None or self._held.get(run_id, 0.0) <= self._clock.now():
            return False  # not driving, or the advance lease may lapse: a step of its own
        held = {item.task.id: item.task for item in self._inflight.values()}
        tasks = [held[write.task_id] for write in writes if write.task_id in held]
        finishing = Finishing.of(writes, tasks)
        if finishing is None or finishing.run_id != run_id:
            return False
        run, bundle = driving
        lessee = _Lessee(self, run, bundle)
        try:
            ridden = await bundle.advancer.ride(finishing, lessee)
        except (IllegalTransitionError, FinishingRefusedError, RowsExistError) as exc:
            self._overtaken(run_id, exc)  # nothing written, or what a lost commit wrote stands
            return False
        except Exception:  # any other failure: recorded alone, the loop's own step meets it
            log.warning(
                "run %s: the fan-in its outputs were to go with failed; recording them alone",
                run_id,
                exc_info=True,
            )
            return False
        if ridden is None:
            return False
        if not ridden.again and lessee.started_all():
            # the step those tasks' ending calls for is done: no turn of the loop for them
            self._quiet |= finishing.task_ids
        return True

    async def _record(self, writes: Sequence[OutputWrite]) -> Sequence[StoreError | None]:
        """Record outputs the rider declined and, in the same transaction, claim the run's
        next tasks for the slots they free (and those free already), as the loop's claim
        would a moment later: one commit where there were two."""
        run_id, driving = self._scope, self._driving
        if run_id is None or driving is None:
            return await self.store.record_outputs(writes)
        run, bundle = driving
        held = {item.task.id for item in self._inflight.values()}
        lessee = _Lessee(self, run, bundle)
        claim = lessee.request(freeing=sum(1 for write in writes if write.task_id in held))
        if claim is None:
            return await self.store.record_outputs(writes)
        errors, claimed = await self.store.record_outputs_claiming(writes, run_id, claim)
        lessee.take(claimed)
        return errors

    async def _release_unrun(self, live: set[str]) -> None:
        """The store carried a write out again after losing its connection: the lost attempt
        may have claimed tasks for this process (a claim, or a step that creates tasks and
        claims them) that it never learned of. Hand back those it is not running, at once
        and without counting a stall, rather than let their leases lapse."""
        self._retried = self.store.retried_writes
        running = {item.task.id for item in self._inflight.values()}
        for run_id in sorted(live):
            released = await self.store.release_unrun(
                run_id,
                owner=self.owner,
                running=running,
                reason="claimed by a commit whose reply was lost",
            )
            if released:
                log.warning(
                    "run %s: handed back %d task(s) a lost commit claimed", run_id, len(released)
                )

    async def _bundle(self, run: RunRecord) -> Bundle | None:
        """The run's bundle. A worker that cannot build it (a missing API key, a pinned
        config this version rejects) fails that run with the reason and carries on with the
        others; ``drive`` lets the error reach the person who started it."""
        self._touched.add(run.id)  # every path that caches a run's rows passes here first
        try:
            return await self._bundles.for_run(run)
        except UsageError as exc:
            if self._scope is not None:
                raise
            log.warning("run %s cannot be carried out here: %s", run.id, exc)
            await self.store.set_run_status(
                run.id,
                RunStatus.FAILED,
                EventDraft(type="run.failed", payload={"reason": str(exc), "worker": self.owner}),
                error=str(exc),
            )
            return None

    async def _drop_dead_work(self, live: set[str]) -> bool:
        """Cancel and hand back in-flight tasks of runs that were cancelled or failed (by a
        signal or another process); a paused run's tasks are left to finish."""
        dropped = False
        for job, item in list(self._inflight.items()):
            if item.task.run_id in live or job.done():
                continue
            run = await self.store.get_run(item.task.run_id)
            if run.status in (RunStatus.CANCELLED, RunStatus.FAILED):
                job.cancel()
                with contextlib.suppress(asyncio.CancelledError, StaleLeaseError):
                    await job
                with contextlib.suppress(StaleLeaseError):
                    await self.store.release_task(
                        item.task.id, item.lease_token, reason=f"the run was {run.status}"
                    )
                del self._inflight[job]
                dropped = True
        return dropped

    async def _forget_left(self, live: set[str]) -> None:
        """Forget the runs that left ``running`` (completed, failed, cancelled, paused or
        needing attention) once none of their tasks is in flight here, so a long-lived worker
        keeps nothing per finished run; a resumed run fills the caches again."""
        busy = {item.task.run_id for item in self._inflight.values()}
        for run_id in self._touched - live - busy:
            await self._forget(run_id)

    async def _forget(self, run_id: str) -> None:
        """Drop ``run_id`` from this runner's caches and give its advance lease up."""
        if self._held.pop(run_id, None) is not None:
            await self.store.release_advance(run_id, owner=self.owner)
        self._bundles.forget(run_id)
        self._touched.discard(run_id)
        self._conflicts.pop(run_id, None)

    async def _hold(self, run: RunRecord) -> bool:
        """Take or renew the run's advance lease. It lasts as long as the run's shortest task
        lease (heartbeat interval × missed beats, at most ``advance_seconds``), so when its
        holder dies another process takes over about as fast as it takes over tasks."""
        now = self._clock.now()
        if self._held.get(run.id, 0.0) > now:
            return True
        bundle = await self._bundle(run)  # built (and cached) before the first hold
        if bundle is None:
            return False
        seconds = self._lease_seconds(bundle)
        held = await self.store.hold_advance(run.id, owner=self.owner, seconds=seconds, now=now)
        self._note_hold(run.id, held, now, seconds)
        return held

    def _lease_seconds(self, bundle: Bundle) -> float:
        """How long an advance lease lasts: the run's shortest task lease, at most
        ``advance_seconds``."""
        return min(self.advance_seconds, bundle.shortest_lease)

    def _note_hold(self, run_id: str, held: bool, now: float, seconds: float) -> None:
        """Remember until when the lease just taken counts as held here (a third of it:
        renewed well before it lapses), or forget it."""
        if held:
            self._held[run_id] = now + seconds / 3
        else:
            self._held.pop(run_id, None)

    async def _claim(self, scope: str | None, runs: list[RunRecord]) -> bool:
        # a run over 80 % of a budget gets half this process's concurrency (runtime.budget)
        claimed = await claim_within_budget(
            self.store,
            scope,
            owner=self.owner,
            now=self._clock.now(),
            free=self._free(),
            concurrency=self.concurrency,
            held=[item.task.run_id for item in self._inflight.values()],
        )
        # The runs as read this turn: an executor takes a run's id, idea and constraints from
        # its record, and its bundle by manifest hash (changed only by a repin on resume).
        known = {run.id: run for run in runs}
        for item in claimed:
            if item.task.run_id not in known:
                known[item.task.run_id] = await self.store.get_run(item.task.run_id)
            run = known[item.task.run_id]
            bundle = await self._bundle(run)
            if bundle is None:
                await self.store.release_task(
                    item.task.id, item.lease_token, reason="its run cannot be carried out here"
                )
                continue
            self._execute(run, bundle, item)
        return bool(claimed)

    def _free(self) -> int:
        """How many more tasks this process may run now."""
        return self.concurrency - len(self._inflight)

    def _execute(self, run: RunRecord, bundle: Bundle, item: ClaimedTask) -> None:
        """Run a task this process claimed, as an asyncio task of its own."""
        job = asyncio.create_task(bundle.executor.execute(run, item), name=item.task.key)
        self._inflight[job] = item

    async def _idle(self, scope: str | None, stop: asyncio.Event | None) -> None:
        """Wait for a task to finish, for other processes' work, or a poll interval."""
        if self._inflight:
            preload()  # while the tasks wait: what checks their outputs (once per process)
            while self._inflight:
                done, _ = await asyncio.wait(
                    self._inflight,
                    timeout=self.poll_seconds * 4,
                    return_when=asyncio.FIRST_COMPLETED,
                )
                if not self._collect(done):
                    return
            return
        if scope is not None:
            await self._check_not_stuck(scope)
        waiter = asyncio.create_task(self.store.wait_for_work(self.poll_seconds))
        stopper = asyncio.create_task(stop.wait()) if stop else None
        await asyncio.wait([t for t in (waiter, stopper) if t], return_when=asyncio.FIRST_COMPLETED)
        for pending in (waiter, stopper):
            if pending and not pending.done():
                pending.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await pending

    def _collect(self, done: set[asyncio.Task[None]]) -> bool:
        """Take finished tasks out of flight; whether there were some and every one ended
        quietly (its output went with a fan-in whose step left nothing to do, ``_ride``):
        then the loop need not turn, and the next tasks start without its reads in between."""
        quiet = bool(done)
        for job in done:
            item = self._inflight.pop(job, None)
            if item is None and job.cancelled():  # revoked (`_Lessee.revoke`): no trace
                quiet = False
                continue
            if item is None or item.task.id not in self._quiet:
                quiet = False
            else:
                self._quiet.discard(item.task.id)
            job.result()  # re-raise anything unexpected (store failures): never swallowed
        return quiet

    async def _check_not_stuck(self, run_id: str) -> None:
        """Fail loudly instead of waiting forever if the engine has nothing left to do."""
        run, _, tasks = await self.store.run_rows(run_id)
        waiting = any(t.status in (TaskStatus.PENDING, TaskStatus.RUNNING) for t in tasks)
        if run.status is not RunStatus.RUNNING or waiting or not await self._hold(run):
            return  # a retry falls due later, another process holds a task, or the run moved
        bundle = await self._bundles.for_run(run)
        try:
            acted = await bundle.advancer.advance(run_id)
        except (IllegalTransitionError, RowsExistError) as exc:
            self._overtaken(run_id, exc)
            return  # it moved on: the loop reads it again
        if not acted:
            raise RunStateError(
                run_id,
                "the run has nothing to do but is not finished",
                hint="this is a bug in IdeaMine; `ideamine events RUN` shows the ledger so far",
            )

    # -- start, side tasks, shutdown ------------------------------------------------------

    async def _start(self, run: RunRecord) -> None:
        """Set ``run`` running, taking its advance lease in the same transaction (one commit
        fewer before its first step), unless another process holds it."""
        bundle = await self._bundle(run)  # built (and cached) before the first hold
        if bundle is None:  # (a worker failed the run: it cannot be carried out here)
            return
        seconds = self._lease_seconds(bundle)
        now = self._clock.now()
        held = await self.store.start_run(
            run.id,
            EventDraft(
                type="run.started", payload={"driver": self.owner, "concurrency": self.concurrency}
            ),
            driver=self.owner,
            seconds=seconds,
            now=now,
        )
        self._note_hold(run.id, held, now, seconds)

    async def _reap_forever(self) -> None:
        while True:
            await asyncio.sleep(self.poll_seconds * 4)
            await reap(self.store, self._bundles, self._clock)

    async def _wind_down(self, scope: str | None) -> None:
        """Let in-flight tasks finish (paused runs, graceful stop), else hand them back."""
        self._stopping = True
        try:
            await self._hand_back(scope)
        finally:
            self._stopping = False
            self._quiet.clear()

    async def _hand_back(self, scope: str | None) -> None:
        """``_wind_down``'s work, with nothing claimed meanwhile started (``_Lessee.take``)."""
        # whether a paused run's tasks finish first (read only when some are in flight)
        driven = await self.store.get_run(scope) if scope and self._inflight else None
        keep = driven is not None and driven.status is RunStatus.PAUSED
        timeout = None if keep else (self.grace_seconds if scope is None else 0)
        if self._inflight and timeout != 0:
            done, _ = await asyncio.wait(self._inflight, timeout=timeout)
            self._collect(done)
        for job, item in list(self._inflight.items()):
            if not job.done():
                job.cancel()
            try:
                await job
            except (asyncio.CancelledError, StaleLeaseError):
                pass
            except Exception:  # winding down anyway: keep handing the rest back
                log.warning("task %s failed while stopping", item.task.id, exc_info=True)
        # A task cancelled while its output waited in the recorder still has it written:
        # first, so handing the task back below cannot make that write stale.
        await self._bundles.recorder.drain()
        for job, item in list(self._inflight.items()):
            if job.cancelled():  # a task whose output was written is no longer ours: stale
                with contextlib.suppress(StaleLeaseError):
                    await self.store.release_task(
                        item.task.id, item.lease_token, reason="the process stopped"
                    )
        self._inflight.clear()
        # tasks a ride claimed while the recorder was drained (``_Lessee.take``)
        for item in self._unstarted:
            with contextlib.suppress(StaleLeaseError):
                await self.store.release_task(
                    item.task.id, item.lease_token, reason="the process stopped"
                )
        self._unstarted.clear()
        # a completed or cancelled run's advance lease went with the write that ended it
        # (``queries.update_run``): no write to give it up
        ended = driven.id if driven and driven.status.final else None
        for run_id in list(self._held):
            if run_id != ended:
                await self.store.release_advance(run_id, owner=self.owner)
        self._held.clear()


class _Lessee:
    """Claims, for the runner driving ``run``, the run's tasks in the transaction of a step
    that creates tasks (``actions.Lessee``), within the runner's room, and starts them."""

    def __init__(self, runner: Runner, run: RunRecord, bundle: Bundle) -> None:
        self._runner = runner
        self._run = run
        self._bundle = bundle
        self.taken = 0
        self._limit: int | None = None  # the last claim's limit (None: none was made)

    def started_all(self) -> bool:
        """Whether the step started tasks and its claim took fewer than it could: none of
        them is left waiting (a step that started nothing, a verdict that stopped the run
        or found it paused, is no step to let pass without a turn of the loop)."""
        return self._limit is not None and 0 < self.taken < self._limit

    def request(self, freeing: int = 0) -> ClaimRequest | None:
        """The claim for this runner's room; ``freeing``: tasks in flight whose outputs the
        same transaction records (their slots are free once it commits)."""
        runner = self._runner
        free = runner._free() + freeing
        if free <= 0 or runner._stopping:
            self._limit = None
            return None
        self._limit = free
        return ClaimRequest(
            owner=runner.owner,
            now=runner._clock.now(),
            limit=free,
            concurrency=runner.concurrency,
            # driving one run: every task it holds is the run's
            held=len(runner._inflight) - freeing,
        )

    def take(self, claimed: Sequence[ClaimedTask]) -> None:
        runner = self._runner
        for item in claimed:
            if runner._stopping:  # a ride committed as the runner stopped: handed back
                runner._unstarted.append(item)
            else:
                runner._execute(self._run, self._bundle, item)
        self.taken += len(claimed)

    def revoke(self, claimed: Sequence[ClaimedTask]) -> None:
        if not claimed:
            return
        runner = self._runner
        revoked = {(item.task.id, item.lease_token) for item in claimed}
        for job, item in list(runner._inflight.items()):
            if (item.task.id, item.lease_token) in revoked:
                job.cancel()  # it waits at its first store call (`stores.ahead`)
                del runner._inflight[job]
        runner._unstarted = [
            item for item in runner._unstarted if (item.task.id, item.lease_token) not in revoked
        ]
        self.taken -= len(claimed)


class _Step(enum.Enum):
    """What an advance step did, for the loop to choose between turning again and waiting."""

    NOTHING = "nothing"
    ACTED = "acted"  # what it opened moves on once tasks end (or is claimed in the same turn)
    AGAIN = "again"  # a run started or a step was overtaken: look again at once
