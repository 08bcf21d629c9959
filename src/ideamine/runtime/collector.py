"""The cyclic garbage collector's pace in a process that carries runs out.

CPython collects its youngest generation after every 700 more container objects allocated
than freed. A runner allocates many per task (records, events, contexts, futures), most of
them freed by reference counting within the task, and every tenth young collection scans
the middle generation, every hundredth the whole heap (the loaded pipeline included). In
W2 (2,000 tasks in one phase) that was ~200 collections per run, 14 of them full ones, taking
~80 ms, a tenth of the run's CPU; collecting the youngest generation every 10,000
allocations instead: 7 collections, ~35 ms, and the run ~5 % faster (docs/benchmarks.md).

At exit the interpreter collects the whole heap once more, only to free it: 60–100 ms at the
end of an `ideamine resume` (the loaded pipeline, the run's records). A command that is done
does not need that; ``skip_collection_at_exit`` leaves the heap uncollected instead (every
exit handler still runs, and objects freed by reference counting are still finalized).
"""

from __future__ import annotations

import atexit
import gc

__all__ = ["YOUNGEST", "pace_collector", "skip_collection_at_exit"]

YOUNGEST = 10_000  # net container allocations between collections of the youngest generation
_DEFAULT_YOUNGEST = 700  # CPython's


def pace_collector() -> None:
    """Collect the youngest generation every ``YOUNGEST`` allocations, keeping the older
    generations' ratios; a process whose collector was already tuned (or disabled) by
    whoever embeds IdeaMine is left as it is."""
    youngest, middle, oldest = gc.get_threshold()
    if youngest == _DEFAULT_YOUNGEST:
        gc.set_threshold(YOUNGEST, middle, oldest)


def skip_collection_at_exit() -> None:
    """Move every object to the collector's permanent generation once the other exit
    handlers have run (handlers run last-registered first: call this early), so the final
    collection finds nothing to scan."""
    atexit.register(gc.freeze)
