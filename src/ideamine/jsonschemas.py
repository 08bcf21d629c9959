"""jsonschema, imported without two of its optional format plug-ins; every IdeaMine module
that validates JSON Schema imports it from here.

``rfc3987_syntax`` (installed through cyclonedx-python-lib's extras) builds a Lark grammar
when imported, about 1 s, only to check the ``iri`` formats; ``isoduration`` imports arrow
(~60 ms) for the ``duration`` format. IdeaMine's own validation uses no FormatChecker. The SBOM
check (cyclonedx's validator, which does use one) therefore does not check ``iri-reference``
values' syntax; no CycloneDX schema asserts ``duration``. jsonschema registers its format
checkers when it is imported, so the block lasts for that one import and holds only on the
thread making it: code that imports these modules later, or meanwhile on another thread, gets
the real ones. Should jsonschema already be imported (by another library,
first), it is used as it is.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import threading
from collections.abc import Sequence
from types import ModuleType

_SLOW_FORMAT_PLUGINS = ("rfc3987_syntax", "isoduration")


class _Refusal(importlib.abc.MetaPathFinder):
    """Refuses ``names`` to imports on the thread that made it, until ``lift``, so that
    jsonschema, imported there, finds them absent; other threads (jsonschema is imported on a
    thread while a run's first agents run, ``runtime.preload``) import them as usual.

    It stays in ``sys.meta_path`` once lifted (a no-op then): removing a finder shifts the
    list under another thread's import in progress, which could skip the finder after it."""

    def __init__(self, names: Sequence[str]) -> None:
        self._names = frozenset(names)
        self._thread: int | None = threading.get_ident()

    def lift(self) -> None:
        self._thread = None

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname in self._names and threading.get_ident() == self._thread:
            raise ModuleNotFoundError(f"No module named {fullname!r}", name=fullname)
        return None  # the other finders' business


def _import_without_slow_format_plugins() -> None:
    if "jsonschema" in sys.modules:
        return
    refusal = _Refusal([name for name in _SLOW_FORMAT_PLUGINS if name not in sys.modules])
    sys.meta_path.insert(0, refusal)  # in front: another thread at most asks it twice
    try:
        importlib.import_module("jsonschema")
    finally:
        refusal.lift()


_import_without_slow_format_plugins()

from jsonschema import Draft202012Validator, SchemaError  # noqa: E402

__all__ = ["Draft202012Validator", "SchemaError"]
