"""Every exception IdeaMine raises on purpose, in one tree.

::

    IdeaMineError                      base; carries a ``hint`` saying what to do next
    ├── UsageError                     bad input from a person (exit code 2)
    │   ├── InvalidIdeaError           empty, too long or undecodable idea text
    │   ├── ConfigError                one or more ``ConfigProblem`` in the YAML files
    │   ├── RunNotFoundError           no run with that id in the store
    │   └── AdvisoryError              an OSV advisory file is unusable (ideamine.tools.osv)
    ├── RunStateError                  the run cannot do that now (exit code 2)
    │   ├── ManifestChangedError       resume under a changed configuration manifest
    │   └── BudgetExceededError        a model call would pass 95 % of a budget: the run
    │                                  paused before it (``resume --add-budget``)
    ├── IllegalTransitionError         a state machine refused a transition
    ├── AgentError                     an agent could not produce a valid output
    │   ├── TemplateRenderError        a prompt/offline template or condition failed to render
    │   ├── OutputSchemaError          an output does not validate against the agent's schema
    │   ├── ProviderError              a model provider refused or failed a call (its class
    │   │   │                          decides the retry); in ideamine.llm.failures, which
    │   │   │                          also redacts secrets from every message
    │   │   └── CircuitOpenError       the provider's breaker is open: no call was made
    │   ├── ModelOutputError           the reply is not valid for the schema after one repair
    │   └── ReplayMissError            replay found a call that is not in the call cache
    ├── WorkspaceError                 a run's workspace could not be built, checked out or
    │                                  committed to (ideamine.tools.workspace)
    ├── ServiceError                   the generated service did not start (ideamine.tools.service)
    └── StoreError                     anything the store could not do (exit code 3)
        ├── StoreUnavailableError      cannot open, read-only, locked or unreachable
        ├── StoreCorruptError          the file is not a database, or a row does not decode
        ├── SchemaTooNewError          the database was migrated by a newer IdeaMine
        ├── StaleLeaseError            a write carried a lease token that is no longer current
        └── OutputExistsError          a task output for that key was already recorded

Errors carry the ids they talk about as attributes. Only the CLI prints them and maps them to
exit codes (see ``ideamine.cli.main``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "AgentError",
    "BudgetExceededError",
    "ConfigError",
    "ConfigProblem",
    "FinishingRefusedError",
    "IdeaMineError",
    "IllegalTransitionError",
    "InvalidIdeaError",
    "ManifestChangedError",
    "OutputExistsError",
    "OutputSchemaError",
    "RetriedWriteError",
    "RowsExistError",
    "RunNotFoundError",
    "RunStateError",
    "SchemaTooNewError",
    "StaleLeaseError",
    "StoreCorruptError",
    "StoreError",
    "StoreUnavailableError",
    "TemplateRenderError",
    "UsageError",
]


class IdeaMineError(Exception):
    """Base of every IdeaMine error: a message plus a hint of what to do next."""

    hint: str = ""

    def __init__(self, message: str, *, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        if hint:
            self.hint = hint

    def __str__(self) -> str:
        return self.message


class UsageError(IdeaMineError):
    """Input from a person was not usable as given."""


class InvalidIdeaError(UsageError):
    """The idea text is empty, too long or not decodable."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ConfigProblem:
    """One problem in one configuration file, located as precisely as the file allows
    (``line`` None: the problem is the whole file, or a folder)."""

    file: str
    line: int | None
    field: str
    problem: str
    hint: str = ""

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        text = f"{where}: {self.field}: {self.problem}"
        return f"{text} (hint: {self.hint})" if self.hint else text


class ConfigError(UsageError):
    """The configuration has one or more problems; ``problems`` lists them all."""

    def __init__(self, problems: list[ConfigProblem]) -> None:
        self.problems = tuple(problems)
        first = str(problems[0]) if problems else "invalid configuration"
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        super().__init__(first + more, hint="run `ideamine config check DIR` to list every problem")


class RunNotFoundError(UsageError):
    """No run with the given id exists in the store."""

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        super().__init__(
            f"no run {run_id!r} in this store", hint="`ideamine runs` lists the runs it holds"
        )


class RunStateError(IdeaMineError):
    """The run is in a state that does not allow the requested operation."""

    def __init__(self, run_id: str, message: str, *, hint: str = "") -> None:
        self.run_id = run_id
        super().__init__(message, hint=hint)


class ManifestChangedError(RunStateError):
    """The configuration changed since the run was pinned; ``changes`` lists what differs."""

    def __init__(self, run_id: str, changes: list[str]) -> None:
        self.changes = tuple(changes)
        shown = "; ".join(changes[:5]) + (" …" if len(changes) > 5 else "")
        super().__init__(
            run_id,
            f"run {run_id} was pinned to a different configuration: {shown}",
            hint="resume with the original --config, or pass --migrate to adopt the new one",
        )


