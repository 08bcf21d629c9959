"""IdeaMine: turn a raw software idea into a reviewed, versioned release dossier.

The package is laid out by architecture (see docs/architecture.md): ``config`` loads and
validates YAML, ``engine`` decides (pure), ``runtime`` carries decisions out, ``stores`` keep
the truth, ``agents`` and ``llm`` produce outputs, ``cli`` talks to people.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("ideamine")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0"

__all__ = ["__version__"]
