"""Everything needed to work on runs pinned to one configuration, cached by manifest hash.

A worker may serve runs pinned to different configurations; each run's pipeline is built
from the configuration stored with the run (its compiled form when this code wrote it, else
its texts), so any worker on any machine agrees with the process that started it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ideamine.agents.base import Agent, AgentContext, AgentResult
from ideamine.agents.builtin import build_agent
from ideamine.clock import Clock
from ideamine.config.compiled import run_pipeline
from ideamine.config.model import AgentSpec, PipelineSpec
from ideamine.engine.plan import GATE_AGENT
from ideamine.llm.registry import Providers
from ideamine.runtime.advance import Advancer
from ideamine.runtime.context import BlobCache
from ideamine.runtime.executor import TaskExecutor
from ideamine.runtime.paths import data_dir_for
from ideamine.runtime.recorder import Recorder
from ideamine.stores.base import Store
from ideamine.stores.records import RunRecord

__all__ = ["Bundle", "Bundles"]


@dataclass(frozen=True, slots=True)
class Bundle:
    pipeline: PipelineSpec
    executor: TaskExecutor
    advancer: Advancer

    @property
    def shortest_lease(self) -> float:
        """The shortest task lease of the pipeline (heartbeat interval × missed beats)."""
        return min(
            p.heartbeat.interval_seconds * p.heartbeat.stall_after_missed
            for p in self.pipeline.phases
        )


class _Judge:
    """The gate judge (``runtime.judge.GateJudge``), made when a gate task first needs it: a
    run's first agents start without the judge's imports (Q/A/V, the guards, ~13 ms), which
    ``runtime.preload`` does while they run."""

    def __init__(
        self, pipeline: PipelineSpec, agents: dict[str, Agent], providers: Providers
    ) -> None:
        self._made: tuple[PipelineSpec, dict[str, Agent], Providers] = (pipeline, agents, providers)
        self._judge: Agent | None = None

    @property
    def spec(self) -> AgentSpec:
        return self._agent().spec

    async def run(self, ctx: AgentContext) -> AgentResult:
        return await self._agent().run(ctx)

    def _agent(self) -> Agent:
        if self._judge is None:
            from ideamine.runtime.judge import GateJudge  # noqa: PLC0415

            self._judge = GateJudge(*self._made)
        return self._judge


class Bundles:
    """Bundles by manifest hash."""

    def __init__(
        self, store: Store, clock: Clock, providers: Providers, data_dir: Path | None = None
    ) -> None:
        self._store = store
        self.data_dir = data_dir or data_dir_for(store)
        self._clock = clock
        self._providers = providers
        self.blobs = BlobCache(store)
        self.recorder = Recorder(store)  # one per store and event loop: batches across runs
        self._by_hash: dict[str, Bundle] = {}

    def add(self, pipeline: PipelineSpec) -> Bundle:
        """The bundle of ``pipeline``, built once."""
        if pipeline.manifest_hash not in self._by_hash:
            agents: dict[str, Agent] = {
                name: build_agent(spec, pipeline, self._providers)
                for name, spec in pipeline.agents.items()
            }
            agents[GATE_AGENT] = _Judge(pipeline, agents, self._providers)
            self._by_hash[pipeline.manifest_hash] = Bundle(
                pipeline=pipeline,
                executor=TaskExecutor(
                    self._store,
                    pipeline,
                    agents,
                    self.blobs,
                    self._clock,
                    self.data_dir,
                    recorder=self.recorder,
                ),
                advancer=Advancer(self._store, pipeline, self.blobs),
            )
        return self._by_hash[pipeline.manifest_hash]

    def forget(self, run_id: str) -> None:
        """Drop everything cached for ``run_id`` (it left ``running``)."""
        self.blobs.forget(run_id)
        for bundle in self._by_hash.values():
            bundle.advancer.forget(run_id)

    async def for_run(self, run: RunRecord) -> Bundle:
        """The bundle of the configuration ``run`` is pinned to.

        Raises:
            ConfigError: the pinned config no longer validates (e.g. written by a newer
                IdeaMine).
        """
        bundle = self._by_hash.get(run.manifest_hash)
        if bundle is None:
            bundle = self.add(await run_pipeline(self._store, run.id))
        return bundle
