"""IdeaMine: turn a raw software idea into a reviewed, versioned release dossier.

The package is laid out by architecture (see docs/architecture.md): ``config`` loads and
validates YAML, ``engine`` decides (pure), ``runtime`` carries decisions out, ``stores`` keep
the truth, ``agents`` and ``llm`` produce outputs, ``cli`` talks to people.

Importing the package imports nothing else, so a command that only reads the store starts
without the configuration and validation stack (pydantic, jsonschema, Jinja).
"""

from __future__ import annotations

__all__ = ["__version__"]


def __getattr__(name: str) -> str:
    """``__version__``, read from the installed distribution when first asked for (reading
    package metadata costs ~20 ms of imports at every start otherwise)."""
    if name != "__version__":
        raise AttributeError(f"module 'ideamine' has no attribute {name!r}")
    from importlib.metadata import PackageNotFoundError, version  # noqa: PLC0415

    try:
        found = version("ideamine")
    except PackageNotFoundError:  # running from a source tree that was not installed
        found = "0.0.0"
    globals()["__version__"] = found
    return found
