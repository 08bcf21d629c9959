"""Shared CLI plumbing: the one place that prints errors and picks exit codes."""

from __future__ import annotations

import asyncio
import functools
import json
import sys
from collections.abc import Awaitable, Callable
from typing import ParamSpec, TypeVar

import click
from rich.console import Console
from rich.markup import escape

from ideamine.errors import ConfigError, IdeaMineError, RunStateError, StoreError, UsageError

__all__ = [
    "EXIT_FAILED",
    "EXIT_OK",
    "EXIT_STORE",
    "EXIT_USAGE",
    "Exit",
    "console",
    "err",
    "print_json",
    "runs_async",
]

EXIT_OK = 0
EXIT_FAILED = 1  # the run failed or needs attention; verify found a broken chain
EXIT_USAGE = 2  # bad flags, idea, config, unknown run, or a run that cannot do that now
EXIT_STORE = 3  # the store cannot be opened or used
EXIT_INTERRUPTED = 130

console = Console(highlight=False)
err = Console(stderr=True, highlight=False)

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

    return wrapper


def print_json(value: object) -> None:
    """Machine-readable output: one JSON document on stdout."""
    click.echo(json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True))
