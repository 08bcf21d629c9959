"""``ideamine eval``: run the pipeline over a file of ideas and report the ChatDev metrics,
specificity and validity (docs/eval.md)."""

from __future__ import annotations

import asyncio
import os
import platform
import shlex
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import click

from ideamine import service
from ideamine.cli.app import EXIT_FAILED, Exit, err, escape, runs_async
from ideamine.config.loader import load_pipeline
from ideamine.errors import UsageError
from ideamine.eval.embedding import MODEL_NAME, MiniLM
from ideamine.eval.ideas import read_ideas, select_ideas
from ideamine.eval.report import write_reports
from ideamine.eval.runner import EvalOptions, Outcome, evaluate, measured_earlier
from ideamine.eval.summary import summarize
from ideamine.llm.registry import split_reference

__all__ = ["eval_command"]


@click.command("eval")
@click.option(
    "--ideas", "ideas_file", required=True, metavar="FILE.csv",
    type=click.Path(path_type=Path, dir_okay=False),
    help="A CSV of ideas with columns Name,Description,Category (e.g. SRDD's srdd.csv).",
)  # fmt: skip
@click.option("--sample", type=click.IntRange(min=1), help="A seeded random sample of N ideas.")
@click.option(
    "--per-category", type=click.IntRange(min=1), help="A seeded K ideas from every category."
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the sample.")
@click.option(
    "--model", envvar="IDEAMINE_MODEL", metavar="PROVIDER:MODEL", help="Every agent on this model."
)
@click.option(
    "--jobs", type=click.IntRange(1, 64), default=2, show_default=True, help="Ideas run at once."
)
@click.option(
    "-o", "--out", type=click.Path(path_type=Path, file_okay=False), default=Path("ideamine-eval"),
    show_default=True, help="Folder of the runs, results and reports (reused to resume).",
)  # fmt: skip
@click.option(
    "--config", "config_dir", type=click.Path(path_type=Path, file_okay=False, exists=True),
    envvar="IDEAMINE_CONFIG", help="Folder overlaying the shipped config ($IDEAMINE_CONFIG).",
)  # fmt: skip
@click.option(
    "--idea-timeout", type=click.FloatRange(min=1), default=1800.0, show_default=True,
    help="Seconds one idea's run may take; a cut run is resumed by the next eval.",
)  # fmt: skip
@runs_async
async def eval_command(
    ideas_file: Path,
    sample: int | None,
    per_category: int | None,
    seed: int,
    model: str | None,
    jobs: int,
    out: Path,
    config_dir: Path | None,
    idea_timeout: float,
) -> None:
    """Run the pipeline on each idea of FILE.csv and score what it made: completeness,
    executability, consistency, quality, specificity, validity, tokens, cost and time.

    Finished ideas are kept in OUT and not run again: run the same command to resume.
    """
    if model:
        split_reference(model)  # a bad --model fails here, not once per idea
    pipeline = load_pipeline(config_dir).with_model(model)
    service.check_agents(pipeline)
    chosen = select_ideas(
        read_ideas(ideas_file), sample=sample, per_category=per_category, seed=seed
    )
    out = await asyncio.to_thread(_prepare, out)
    _say(f"eval: {len(chosen)} ideas, {jobs} at a time, model {pipeline.default_model} → {out}")
    embedder = MiniLM()  # loads at the first measurement: none when every idea is done
    options = EvalOptions(
        out=out, jobs=jobs, model=model, config=config_dir, idea_timeout_s=idea_timeout
    )
    earlier = await asyncio.to_thread(measured_earlier, out, chosen)
    if earlier:
        _say(f"eval: {earlier} of them measured earlier in {out} (kept)")
    outcomes = await evaluate(chosen, options, embedder, _Progress(len(chosen), earlier))
    summary = summarize(outcomes)
    meta = {
        "command": shlex.join(["ideamine", *sys.argv[1:]]),
        "model": pipeline.default_model,
        "embedding_model": MODEL_NAME,
        "ideas_file": str(ideas_file),
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": _machine(),
    }
    for path in write_reports(summary, meta, out):
        _say(f"eval: wrote {path}")
    _print_summary(summary)
    if summary["unfinished"]:
        raise Exit(EXIT_FAILED)


def _say(text: str, *, markup: bool = False) -> None:
    """One line on stderr, never wrapped (logs of long evaluations stay greppable)."""
    err.print(text, markup=markup, soft_wrap=True)


def _prepare(out: Path) -> Path:
    """The output folder, absolute and created.

    Raises:
        UsageError: it cannot be created.
    """
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot create {out}: {exc.strerror}", hint="pass a writable -o") from exc
    return out.resolve()


def _machine() -> str:
    return f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"


class _Progress:
    """One line per idea as it ends, with counts and the time left at the pace so far."""

    def __init__(self, total: int, earlier: int) -> None:
        self._total = total
        self._earlier = earlier  # found measured: reported at once, not counted in the pace
        self._done = 0
        self._measured = 0
        self._started = time.monotonic()

    def __call__(self, outcome: Outcome) -> None:
        self._done += 1
        label = f"[{self._done:>{len(str(self._total))}}/{self._total}] {outcome.idea.key}"
        if outcome.result is None:
            _say(f"{label}: [red]not finished[/] — {escape(str(outcome.problem))}", markup=True)
            return
        result = outcome.result
        line = (
            f"{label}: {result['status']} {result['phases_passed']}/{result['phases_total']}"
            f" · complete {_score(result, 'completeness'):g}"
            f" · exec {_score(result, 'executability'):g}"
            f" · consistency {_score(result, 'consistency'):.2f}"
        )
        if outcome.earlier:
            _say(f"{line} (done earlier)")
            return
        self._measured += 1
        left = self._total - self._earlier - self._measured
        pace = (time.monotonic() - self._started) / self._measured
        _say(f"{line} · {result['eval_s']} s · ~{pace * left / 60:.0f} min left")


def _score(result: dict[str, object], metric: str) -> float:
    found = result.get(metric)
    return float(str(found.get("score"))) if isinstance(found, dict) else 0.0


def _print_summary(summary: dict[str, object]) -> None:
    overall = summary["overall"]
    assert isinstance(overall, dict)
    _say(
        f"eval: {summary['finished']}/{summary['ideas']} finished · completeness "
        f"{overall['completeness']} · executability {overall['executability']} · consistency "
        f"{overall['consistency']} · quality {overall['quality']} · specificity "
        f"{overall['specificity']} · valid {overall['validity_rate']}"
    )
    for target in summary["targets"]:  # type: ignore[attr-defined]
        mark = "met" if target["met"] else "NOT met"
        _say(
            f"  target {target['what']} ≥ {target['target']}: {target['value']} {mark}",
            markup=False,
        )
