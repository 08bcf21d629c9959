"""Importing, on a thread while a run's tasks wait, the modules its next steps need.

The runtime starts a run's first agents before it imports what checks their outputs
(jsonschema, about 50 ms) and what judges their phase (the gate judge with Q/A/V and the
guards, and the verdict, ~13 ms): a resumed run's first agents start that much sooner.
``preload`` imports those modules on a thread once the runner has tasks in flight and
nothing else to do, so the first check and the first gate do not wait for them either.
Python's import lock makes this safe: a module the event loop needs meanwhile is waited for,
never imported twice; a module that fails to import here fails again, with its error, where
it is used.
"""

from __future__ import annotations

import importlib
import logging
import sys
import threading
from collections.abc import Sequence

__all__ = ["LATER", "preload"]

log = logging.getLogger(__name__)

# the output checks of every agent (agents.builtin), the gate judge and its verdict
LATER: tuple[str, ...] = (
    "ideamine.jsonschemas",
    "ideamine.runtime.judge",
    "ideamine.runtime.verdict",
)

_lock = threading.Lock()
_started: set[str] = set()


def preload(modules: Sequence[str] = LATER) -> threading.Thread | None:
    """Import those of ``modules`` not imported or being imported yet, in order, on a
    thread of their own; the thread, or None when there is nothing left to import."""
    with _lock:
        todo = [name for name in modules if name not in _started and name not in sys.modules]
        _started.update(todo)
    if not todo:
        return None
    # Not a daemon: the interpreter waits for an import under way rather than stopping
    # the thread in the middle of a module's initialisation at exit.
    thread = threading.Thread(target=_import, args=(todo,), name="ideamine-preload")
    try:
        thread.start()
    except RuntimeError:  # no thread to be had: each module is imported where first used
        log.debug("no thread to preload %s; their first uses import them", todo, exc_info=True)
        return None
    return thread


def _import(names: Sequence[str]) -> None:
    for name in names:
        try:
            importlib.import_module(name)
        except Exception:  # its first use imports it again and raises there
            log.debug("preloading %s failed; its first use will import it", name, exc_info=True)
