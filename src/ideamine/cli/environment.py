"""The ``IDEAMINE_*`` environment variables IdeaMine reads, and the misspellings of them that
would otherwise be ignored in silence (``IDEAMINE_STOR=x.db`` writing ``./ideamine.db``)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

__all__ = ["VARIABLES", "misspelt"]

# Every variable IdeaMine reads (docs/cli.md lists them); a test checks the source against it.
VARIABLES = (
    "IDEAMINE_ADVISORIES",
    "IDEAMINE_API_TOKEN",
    "IDEAMINE_CONFIG",
    "IDEAMINE_DATA_DIR",
    "IDEAMINE_LOG",
    "IDEAMINE_MODEL",
    "IDEAMINE_SQLITE_SYNC",
    "IDEAMINE_STORE",
)
PREFIX = "IDEAMINE_"
# Compared after the prefix (which every name shares): STOR, CONFG, MODELS, DATADIR, LOGS are
# near misses; STATE, CORE, TEST_STORE, TEST_SLEEP are other names.
CLOSE = 0.8


def misspelt(environ: Mapping[str, str]) -> Iterator[tuple[str, str]]:
    """(name set, variable it is close to) for each ``IDEAMINE_*`` name in ``environ`` that
    IdeaMine does not read but nearly spells one it does. Names near none are left alone:
    they may be another program's."""
    unknown = sorted(n for n in environ if n.startswith(PREFIX) and n not in VARIABLES)
    if not unknown:
        return
    import difflib  # noqa: PLC0415  (every command starts here: only when there is one)

    by_suffix = {name.removeprefix(PREFIX): name for name in VARIABLES}
    for name in unknown:
        close = difflib.get_close_matches(
            name.removeprefix(PREFIX), list(by_suffix), n=1, cutoff=CLOSE
        )
        if close:
            yield name, by_suffix[close[0]]
