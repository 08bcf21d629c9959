"""The gate judge: the task that closes a phase attempt's knowledge gaps and judges it.

Once a phase attempt fans in, one more task (branch key ``~gate``, agent ``@gate``) runs like
any other (leased, heartbeating, retried, its model calls cached and recorded): the Q/A/V loop
over the draft, then the phase's guards, then the rubric score. Its output is the
EvidencePack and the GateResult; the advancer applies the verdict (``runtime.verdict``).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any, Protocol

from ideamine.agents.base import Agent, AgentContext, AgentResult
from ideamine.agents.builtin import ModelAgent
from ideamine.config.model import AgentSpec, PhaseSpec, PipelineSpec
from ideamine.engine.gate import STRICT_GROUNDING, score_gate
from ideamine.engine.plan import GATE_AGENT, GATE_KEY
from ideamine.engine.states import TaskStatus
from ideamine.knowledge.frames import Frame
from ideamine.knowledge.guards.base import GuardInput, Judge, guard_for
from ideamine.knowledge.qav import run_qav
from ideamine.llm.registry import Providers
from ideamine.runtime.replayed import REPLAY_OF
from ideamine.runtime.verdict import previous_result
from ideamine.stores.knowledge import Knowledge
from ideamine.stores.options import RunOptions

__all__ = [
    "GATE_AGENT",
    "GATE_KEY",
    "AgentOutcome",
    "GateJudge",
    "attempt_artifacts",
    "attempt_calls",
    "gate_output",
    "guard_reports",
    "phase_metrics",
]

JUDGE_TIMEOUT_SECONDS = 3600.0
JUDGE_PROMPT = (
    "{{ instruction }}\n\nReply with one JSON object: "
    '{"contradictions": [{"description": "...", "locations": ["Artifact.path", "..."]}]} '
    "(an empty list when there are none).\n\n{{ payload | tojson }}"
)
JUDGE_SCHEMA: Mapping[str, Any] = {
    "type": "object",
    "required": ["contradictions"],
    "properties": {
        "contradictions": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["description"],
                "properties": {
                    "description": {"type": "string", "minLength": 1},
                    "locations": {"type": "array", "items": {"type": "string"}},
                },
            },
        }
    },
}
KNOWN_FRAMES = 20


class GateJudge:
    """Judges phase attempts of one pipeline."""

    def __init__(
        self, pipeline: PipelineSpec, agents: Mapping[str, Agent], providers: Providers
    ) -> None:
        self._pipeline = pipeline
        self._agents = agents
        self._providers = providers
        self.spec = AgentSpec(
            name=GATE_AGENT,
            phase="*",
            role="closes the phase draft's knowledge gaps (Q/A/V), runs its guards and "
            "scores its gate",
            artifact_types=(),
            output_schema={"type": "object"},
            timeout_seconds=JUDGE_TIMEOUT_SECONDS,
        )

    async def run(self, ctx: AgentContext) -> AgentResult:
        started = time.monotonic()
        assert ctx.store is not None  # the executor always gives the run's store
        phase = self._pipeline.phase(ctx.phase)
        draft, artifact_ids = await attempt_artifacts(ctx, ctx.phase, ctx.attempt)
        upstream = dict(ctx.values.get("artifacts", {}))  # type: ignore[call-overload]
        previous = await previous_result(ctx.store, ctx.run_id, ctx.phase, ctx.attempt)
        qav = await self._qav(ctx, phase, draft, upstream, previous)
        options = await RunOptions(ctx.store).get(ctx.run_id)
        strict = bool(options.get("strict_evidence"))
        judge = self._judge_for(ctx, phase)
        reports = await guard_reports(self._pipeline, phase, draft, upstream, strict, judge)
        record, own = await ctx.store.phase_tasks(ctx.run_id, ctx.phase, ctx.attempt)
        made = await ctx.store.model_calls(ctx.run_id)
        calls = attempt_calls(made, ctx.phase, ctx.attempt) + [_call_row(c) for c in ctx.calls]
        metrics = phase_metrics(record.started_at, own, calls, draft, started)
        output = gate_output(phase, ctx.attempt, reports, qav, artifact_ids, metrics)
        return AgentResult(output=output, calls=tuple(ctx.calls))

    async def _qav(
        self,
        ctx: AgentContext,
        phase: PhaseSpec,
        draft: Mapping[str, Any],
        upstream: Mapping[str, Any],
        previous: Mapping[str, Any] | None,
    ) -> dict[str, Any] | None:
        if not phase.qav.enabled or phase.qav.max_questions == 0:
            return None
        assert ctx.store is not None
        knowledge = Knowledge(ctx.store)
        idea = str(ctx.values.get("idea", {}).get("text", ""))  # type: ignore[attr-defined]
        frames = await _known_frames(ctx, knowledge, f"{idea} {phase.name}")
        # questions an earlier attempt settled are not asked again; open ones are
        asked = [
            row.text
            for row in await knowledge.questions(ctx.run_id)
            if row.phase == phase.name
            and row.attempt < ctx.attempt
            and row.status in ("accepted", "answered")
        ]
        stricter = previous is not None and any(
            issue.get("fix_strategy") == "rerun-qav-stricter" for issue in previous["issues"]
        )
        names = self._pipeline.qav_agents
        outcome = await run_qav(
            ctx,
            question=self._agents[names["question"]],
            answer=self._agents[names["answer"]],
            spec=phase.qav,
            min_grounding=max(phase.qav.min_grounding, STRICT_GROUNDING if stricter else 0.0),
            draft=draft,
            upstream=upstream,
            frames=frames,
            asked_before=asked,
        )
        return {**outcome.as_dict(), "frames_used": [frame.id for frame in frames]}

    def _judge_for(self, ctx: AgentContext, phase: PhaseSpec) -> Judge | None:
        """A model judge for the guards that ask one (contradictions), on the phase's model;
        None on the offline model, which cannot judge."""
        chain = self._pipeline.models_for(self._pipeline.agents[phase.agents[0]])
        if all(reference.startswith("offline:") for reference in chain):
            return None
        spec = AgentSpec(
            name="GuardJudge",
            phase=phase.name,
            role="finds what the deterministic guards cannot see",
            artifact_types=(),
            output_schema=JUDGE_SCHEMA,
            prompt=JUDGE_PROMPT,
            model=chain[0],
            models=chain,
            temperature=0.0,
            max_tokens=2000,
        )
        agent = ModelAgent(spec, self._pipeline, self._providers)

        async def judge(instruction: str, payload: Mapping[str, Any]) -> Mapping[str, Any]:
            values = {"instruction": instruction, "payload": dict(payload)}
            sub = replace(ctx, spec=spec, key=f"{ctx.key}.judge", values=values)
            output = (await agent.run(sub)).output
            return output if isinstance(output, Mapping) else {}

        return judge


async def _known_frames(ctx: AgentContext, knowledge: Knowledge, query: str) -> list[Frame]:
    """The knowledge frames the answer agent may cite: the best matches in the knowledge base,
    or, when replaying a run, exactly the frames the original judge saw (the base has grown
    since, and the prompts must not change)."""
    original = ctx.options.get(REPLAY_OF)
    if not isinstance(original, str):
        return await knowledge.search(query, KNOWN_FRAMES)
    assert ctx.store is not None
    recorded = (await ctx.store.outputs(original, ctx.phase, ctx.attempt)).get(GATE_KEY)
    qav = recorded.get("qav") if isinstance(recorded, Mapping) else None
    used = qav.get("frames_used", []) if isinstance(qav, Mapping) else []
    return await knowledge.frames([str(i) for i in used])


async def guard_reports(
    pipeline: PipelineSpec,
    phase: PhaseSpec,
    draft: Mapping[str, Any],
    upstream: Mapping[str, Any],
    strict: bool,
    judge: Judge | None,
) -> list[dict[str, Any]]:
    """The reports of ``phase``'s guards on ``draft``, in the order the phase lists them."""
    producers = _producers(pipeline, phase)
    reports = []
    for guard in phase.guards:
        report = await guard_for(guard.type).check(
            GuardInput(
                phase=phase.name,
                artifacts=draft,
                upstream=upstream,
                config=dict(guard.config),
                producers=producers,
                strict_evidence=strict,
                judge=judge,
            )
        )
        reports.append(report.as_dict())
    return reports


