"""IdeaMine: turn a raw software idea into a reviewed, versioned release dossier.

The package is laid out by architecture (see docs/architecture.md): ``config`` loads and
validates YAML, ``engine`` decides (pure), ``runtime`` carries decisions out, ``stores`` keep
the truth, ``agents`` and ``llm`` produce outputs, ``cli`` talks to people.
"""

import importlib
import sys
from importlib.metadata import PackageNotFoundError, version


def _import_jsonschema_without_iri_plugin() -> None:
    """Import jsonschema while its optional ``rfc3987_syntax`` plug-in looks absent.

    That plug-in (installed through cyclonedx-python-lib's extras) builds a Lark grammar when
    imported, about 1 s on every ``ideamine`` start, only to check the ``iri`` formats, which
    IdeaMine never asserts (it validates without a FormatChecker). The block lasts for this
    one import: code that imports ``rfc3987_syntax`` later gets the real module.
    """
    if "jsonschema" in sys.modules or "rfc3987_syntax" in sys.modules:
        return
    sys.modules["rfc3987_syntax"] = None  # type: ignore[assignment]  # "absent" to importers
    try:
        importlib.import_module("jsonschema")
    finally:
        if sys.modules.get("rfc3987_syntax", ...) is None:
            del sys.modules["rfc3987_syntax"]


_import_jsonschema_without_iri_plugin()

try:
    __version__ = version("ideamine")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0"

__all__ = ["__version__"]
