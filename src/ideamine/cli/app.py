"""Shared CLI plumbing: the one place that prints errors and picks exit codes."""

from __future__ import annotations

import asyncio
import functools
import importlib
import json
import os
import sys
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar, cast

import click

from ideamine.errors import ConfigError, IdeaMineError, RunStateError, StoreError, UsageError

if TYPE_CHECKING:
    from rich.console import Console

    from ideamine.stores.base import Store

__all__ = [
    "CONFIG_OPTION",
    "EXIT_FAILED",
    "EXIT_OK",
    "EXIT_STORE",
    "EXIT_USAGE",
    "JSON_OPTION",
    "STORE_OPTION",
    "Exit",
    "Lazy",
    "LazyGroup",
    "OutputClosed",
    "chosen_run",
    "clip",
    "console",
    "echo",
    "err",
    "escape",
    "made",
    "print_json",
    "runs_async",
]

EXIT_OK = 0
EXIT_FAILED = 1  # the run failed or needs attention; verify found a broken chain
EXIT_USAGE = 2  # bad flags, idea, config, unknown run, or a run that cannot do that now
EXIT_STORE = 3  # the store cannot be opened or used
EXIT_INTERRUPTED = 130
EXIT_PIPE = 141  # the reader of stdout went away (`| head`): the shell's code for SIGPIPE


@dataclass(frozen=True, slots=True)
class Lazy:
    """A command imported only when it is used: where it is (``module:attribute``) and the
    one line ``--help`` lists it with (its help's first sentence, so the list costs no
    import; a test keeps the two equal)."""

    target: str
    summary: str


