"""The quality loop's commands: questions and answers (``run --ask``), waivers of failed
gates, and a run's gate history. Like the signals, they talk only to the store, so they
work whoever drives the run."""

from __future__ import annotations

from dataclasses import asdict

import click
from rich.table import Table

from ideamine import service, service_quality
from ideamine.cli.app import STORE_OPTION, chosen_run, console, escape, print_json, runs_async

__all__ = ["answer", "gates", "questions", "waive"]


@click.command()
@click.argument("run_id", required=False)
@STORE_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@runs_async
async def questions(run_id: str | None, store_ref: str | None, as_json: bool) -> None:
    """List RUN_ID's questions that wait for an answer (runs started with --ask).

    RUN_ID defaults to the newest run of the store."""
    store = await service.open_store(store_ref, create=False)
    try:
        run_id = await chosen_run(store, run_id)
        waiting = await service_quality.open_questions(store, run_id)
    finally:
        await store.close()
    if as_json:
        print_json([asdict(q) for q in waiting])
        return
    if not waiting:
        console.print(f"run {run_id} has no open question")
        return
    table = Table("id", "phase", "topic", "question")
    for q in waiting:
        table.add_row(q.id, q.phase, escape(q.topic), escape(q.text))
    console.print(table)
    console.print(f'answer one: ideamine answer {run_id} QUESTION_ID "your answer"')


@click.command()
@click.argument("run_id")
@click.argument("question_id")
@click.argument("text")
@STORE_OPTION
@runs_async
async def answer(run_id: str, question_id: str, text: str, store_ref: str | None) -> None:
    """Answer RUN_ID's open question QUESTION_ID with TEXT (each question on its own)."""
    store = await service.open_store(store_ref, create=False)
    try:
        resumed = await service_quality.answer_question(store, run_id, question_id, text)
        left = await service_quality.open_questions(store, run_id)
    finally:
        await store.close()
    console.print(f"answered {question_id}")
    if resumed:
        console.print(
            f"every question is answered: run {run_id} goes on "
            f"(workers pick it up; or `ideamine resume {run_id}`)"
        )
    elif left:
        console.print(f"{len(left)} question(s) still open: ideamine questions {run_id}")


@click.command()
@click.argument("run_id")
@click.argument("phase")
@click.option("--reason", required=True, help="Why passing this gate anyway is acceptable.")
@click.option(
    "--expires",
    required=True,
    metavar="WHEN",
    help="When the waiver lapses: a duration (30d, 12h, 2w) or a date (2027-01-31).",
)
@STORE_OPTION
@runs_async
async def waive(run_id: str, phase: str, reason: str, expires: str, store_ref: str | None) -> None:
    """Pass PHASE's failed gate of RUN_ID with a justification and an expiry.

    Critical CVEs and secrets can never be waived."""
    service_quality.check_waiver(reason, expires)  # bad flags are refused before the store
    store = await service.open_store(store_ref, create=False)
    try:
        attempt = await service_quality.waive_phase(
            store, run_id, phase, reason=reason, expires=expires
        )
    finally:
        await store.close()
    console.print(
        f"waived the gate of {phase} (attempt {attempt}); the run goes on "
        f"(workers pick it up; or `ideamine resume {run_id}`)"
    )


@click.command()
@click.argument("run_id", required=False)
@STORE_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@runs_async
async def gates(run_id: str | None, store_ref: str | None, as_json: bool) -> None:
    """Show every gate verdict of RUN_ID: scores, reasons, evidence gaps and waivers.

    RUN_ID defaults to the newest run of the store."""
    store = await service.open_store(store_ref, create=False)
    try:
        run_id = await chosen_run(store, run_id)
        history = await service_quality.gate_history(store, run_id)
    finally:
        await store.close()
    if as_json:
        print_json(history)
        return
    table = Table("phase", "attempt", "verdict", "score", "reasons")
    for row in history:
        verdict = "[green]passed[/]" if row["passed"] else "[red]failed[/]"
        if row["waiver"]:
            verdict += f" [yellow]waived until {row['waiver']['expires_at']}[/]"
        notes = row["reasons"]  # evidence gaps are among them
        table.add_row(
            row["phase"],
            str(row["attempt"]),
            verdict,
            f"{row['score']:.3f} / {row['threshold']:.2f}",
            escape("\n".join(notes) or "—"),
        )
    console.print(table)
