"""The cyclic garbage collector in Tach's own processes.

Tach's processes build many long-lived objects and few reference cycles: discovery's
summaries and records, the supervisor's results and reports, a worker's collected items. CPython
starts a full collection, which walks every tracked object, each time their number has grown by
a quarter, so for these processes the collector costs time in proportion to what they keep and
finds almost nothing. Two settings, for two needs:

* :func:`gc_paused`: no collection at all, for a bounded piece of work that makes almost no
  garbage (discovery);
* :func:`young_collections_only`: the young generations only, for work that runs user code or
  long loops and may drop cycles while it goes (the supervisor's run, a worker's collection).
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator

#: A threshold the count of the oldest generation's pending collections never reaches (a C int).
NEVER = 2**31 - 1


@contextlib.contextmanager
def gc_paused(*, freeze: bool = False) -> Iterator[None]:
    """Pause the cyclic garbage collector (and resume it afterwards if it was on).

    Discovery allocates hundreds of thousands of small, long-lived objects (summaries, ASTs,
    records) and almost no reference cycles; every collection would traverse all of them,
    for nothing, which costs a tenth of a cold run and more. Collections resume afterwards.
    ``freeze`` is for a caller that keeps what was built until its process ends: the objects
    still alive are moved out of the collector's reach (``gc.freeze``) before it resumes, as
    its first collection would otherwise traverse every one of them.
    """
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if freeze:
            gc.freeze()
        if was:
            gc.enable()


@contextlib.contextmanager
def young_collections_only() -> Iterator[None]:
    """Leave out CPython's automatic full collections while the block runs.

    The two young generations are still collected, so cyclic garbage made and dropped inside
    the block is freed as before; what has reached the oldest generation waits for the first
    full collection after it.
    """
    young, middle, old = gc.get_threshold()
    gc.set_threshold(young, middle, NEVER)
    try:
        yield
    finally:
        gc.set_threshold(young, middle, old)
