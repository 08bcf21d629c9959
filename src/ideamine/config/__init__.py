"""Configuration: YAML files in, validated frozen specs out."""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

CONFIG_ENV = "IDEAMINE_CONFIG"  # the overlay folder when no --config is given


def default_config_dir() -> Path:
    """The folder of shipped defaults inside the installed package."""
    return Path(str(resources.files("ideamine.config") / "defaults"))


def overlay_folder(overlay: Path | None) -> Path | None:
    """The overlay folder a load reads: ``overlay``, else ``$IDEAMINE_CONFIG``, else none."""
    if overlay is None and os.environ.get(CONFIG_ENV):
        return Path(os.environ[CONFIG_ENV])
    return overlay


def config_file(overlay: Path | None, relative: str) -> Path | None:
    """The file a load reads as ``relative``: the overlay folder's, else the shipped default;
    ``None`` if neither exists."""
    if overlay is not None and (overlay / relative).is_file():
        return overlay / relative
    default = default_config_dir() / relative
    return default if default.is_file() else None
