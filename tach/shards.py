"""Shards: the selected units of a run cut into N parts, one per CI machine (``--shard K/N``).

Each machine of a CI matrix plans the whole run from the same inputs (the source tree, the
command line, the durations) and keeps its own part, so no machine talks to another and every
selected test lands in exactly one shard:

1. The planned units (after selection, ``--lf``/``--ff`` and slicing) are grouped by the
   module they run: the slices of a sliced module stay together, so a shard runs whole
   modules, and a module's slicing (which depends on the machine's worker count) never
   changes which shard runs it.
2. Each group weighs what :func:`tach.scheduler.estimate_weight` makes of its module as
   planned before slicing, with the durations shards are balanced by (``--durations-file``,
   else ``.tach/durations.json``), rounded to the microsecond so that float noise cannot
   reorder two groups; under ``--lf``, what it makes of the tests that are rerun.
3. Longest processing time first: the groups, heaviest first (ties by id), each go to the
   shard with the least weight so far (ties to the lowest shard number). Nothing depends on
   hash seeds or a machine's dict order.

A shard may get nothing (more shards than modules): it runs no tests and exits 0.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tach.scheduler import Unit


def group_of(unit: Unit) -> str:
    """The module a unit runs: its id without a slice's ``[k/n]``."""
    if unit.slice is not None:
        return unit.id.rsplit(" [", 1)[0]
    return unit.id


def assign(weights: dict[str, float], total: int) -> dict[str, int]:
    """Each group's shard (1-based) by longest processing time first: the heaviest group first
    (ties broken by id), each to the shard with the least weight so far (ties: the lowest)."""
    loads = [(0.0, index) for index in range(1, total + 1)]
    heapq.heapify(loads)
    shard_of: dict[str, int] = {}
    for group in sorted(weights, key=lambda g: (-weights[g], g)):
        load, index = heapq.heappop(loads)
        shard_of[group] = index
        heapq.heappush(loads, (round(load + weights[group], 6), index))
    return shard_of


def cut(
    units: Sequence[Unit], total: int, weigh: Callable[[str, list[Unit]], float]
) -> dict[str, int]:
    """Each group of ``units`` (:func:`group_of`) and its shard (1-based) of ``total``."""
    groups: dict[str, list[Unit]] = {}
    for unit in units:
        groups.setdefault(group_of(unit), []).append(unit)
    return assign({g: round(weigh(g, members), 6) for g, members in groups.items()}, total)


def plan_digest(shard_of: dict[str, int]) -> str:
    """A digest of the whole cut: every shard of one run has the same, and ``tach merge``
    refuses shards whose digests differ (planned from other inputs, a module may have run in
    no shard at all)."""
    import hashlib

    text = "\n".join(f"{group}\t{index}" for group, index in sorted(shard_of.items()))
    return hashlib.sha256(text.encode()).hexdigest()[:16]