class LazyGroup(click.Group):
    """A command group whose heavier commands are imported when they are used, not at every
    start (nor by ``--help``): ``lazy`` maps a command's name to where it is."""

    def __init__(self, *args: Any, lazy: Mapping[str, Lazy] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._lazy = dict(lazy or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self._lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self._lazy and cmd_name not in self.commands:
            module, _, attribute = self._lazy[cmd_name].target.partition(":")
            command = getattr(importlib.import_module(module), attribute)
            if not isinstance(command, click.Command):
                raise TypeError(f"{self._lazy[cmd_name].target} is not a click command")
            self.add_command(command, cmd_name)
        return super().get_command(ctx, cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The list of commands, lazy ones by their summary (as click would, unimported)."""
        names = self.list_commands(ctx)
        limit = formatter.width - 6 - max(map(len, names), default=0)
        rows: list[tuple[str, str]] = []
        for name in names:
            if name in self._lazy and name not in self.commands:  # its summary as click shows it
                command: click.Command | None = click.Command(name, help=self._lazy[name].summary)
            else:
                command = self.get_command(ctx, name)
            if command is not None and not command.hidden:
                rows.append((name, command.get_short_help_str(limit)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


class OutputClosed(Exception):
    """The reader of the command's output went away (``ideamine events RUN | head``):
    ``runs_async`` ends the command quietly with exit code 141."""


def echo(text: str | bytes, *, nl: bool = True) -> None:
    """``click.echo`` to stdout; ``OutputClosed`` if its reader went away."""
    try:
        click.echo(text, nl=nl)
    except BrokenPipeError as exc:
        raise OutputClosed from exc


def escape(text: str) -> str:
    """``text`` with rich's markup escaped (``rich.markup.escape``), rich imported at the
    first call: a command that prints nothing through rich (``-q``, ``--json``) starts
    without it (~20 ms)."""
    from rich.markup import escape as rich_escape  # noqa: PLC0415  (see above)

    return rich_escape(text)


def _console(*, stderr: bool = False) -> Console:
    """A console that wraps lines at the terminal's width, and not at all when its output is
    piped or redirected: a logged line stays whole, so a run id or a command in it can be
    grepped and copied (tables still fit 80 columns there, or ``$COLUMNS``)."""
    made = _console_class()(stderr=stderr, highlight=False)
    made.soft_wrap = not made.is_terminal
    return made


@functools.cache
def _console_class() -> type[Console]:
    from rich.console import Console  # noqa: PLC0415  (made at the first print: `escape`)

    class _Console(Console):
        def on_broken_pipe(self) -> None:
            """The reader went away (rich's own handler exits 1, the code for a failed run).
            Nothing more is printed here; on stdout the command ends (``OutputClosed``), on
            stderr it goes on and exits with its own code, its messages unread."""
            self.quiet = True
            if not self.stderr:
                raise OutputClosed

    return _Console


class _Deferred:
    """Stands for a console made at its first use (``_console``); ``made`` is that console."""

    def __init__(self, *, stderr: bool) -> None:
        self._stderr = stderr
        self._made: Console | None = None

    @property
    def made(self) -> Console:
        if self._made is None:
            self._made = _console(stderr=self._stderr)
        return self._made

    def __getattr__(self, name: str) -> Any:
        return getattr(self.made, name)


def clip(text: str, most: int) -> str:
    """``text`` on one line, cut to at most ``most`` characters with an ellipsis if longer."""
    line = " ".join(text.split())
    return line if len(line) <= most else line[: most - 1].rstrip() + "…"


console = cast("Console", _Deferred(stderr=False))  # rich is imported at the first print
err = cast("Console", _Deferred(stderr=True))


def made(stand_in: Console) -> Console:
    """The console ``console`` or ``err`` stands for, made now if it was not yet: for what
    needs the object itself (rich's ``Live`` enters it with ``with``)."""
    return stand_in.made if isinstance(stand_in, _Deferred) else stand_in


async def chosen_run(store: Store, run_id: str | None, *, note: bool = True) -> str:
    """``run_id`` as given, or the newest run's id when it was left out; with ``note``, say
    on stderr which run that is (the output itself stays what it is with the id).

    Raises:
        UsageError: the store holds no runs yet.
    """
    if run_id is not None:
        return run_id
    newest = await store.list_runs(1)
    if not newest:
        raise UsageError(
            "this store holds no runs yet", hint='start one with ideamine run "your idea"'
        )
    if note:
        err.print(f"(run {newest[0].id}, the newest in the store)")
    return newest[0].id


STORE_OPTION = click.option(
    "--store",
    "store_ref",
    metavar="PATH|URL",
    default=None,
    help="A SQLite file or postgresql://… (default ./ideamine.db or $IDEAMINE_STORE).",
)
CONFIG_OPTION = click.option(
    "--config",
    "config_dir",
    metavar="DIR",
    default=None,
    type=click.Path(path_type=Path),
    help="Folder overlaying the shipped config ($IDEAMINE_CONFIG).",
)
JSON_OPTION = click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print machine-readable JSON (fields documented in docs/cli.md).",
)

P = ParamSpec("P")
T = TypeVar("T")


class Exit(Exception):
    """Leave the command with ``code`` after it has printed what it had to say."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


def exit_code(error: IdeaMineError) -> int:
    """The documented exit code for an error."""
    if isinstance(error, StoreError):
        return EXIT_STORE
    if isinstance(error, UsageError | RunStateError | ConfigError):
        return EXIT_USAGE
    return EXIT_FAILED


def report(error: IdeaMineError) -> None:
    """Print an error on one line (each config problem on its own line), with its hint."""
    if isinstance(error, ConfigError):
        for problem in error.problems:
            err.print(f"[red]error:[/] {escape(str(problem))}", soft_wrap=True)
        return
    hint = f" [dim](hint: {escape(error.hint)})[/]" if error.hint else ""
    err.print(f"[red]error:[/] {escape(error.message)}{hint}", soft_wrap=True)


def runs_async(command: Callable[P, Awaitable[None]]) -> Callable[P, None]:
    """Run an async command once with ``asyncio.run`` and map errors to exit codes."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> None:
        try:
            asyncio.run(command(*args, **kwargs))  # type: ignore[arg-type]
        except Exit as stop:
            sys.exit(stop.code)
        except IdeaMineError as error:
            report(error)
            sys.exit(exit_code(error))
        except KeyboardInterrupt:
            err.print("[yellow]interrupted[/]")
            sys.exit(EXIT_INTERRUPTED)
        except OutputClosed:
            _discard_stdout()
            sys.exit(EXIT_PIPE)

    return wrapper


def _discard_stdout() -> None:
    """Point stdout at /dev/null, so that the interpreter's last flush of what is still
    buffered for the closed pipe fails no more (it would print "Exception ignored")."""
    try:
        descriptor = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # not a file (a test's capture, or None)
        return
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, descriptor)
    finally:
        os.close(null)


def print_json(value: object) -> None:
    """Machine-readable output: one JSON document on stdout."""
    echo(json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True))
