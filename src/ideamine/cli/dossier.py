"""``ideamine dossier``: compile a run's release dossier, export it, or verify an export.

``ideamine dossier RUN --format json|html|pdf|md [-o PATH] [--version X.Y.Z] [--summary]``
compiles (or reuses) the run's dossier; ``ideamine dossier verify FILE`` checks a JSON export's
signature (exit 1 on a mismatch).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping
from pathlib import Path

import click

from ideamine import service
from ideamine.cli.app import (
    EXIT_FAILED,
    STORE_OPTION,
    Exit,
    chosen_run,
    console,
    echo,
    err,
    escape,
    runs_async,
)
from ideamine.dossier.compile import CompiledDossier, compile_run
from ideamine.dossier.export_html import render_html
from ideamine.dossier.export_json import render_json
from ideamine.dossier.export_md import render_markdown
from ideamine.dossier.export_pdf import render_pdf
from ideamine.dossier.schema import schema_errors
from ideamine.dossier.sign import verify_file
from ideamine.errors import UsageError

__all__ = ["dossier"]

FORMATS: Mapping[str, tuple[str, Callable[[Mapping[str, object]], str | bytes]]] = {
    "json": ("json", render_json),
    "html": ("html", render_html),
    "pdf": ("pdf", render_pdf),
    "md": ("md", render_markdown),
}


class _DossierGroup(click.Group):
    """A group whose default command is ``compile``: ``dossier RUN …`` means
    ``dossier compile RUN …`` unless the first word names a subcommand."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ctx.help_option_names:
            args = ["compile", *args]
        return super().parse_args(ctx, args)


@click.group(cls=_DossierGroup)
def dossier() -> None:
    """Compile, export and verify release dossiers.

    \b
    ideamine dossier RUN --format html [-o FILE]   compile RUN's dossier and export it
    ideamine dossier RUN --summary                 completeness and what is missing
    ideamine dossier verify FILE.json              check a JSON export's signature
    """


@dossier.command("compile")
@click.argument("run_id", required=False)
@STORE_OPTION
@click.option(
    "--format",
    "fmt",
    type=click.Choice(sorted(FORMATS)),
    default=None,
    help="Export format (default json, or none with --summary).",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    default=None,
    help="File to write (default dossier-RUN-VERSION.FORMAT; '-' for stdout).",
)
@click.option(
    "--version", "version", metavar="X.Y.Z", help="Use this version, not the derived one."
)
@click.option("--summary", is_flag=True, help="Print completeness and the missing items.")
@runs_async
async def compile_command(
    run_id: str | None,
    store_ref: str | None,
    fmt: str | None,
    output: Path | None,
    version: str | None,
    summary: bool,
) -> None:
    """Compile RUN_ID's dossier (reused if the run has not changed) and export it.

    RUN_ID defaults to the newest run of the store."""
    store = await service.open_store(store_ref, create=False)
    try:
        run_id = await chosen_run(store, run_id)
        compiled = await compile_run(store, run_id, version=version)
    finally:
        await store.close()
    if summary:
        _print_summary(compiled)
    if fmt is None and summary:
        return
    fmt = fmt or "json"
    extension, render = FORMATS[fmt]
    data = await asyncio.to_thread(render, compiled.document)
    target = output or Path(f"dossier-{run_id}-{compiled.record.version}.{extension}")
    if str(target) == "-":
        echo(data, nl=False)  # click writes bytes to the binary buffer
        return
    await asyncio.to_thread(_write, target, data)
    state = "reused" if compiled.reused else "compiled"
    err.print(
        f"dossier {compiled.record.version} of run {run_id} ({state}, sha256 "
        f"{compiled.record.sha256[:12]}) written to {escape(str(target))}"
    )


def _write(target: Path, data: str | bytes) -> None:
    try:
        if isinstance(data, str):
            target.write_text(data, encoding="utf-8")
        else:
            target.write_bytes(data)
    except OSError as exc:
        raise UsageError(
            f"cannot write {target}: {exc.strerror}", hint="choose a writable path with -o"
        ) from exc


def _print_summary(compiled: CompiledDossier) -> None:
    document = compiled.document
    completeness = document["completeness"]
    status = document["status"]
    assert isinstance(completeness, Mapping)
    assert isinstance(status, Mapping)
    console.print(
        f"dossier [bold]{escape(str(document['title']))}[/] {compiled.record.version}: "
        f"[bold]{completeness['percent']} %[/] complete ({completeness['present']} of "
        f"{completeness['total']} items present, {completeness['gaps']} evidence gaps, "
        f"{completeness['missing']} missing)"
    )
    if status["partial"]:
        console.print(f"[yellow]partial:[/] {escape(str(status['note']))}")
    incomplete = completeness["incomplete"]
    assert isinstance(incomplete, list)
    for item in incomplete:
        colour = "red" if item["status"] == "missing" else "yellow"
        console.print(
            f"  [{colour}]{item['status']:<7}[/] {item['section']}/{item['key']}: "
            f"{escape(str(item['reason']))}",
            soft_wrap=True,
        )


@dossier.command("verify")
@click.argument("file", type=click.Path(path_type=Path))
@runs_async
async def verify_command(file: Path) -> None:
    """Check FILE (a JSON export) against its SHA-256 signature; exit 1 on a mismatch."""
    result = await asyncio.to_thread(verify_file, file)
    if not result.ok:
        err.print(
            f"[red]dossier signature mismatch[/] in {escape(str(file))}: {result.reason}; "
            f"signed {result.expected or 'nothing'}, content hashes to {result.actual}"
        )
        raise Exit(EXIT_FAILED)
    problems = await asyncio.to_thread(_schema_problems, file)
    console.print(f"[green]dossier signature verifies[/]: sha256 {result.actual}")
    if problems:
        err.print(
            f"[yellow]warning:[/] the file does not match the published schema: "
            f"{escape(problems[0])}"
            + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else "")
        )


def _schema_problems(file: Path) -> list[str]:
    return schema_errors(json.loads(file.read_text(encoding="utf-8")))
