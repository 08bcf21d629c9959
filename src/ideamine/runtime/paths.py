"""Where a run's files live (its workspace): the data directory."""

from __future__ import annotations

import os
from pathlib import Path

from ideamine.stores.base import Store

__all__ = ["DATA_DIR_ENV", "data_dir_for"]

DATA_DIR_ENV = "IDEAMINE_DATA_DIR"
DEFAULT_DATA_DIR = "ideamine-data"


def data_dir_for(store: Store, flag: Path | None = None) -> Path:
    """``--data-dir``, else ``$IDEAMINE_DATA_DIR``, else ``<store file>.d`` beside a SQLite
    store, else ``./ideamine-data`` (absolute, so a worker's later ``chdir`` cannot move it)."""
    if flag is not None:
        return flag.expanduser().resolve()
    value = os.environ.get(DATA_DIR_ENV)
    if value:
        return Path(value).expanduser().resolve()
    path = getattr(store, "path", None)
    if isinstance(path, Path):
        return path.resolve().with_name(path.name + ".d")
    return Path(DEFAULT_DATA_DIR).resolve()
