"""Budgets: what a run, a phase and a task may use, and what to do before the next model call.

Pure: usage, limits and the request's worst case come in, a ``Decision`` goes out.

Resources: tokens, USD, tool minutes, wall-clock minutes. Scopes and their limits:

- **task**: its agent's ``budget`` tokens (no limit when unset);
- **phase**: its ``budgets`` (every attempt of the phase counts against them);
- **run**: the sum of its phases' budgets.

``ideamine resume RUN --add-budget …`` adds the same amount to every limit that exists; the
run scope still caps the whole run at its sum plus the addition. A limit of 0 means *no limit*
(``usd: 0``, the shipped default, puts no cap on spending).

The worst case of a request: its prompt estimated at one token per four characters, rounded
up, plus ``max_tokens`` of output, priced from the pipeline's pricing table. Tokens and USD
are checked as *used + worst case*; tool and wall-clock minutes as used so far (a model call
spends no tool time, and how long it takes is not known before it ends).

Thresholds, per scope and resource: 50 % warns, 80 % throttles (the run's concurrency
halves), more than 95 % exceeds (the call is not made; the run pauses as ``needs_attention``).
The tightest scope and resource (the highest share) decides and is named. Warnings and
throttles are announced once per scope, resource, threshold and limit (``Reading.mark``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from datetime import datetime
from enum import IntEnum, StrEnum

from ideamine.config.model import Budgets, Price

__all__ = [
    "CHARS_PER_TOKEN",
    "EXCEED_AT",
    "THROTTLE_AT",
    "WARN_AT",
    "Account",
    "Amounts",
    "Announcement",
    "Decision",
    "Level",
    "Reading",
    "Resource",
    "Scope",
    "active_minutes",
    "decide",
    "evidence_minutes",
    "level_of",
    "pauses",
    "phase_limits",
    "prompt_tokens",
    "run_limits",
    "task_limits",
    "throttled_room",
    "timestamp",
    "worst_case",
]

WARN_AT = 0.5
THROTTLE_AT = 0.8
EXCEED_AT = 0.95
CHARS_PER_TOKEN = 4
PAUSE_EVENTS = frozenset({"run.paused", "run.needs_attention"})
RESUME_EVENTS = frozenset({"run.resumed", "run.started"})


class Resource(StrEnum):
    TOKENS = "tokens"
    USD = "usd"
    TOOL_MINUTES = "tool_minutes"
    WALLCLOCK_MINUTES = "wallclock_minutes"


class Scope(StrEnum):
    TASK = "task"
    PHASE = "phase"
    RUN = "run"


class Level(IntEnum):
    """What a share of a budget calls for, in increasing order of severity."""

    OK = 0
    WARN = 1
    THROTTLE = 2
    EXCEED = 3

    @property
    def event(self) -> str:
        """The ledger event announcing this level (``""`` for OK)."""
        return _EVENTS[self]


_EVENTS = {
    Level.OK: "",
    Level.WARN: "budget.warning",
    Level.THROTTLE: "budget.throttled",
    Level.EXCEED: "budget.exceeded",
}
_THRESHOLDS = ((Level.WARN, WARN_AT), (Level.THROTTLE, THROTTLE_AT))


@dataclass(frozen=True, slots=True, kw_only=True)
class Amounts:
    """An amount of each resource: a usage, a limit (0 = none) or a request's worst case."""

    tokens: int = 0
    usd: float = 0.0
    tool_minutes: float = 0.0
    wallclock_minutes: float = 0.0

    def of(self, resource: Resource) -> float:
        return float(getattr(self, resource.value))

    def __add__(self, other: Amounts) -> Amounts:
        return Amounts(
            tokens=self.tokens + other.tokens,
            usd=self.usd + other.usd,
            tool_minutes=self.tool_minutes + other.tool_minutes,
            wallclock_minutes=self.wallclock_minutes + other.wallclock_minutes,
        )

    def as_dict(self) -> dict[str, float]:
        return {resource.value: self.of(resource) for resource in Resource}

    @classmethod
    def from_mapping(cls, values: Mapping[str, object]) -> Amounts:
        """Amounts from ``{"tokens": …, "usd": …}`` (missing or unknown keys count 0)."""
        found = {r.value: float(str(values.get(r.value, 0) or 0)) for r in Resource}
        return cls(
            tokens=int(found["tokens"]),
            usd=found["usd"],
            tool_minutes=found["tool_minutes"],
            wallclock_minutes=found["wallclock_minutes"],
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Account:
    """What one scope may use (``limits``, 0 = no limit) and has used so far."""

    scope: Scope
    name: str  # the run id, the phase name or the task id
    limits: Amounts
    used: Amounts


@dataclass(frozen=True, slots=True, kw_only=True)
class Reading:
    """One scope's use of one limited resource, if the request were sent."""

    scope: Scope
    name: str
    resource: Resource
    used: float
    request: float
    limit: float

    @property
    def projected(self) -> float:
        return self.used + self.request

    @property
    def share(self) -> float:
        return self.projected / self.limit

    @property
    def level(self) -> Level:
        return level_of(self.share)

    def mark(self, level: Level) -> str:
        """The identity of an announcement: a resume never repeats it; a new limit (after
        ``--add-budget``) is a new mark."""
        return f"{self.scope}:{self.name}:{self.resource}:{level.name.lower()}:{self.limit:g}"

    def as_payload(self) -> dict[str, object]:
        return {
            "scope": self.scope.value,
            "name": self.name,
            "resource": self.resource.value,
            "used": round(self.used, 6),
            "request": round(self.request, 6),
            "limit": round(self.limit, 6),
            "share": round(self.share, 4),
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class Announcement:
    """A threshold a scope crossed for the first time: ``budget.warning``/``throttled``."""

    level: Level
    reading: Reading

    @property
    def mark(self) -> str:
        return self.reading.mark(self.level)

    def payload(self) -> dict[str, object]:
        threshold = WARN_AT if self.level is Level.WARN else THROTTLE_AT
        return {**self.reading.as_payload(), "threshold": threshold, "mark": self.mark}


@dataclass(frozen=True, slots=True, kw_only=True)
class Decision:
    """Before a model call: its level, the tightest reading (``None`` when nothing is
    limited) and the first-time crossings to announce (none when the call exceeds)."""

    level: Level
    tightest: Reading | None = None
    announce: tuple[Announcement, ...] = ()


def throttled_room(concurrency: int, held: int) -> int:
    """How many more tasks of a throttled run a process running at most ``concurrency``
    tasks, ``held`` of them the run's, may claim: half its concurrency (at least one) in all."""
    return max(1, concurrency // 2) - held


def level_of(share: float) -> Level:
    """The level of a projected share of a limit (over 95 % exceeds)."""
    if share > EXCEED_AT:
        return Level.EXCEED
    if share >= THROTTLE_AT:
        return Level.THROTTLE
    if share >= WARN_AT:
        return Level.WARN
    return Level.OK


def decide(
    accounts: Sequence[Account], request: Amounts, announced: AbstractSet[str] = frozenset()
) -> Decision:
    """The decision for a request against every scope's limits.

    Args:
        accounts: the scopes to check (the checker passes task, phase, run: on equal shares
            the first one is named).
        request: the request's worst case (``worst_case``).
        announced: marks of warnings and throttles already in the ledger.
    """
    found = readings(accounts, request)
    if not found:
        return Decision(level=Level.OK)
    tightest = max(found, key=lambda reading: reading.share)  # first of equals wins
    if tightest.level is Level.EXCEED:
        return Decision(level=Level.EXCEED, tightest=tightest)
    fresh = tuple(
        Announcement(level=level, reading=reading)
        for reading in found
        for level, threshold in _THRESHOLDS
        if reading.share >= threshold and reading.mark(level) not in announced
    )
    return Decision(level=tightest.level, tightest=tightest, announce=fresh)


def readings(accounts: Iterable[Account], request: Amounts) -> list[Reading]:
    """A reading per scope and limited resource, in the order given."""
    return [
        Reading(
            scope=account.scope,
            name=account.name,
            resource=resource,
            used=account.used.of(resource),
            request=request.of(resource),
            limit=account.limits.of(resource),
        )
        for account in accounts
        for resource in Resource
        if account.limits.of(resource) > 0
    ]


# -- limits -------------------------------------------------------------------------------


def _budget_amounts(budgets: Budgets) -> Amounts:
    return Amounts(
        tokens=budgets.tokens,
        usd=budgets.usd,
        tool_minutes=budgets.tool_minutes,
        wallclock_minutes=budgets.wallclock_minutes,
    )


def _raised(base: Amounts, added: Amounts) -> Amounts:
    """``base`` plus ``added`` where ``base`` has a limit (0 stays 0: no limit)."""

    def one(resource: Resource) -> float:
        limit = base.of(resource)
        return limit + added.of(resource) if limit > 0 else 0.0

    return Amounts(
        tokens=int(one(Resource.TOKENS)),
        usd=one(Resource.USD),
        tool_minutes=one(Resource.TOOL_MINUTES),
        wallclock_minutes=one(Resource.WALLCLOCK_MINUTES),
    )


def phase_limits(budgets: Budgets, added: Amounts = Amounts()) -> Amounts:
    """A phase's limits: its ``budgets`` plus the run's addition."""
    return _raised(_budget_amounts(budgets), added)


def run_limits(phases: Iterable[Budgets], added: Amounts = Amounts()) -> Amounts:
    """A run's limits: the sum of its phases' budgets plus the addition."""
    total = Amounts()
    for budgets in phases:
        total = total + _budget_amounts(budgets)
    return _raised(total, added)


def task_limits(budget_tokens: int | None, added: Amounts = Amounts()) -> Amounts:
    """A task's limits: its agent's ``budget`` tokens (nothing else is limited per task)."""
    return _raised(Amounts(tokens=budget_tokens or 0), Amounts(tokens=added.tokens))


# -- the worst case of a request ----------------------------------------------------------


def prompt_tokens(prompt: str) -> int:
    """The prompt's tokens, estimated without a tokenizer: characters / 4, rounded up."""
    return max(1, math.ceil(len(prompt) / CHARS_PER_TOKEN))


def worst_case(prompt: str, max_tokens: int, price: Price | None) -> Amounts:
    """The most a call may use: its prompt plus ``max_tokens`` of output, priced by
    ``price`` (USD per million tokens; ``None``, not in the pricing table, costs 0)."""
    tokens_in = prompt_tokens(prompt)
    usd = 0.0
    if price is not None:
        usd = (tokens_in * price.input_per_mtok + max_tokens * price.output_per_mtok) / 1e6
    return Amounts(tokens=tokens_in + max_tokens, usd=usd)


# -- measuring tool and wall-clock minutes ------------------------------------------------


def timestamp(iso_text: str) -> float:
    """Epoch seconds of a time as the store writes it (ISO-8601)."""
    return datetime.fromisoformat(iso_text).timestamp()


def pauses(events: Iterable[tuple[str, float]], now: float) -> list[tuple[float, float]]:
    """The spans a run was paused or waiting for a person, from its ``run.paused`` /
    ``run.needs_attention`` and ``run.resumed`` events in ledger order (type, time); a
    pause still open ends ``now``. Wall clock does not run while a run waits."""
    spans: list[tuple[float, float]] = []
    start: float | None = None
    for event_type, at in events:
        if event_type in PAUSE_EVENTS and start is None:
            start = at
        elif event_type in RESUME_EVENTS and start is not None:
            spans.append((start, at))
            start = None
    if start is not None:
        spans.append((start, now))
    return spans


def active_minutes(span: tuple[float, float], paused: Sequence[tuple[float, float]]) -> float:
    """Minutes in ``span`` outside the ``paused`` spans (which do not overlap each other)."""
    start, end = span
    seconds = max(0.0, end - start)
    for pause_start, pause_end in paused:
        seconds -= max(0.0, min(end, pause_end) - max(start, pause_start))
    return max(0.0, seconds) / 60


def evidence_minutes(output: object) -> float:
    """Tool minutes a task output reports: the ``duration_ms`` of every ``evidence``
    envelope in it (docs/evidence.md), however deeply nested."""
    if isinstance(output, Mapping):
        own = 0.0
        evidence = output.get("evidence")
        if isinstance(evidence, Mapping):
            duration = evidence.get("duration_ms")
            if isinstance(duration, int | float) and not isinstance(duration, bool):
                own = float(duration) / 60_000
        return own + sum(evidence_minutes(value) for value in output.values())
    if isinstance(output, list):
        return sum(evidence_minutes(value) for value in output)
    return 0.0