def gate_output(
    phase: PhaseSpec,
    attempt: int,
    reports: Sequence[Mapping[str, Any]],
    qav: Mapping[str, Any] | None,
    artifact_ids: Sequence[str],
    metrics: Mapping[str, Any],
) -> dict[str, Any]:
    """The judge's output: the GateResult, the EvidencePack it judged, the Q/A/V outcome."""
    grounding, ungrounded = _grounding(qav)
    result = score_gate(
        phase.gate, reports, grounding=grounding, attempt=attempt, ungrounded=ungrounded
    )
    evidence = {
        "artifact_ids": list(artifact_ids),
        "guards": list(reports),
        "qav": qav["summary"] if qav else None,
        "metrics": dict(metrics),
    }
    return {"result": result, "evidence": evidence, "qav": qav}


def _producers(pipeline: PipelineSpec, phase: PhaseSpec) -> dict[str, tuple[str, ...]]:
    found: dict[str, list[str]] = {}
    for name in phase.agents:
        for artifact_type in pipeline.agents[name].artifact_types:
            found.setdefault(artifact_type, []).append(name)
    return {artifact_type: tuple(names) for artifact_type, names in found.items()}


def _grounding(qav: Mapping[str, Any] | None) -> tuple[float | None, str]:
    """The grounding rubric: the mean grounding of the answers given, or None and why.

    UNKNOWN answers are not scored: they become assumptions (by default the run goes on with
    them, SPEC §5 Clarification), listed in the verdict instead."""
    if qav is None:
        return None, "Q/A/V is off for this phase"
    unknown = {a["question_id"] for a in qav["answers"] if a["unknown"]}
    scores = [
        float(v["scores"]["grounding"])
        for v in qav["validations"]
        if v["question_id"] not in unknown
    ]
    if not qav["questions"]:
        return None, "the question agent found no gap in the draft"
    if not scores:
        return None, f"no question could be answered; {len(unknown)} became assumptions"
    return round(sum(scores) / len(scores), 4), ""


