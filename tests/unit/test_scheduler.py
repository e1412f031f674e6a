"""The scheduling policy: unit order, weights and the durations cache (no processes)."""

from __future__ import annotations

import os

from tach.results import TestResult
from tach.scheduler import Unit, UnitQueue, estimate_weight, load_durations, save_durations


def test_heaviest_unit_first_by_recorded_durations():
    units = [
        Unit("a", ["a"], ["a::1", "a::2"]),
        Unit("b", ["b"], ["b::1"]),
        Unit("c", ["c"], ["c::1"]),
    ]
    queue = UnitQueue(units, {"a::1": 0.1, "a::2": 0.1, "b::1": 2.0, "c::1": 0.5})
    assert [queue.pop().id for _ in range(3)] == ["b", "c", "a"]
    assert queue.pop() is None


def test_without_history_more_tests_weigh_more():
    small, big = Unit("small", ["s"], ["s::1"]), Unit("big", ["b"], [f"b::{i}" for i in range(10)])
    queue = UnitQueue([small, big])
    assert queue.pop() is big


def test_unknown_tests_are_estimated_next_to_known_ones():
    unit = Unit("u", ["u"], ["u::known", "u::new"])
    assert estimate_weight(unit, {"u::known": 1.0}) > estimate_weight(
        unit, {"u::known": 1.0, "u::new": 0.0}
    )


def test_retry_runs_next_and_clear_drops_the_rest():
    queue = UnitQueue([Unit("a", ["a"]), Unit("b", ["b"])])
    first = queue.pop()
    retry = Unit("rest", ["x::1"])
    queue.push_front(retry)
    assert queue.pop() is retry
    assert [u.id for u in queue.clear()] != [first.id]
    assert len(queue) == 0


def test_durations_round_trip_and_merge(tmp_path):
    done = TestResult("t::a")
    done.add({"when": "call", "outcome": "passed", "duration": 0.5})
    never_ran = TestResult("t::b")
    save_durations(tmp_path, [done, never_ran], {"t::old": 1.0})
    assert load_durations(tmp_path) == {"t::a": 0.5, "t::old": 1.0}
    assert [p for p in os.listdir(tmp_path)] == ["durations.json"]  # no temporary left behind


def test_corrupt_or_foreign_durations_are_ignored(tmp_path):
    (tmp_path / "durations.json").write_bytes(b"\x00not json")
    assert load_durations(tmp_path) == {}
    (tmp_path / "durations.json").write_bytes(b'["a list"]')
    assert load_durations(tmp_path) == {}
    (tmp_path / "durations.json").write_bytes(b'{"t::a": "slow", "t::b": 0.25}')
    assert load_durations(tmp_path) == {"t::b": 0.25}
