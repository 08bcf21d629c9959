"""jsonschema, imported without two of its optional format plug-ins; every IdeaMine module
that validates JSON Schema imports it from here.

``rfc3987_syntax`` (installed through cyclonedx-python-lib's extras) builds a Lark grammar
when imported, about 1 s, only to check the ``iri`` formats; ``isoduration`` imports arrow
(~60 ms) for the ``duration`` format. IdeaMine's own validation uses no FormatChecker. The SBOM
check (cyclonedx's validator, which does use one) therefore does not check ``iri-reference``
values' syntax; no CycloneDX schema asserts ``duration``. jsonschema registers its format
checkers when it is imported, so the block lasts for that one import: code that imports these
modules later gets the real ones. Should jsonschema already be imported (by another library,
first), it is used as it is.
"""

from __future__ import annotations

import importlib
import sys

_SLOW_FORMAT_PLUGINS = ("rfc3987_syntax", "isoduration")


def _import_without_slow_format_plugins() -> None:
    if "jsonschema" in sys.modules:
        return
    blocked = [name for name in _SLOW_FORMAT_PLUGINS if name not in sys.modules]
    for name in blocked:
        sys.modules[name] = None  # type: ignore[assignment]  # "absent" to importers
    try:
        importlib.import_module("jsonschema")
    finally:
        for name in blocked:
            if sys.modules.get(name, ...) is None:
                del sys.modules[name]


_import_without_slow_format_plugins()

from jsonschema import Draft202012Validator, SchemaError  # noqa: E402

__all__ = ["Draft202012Validator", "SchemaError"]