async def attempt_artifacts(
    ctx: AgentContext, phase: str, attempt: int
) -> tuple[dict[str, Any], list[str]]:
    """The artifacts one phase attempt fanned in, by type, and their ids."""
    assert ctx.store is not None
    records = [
        r
        for r in await ctx.store.artifacts(ctx.run_id)
        if r.phase == phase and r.attempt == attempt
    ]
    contents = {r.type: await ctx.store.blob(r.content_hash) for r in records}
    return contents, sorted(r.id for r in records)


def attempt_calls(
    calls: Sequence[Mapping[str, object]], phase: str, attempt: int
) -> list[Mapping[str, object]]:
    """Those of ``calls`` (rows of ``Store.model_calls``) made by tasks of the attempt."""
    return [call for call in calls if call["phase"] == phase and call["attempt"] == attempt]


class AgentOutcome(Protocol):
    """How a task of the attempt stands, as its metrics count it (a ``TaskRecord`` read
    from the store, or a ``TaskState`` of the step that fans the attempt in)."""

    @property
    def agent(self) -> str: ...

    @property
    def status(self) -> TaskStatus: ...


def phase_metrics(
    started_at: str,
    own: Sequence[AgentOutcome],
    calls: Sequence[Mapping[str, object]],
    draft: Mapping[str, Any],
    started: float,
) -> dict[str, Any]:
    """The attempt's metrics for its EvidencePack: ``started_at`` when the attempt started
    (as stored), ``own`` its tasks, ``calls`` the model calls they (and the judge) made,
    ``started`` when judging began (``time.monotonic``)."""
    began = datetime.fromisoformat(started_at).timestamp()
    agents = [t for t in own if not t.agent.startswith("@")]
    return {
        "duration_ms": round((time.time() - began) * 1000, 1),
        "judge_ms": round((time.monotonic() - started) * 1000, 1),
        "tokens": sum(int(str(c["tokens_in"])) + int(str(c["tokens_out"])) for c in calls),
        "cost_usd": round(sum(float(str(c["cost_usd"])) for c in calls), 6),
        "tool_minutes": round(_tool_ms(draft) / 60000, 4),
        "agents_executed": len(agents),
        "agents_succeeded": sum(1 for t in agents if t.status.value == "succeeded"),
        "agents_failed": sum(1 for t in agents if t.status.value == "failed"),
    }


def _call_row(call: Any) -> dict[str, object]:
    return {"tokens_in": call.tokens_in, "tokens_out": call.tokens_out, "cost_usd": call.cost_usd}


def _tool_ms(value: object) -> float:
    """Milliseconds of tool runs recorded in evidence envelopes anywhere in ``value``."""
    if isinstance(value, Mapping):
        own = 0.0
        envelope = value.get("evidence")
        if isinstance(envelope, Mapping) and isinstance(envelope.get("duration_ms"), int | float):
            own = float(envelope["duration_ms"])
        return own + sum(_tool_ms(v) for k, v in value.items() if k != "evidence")
    if isinstance(value, Sequence) and not isinstance(value, str):
        return sum(_tool_ms(v) for v in value)
    return 0.0
