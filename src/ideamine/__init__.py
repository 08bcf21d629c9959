"""IdeaMine: turn a raw software idea into a reviewed, versioned release dossier.

The package is laid out by architecture (see docs/architecture.md): ``config`` loads and
validates YAML, ``engine`` decides (pure), ``runtime`` carries decisions out, ``stores`` keep
the truth, ``agents`` and ``llm`` produce outputs, ``cli`` talks to people.
"""

import importlib
import sys
from importlib.metadata import PackageNotFoundError, version

_SLOW_FORMAT_PLUGINS = ("rfc3987_syntax", "isoduration")


def _import_jsonschema_without_slow_format_plugins() -> None:
    """Import jsonschema while two of its optional format plug-ins look absent.

    ``rfc3987_syntax`` (installed through cyclonedx-python-lib's extras) builds a Lark grammar
    when imported, about 1 s on every ``ideamine`` start, only to check the ``iri`` formats;
    ``isoduration`` imports arrow (~60 ms) for the ``duration`` format. IdeaMine's own
    validation uses no FormatChecker. The SBOM check (cyclonedx's validator, which does use
    one) therefore does not check ``iri-reference`` values' syntax; no CycloneDX schema
    asserts ``duration``. jsonschema registers its format checkers at import, so the block
    lasts for that one import: code that imports these modules later gets the real ones.
    """
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


_import_jsonschema_without_slow_format_plugins()

try:
    __version__ = version("ideamine")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0"

__all__ = ["__version__"]
