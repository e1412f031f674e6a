"""The garbage collector settings of Tach's own processes."""

from __future__ import annotations

import gc
import weakref

from tach.heap import young_collections_only


class Node:
    """A container that can sit in a reference cycle and be watched through a weak reference."""

    def __init__(self) -> None:
        self.other: Node | None = None


def oldest_collections() -> int:
    return gc.get_stats()[2]["collections"]


def test_young_collections_only_skips_full_collections_and_still_frees_young_cycles():
    thresholds = gc.get_threshold()
    with young_collections_only():
        full_before = oldest_collections()
        kept = [[] for _ in range(1_000_000)]  # long-lived: promoted, never walked again
        assert oldest_collections() == full_before

        first, second = Node(), Node()
        first.other, second.other = second, first
        watch = weakref.ref(first)
        del first, second
        churn = [[] for _ in range(10_000)]  # enough allocations for young collections
        assert watch() is None, "a young cycle was not freed by the automatic collections"
        del kept, churn
    assert gc.get_threshold() == thresholds


def test_full_collections_run_without_it():
    """The check above can fail: the same allocations start a full collection normally."""
    gc.collect()
    full_before = oldest_collections()
    kept = [[] for _ in range(1_000_000)]
    assert oldest_collections() > full_before
    del kept