class BudgetExceededError(RunStateError):
    """A model call's worst case would take a budget past 95 %: the call was not made, the
    run waits as ``needs_attention``, and its task was handed back untouched.

    ``scope`` is ``run``, ``phase`` or ``task`` (``name`` says which), ``resource`` one of
    ``tokens``, ``usd``, ``tool_minutes``, ``wallclock_minutes``; ``suggested`` is an amount
    that lets the run go on."""

    def __init__(
        self,
        run_id: str,
        *,
        scope: str,
        name: str,
        resource: str,
        used: float,
        request: float,
        limit: float,
        suggested: float,
    ) -> None:
        self.scope, self.name, self.resource = scope, name, resource
        self.used, self.request, self.limit = used, request, limit
        self.suggested = suggested
        where = "the run's" if scope == "run" else f"{scope} {name}'s"
        share = (used + request) / limit if limit else 0.0
        super().__init__(
            run_id,
            f"run {run_id} paused before a model call: with its worst case "
            f"({request:g} {resource}) {where} {resource} budget would reach {share * 100:.0f} % "
            f"({used + request:g} of {limit:g}; calls stop above 95 %)",
            hint=f"add budget and continue: ideamine resume {run_id} "
            f"--add-budget {resource}={suggested:g}",
        )


class IllegalTransitionError(IdeaMineError):
    """A run, phase or task state machine refused a transition."""

    def __init__(self, kind: str, source: str, target: str) -> None:
        self.kind, self.source, self.target = kind, source, target
        super().__init__(f"{kind} cannot go from {source} to {target}")


class AgentError(IdeaMineError):
    """An agent could not produce a valid output."""

    def __init__(self, agent: str, message: str, *, hint: str = "") -> None:
        self.agent = agent
        super().__init__(f"{agent}: {message}", hint=hint)


class TemplateRenderError(AgentError):
    """A template (``prompt``, ``offline`` or a loop ``condition``) failed to render."""

    def __init__(self, *, agent: str, part: str, detail: str) -> None:
        self.part = part
        self.detail = detail
        super().__init__(
            agent,
            f"{part} template failed: {detail}",
            hint=f"fix the `{part}` template in the agent's YAML file",
        )


class OutputSchemaError(AgentError):
    """An agent output does not validate against the agent's ``output_schema``."""

    def __init__(self, agent: str, detail: str) -> None:
        self.detail = detail
        super().__init__(
            agent,
            f"output does not match its output_schema: {detail}",
            hint="the agent's template and output_schema disagree; fix one of them",
        )


class StoreError(IdeaMineError):
    """Base of every store failure; the driver exception is chained as ``__cause__``."""


class StoreUnavailableError(StoreError):
    """The store cannot be opened or written (missing, read-only, locked, unreachable)."""


class RowsExistError(StoreError):
    """A write found a row it would insert already stored (a unique key taken) and wrote
    nothing: another process wrote it meanwhile (an advance step that read the run before
    another process, which took over the run's lease, moved it on), or a write this process
    took for undone had committed. Read again before doing it again."""


class RetriedWriteError(RowsExistError):
    """A write retried after the connection was lost found rows it would insert already
    stored: most likely its first attempt committed and only the reply was lost (or another
    process wrote them meanwhile). Either way what it was to do is done; read again."""

    def __init__(self, detail: str) -> None:
        super().__init__(
            f"the connection was lost as a write committed, and its retry found the rows "
            f"already stored ({detail})",
            hint="the first attempt most likely took effect: look (ideamine runs, status) "
            "before doing it again",
        )


class StoreCorruptError(StoreError):
    """The database is not an IdeaMine database, or a stored row does not decode."""


class SchemaTooNewError(StoreError):
    """The database schema is newer than this IdeaMine knows."""

    def __init__(self, found: int, known: int) -> None:
        self.found, self.known = found, known
        super().__init__(
            f"database schema version {found} is newer than this IdeaMine knows ({known})",
            hint="upgrade IdeaMine, or point --store at another database",
        )


class StaleLeaseError(StoreError):
    """A result write carried a lease token that no longer owns the task."""

    def __init__(self, task_id: str) -> None:
        self.task_id = task_id
        super().__init__(f"task {task_id}: lease token is stale; another worker owns the task now")


class FinishingRefusedError(StoreError):
    """A fan-in that was to record its attempt's last outputs first (``record_fan_in`` with
    ``finishing``) found one of them refused (a stale lease token, an output already
    recorded, not JSON): it wrote nothing. Record the outputs on their own
    (``record_outputs``), which says for each what stands in its way."""

    def __init__(self, errors: Sequence[StoreError]) -> None:
        self.errors = tuple(errors)
        super().__init__(
            f"{len(self.errors)} of the outputs to record with the fan-in were refused "
            f"(the first: {self.errors[0]})",
            hint="record the outputs on their own: each then gets its own error",
        )


class OutputExistsError(StoreError):
    """A task output for this (run, phase, attempt, key) was already recorded."""

    def __init__(self, task_id: str) -> None:
        self.task_id = task_id
        super().__init__(f"task {task_id}: output already recorded")
