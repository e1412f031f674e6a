"""The scheduling policy: unit order, weights and the durations cache (no processes)."""

from __future__ import annotations

import itertools
import os
import types

import pytest

from tach.results import TestResult
from tach.scheduler import (
    TEST_OVERHEAD_SECONDS,
    UNIT_OVERHEAD_SECONDS,
    RecordedFiles,
    Unit,
    UnitQueue,
    estimate_weight,
    even_cuts,
    load_durations,
    plan_units,
    recorded_items,
    save_durations,
    slice_heavy_units,
    unit_tests,
)


def test_heaviest_unit_first_by_recorded_durations():
    units = [
        Unit("a", ["a"], ["a::1", "a::2"]),
        Unit("b", ["b"], ["b::1"]),
        Unit("c", ["c"], ["c::1"]),
    ]
    queue = UnitQueue(units, {"a::1": 0.1, "a::2": 0.1, "b::1": 2.0, "c::1": 0.5})
    assert [queue.pop().id for _ in range(3)] == ["b", "c", "a"]
    assert queue.pop() is None


def test_units_a_plugin_orders_last_are_handed_out_after_the_others_heaviest_first():
    units = [
        Unit("a", ["/p/a.py"], ["a::1", "a::2"]),
        Unit("b", ["/p/b.py"], ["b::1"]),
        Unit("c", ["/p/c.py"], ["c::1"]),
        Unit("d", ["/p/d.py::T"], ["d::1"]),
    ]
    queue = UnitQueue(units, {"a::1": 0.1, "a::2": 0.1, "b::1": 2.0, "c::1": 0.5, "d::1": 3.0})
    queue.run_last(["/p/b.py", "/p/a.py"])
    assert [queue.pop().id for _ in range(4)] == ["d", "c", "b", "a"]


def test_units_of_modules_pytests_walk_leaves_out_are_dropped_and_not_counted():
    units = [
        Unit("a", ["/p/a.py"], ["a::1", "a::2"]),
        Unit("b", ["/p/b.py::T"], ["b::1"]),
        Unit("c", ["/p/c.py"], ["c::1"]),
    ]
    queue = UnitQueue(units)
    assert queue.expected_tests() == 4
    dropped = queue.drop(["/p/b.py", "/p/a.py"])
    assert sorted(u.id for u in dropped) == ["a", "b"]
    assert queue.expected_tests() == 1
    assert [queue.pop().id, queue.pop()] == ["c", None]


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
    # no temporary left behind; the cache ignored by git, as .pytest_cache is
    assert sorted(os.listdir(tmp_path)) == [".gitignore", "durations.json"]
    assert (tmp_path / ".gitignore").read_text().splitlines()[-1] == "*"


def test_corrupt_or_foreign_durations_are_ignored(tmp_path):
    (tmp_path / "durations.json").write_bytes(b"\x00not json")
    assert load_durations(tmp_path) == {}
    (tmp_path / "durations.json").write_bytes(b'["a list"]')
    assert load_durations(tmp_path) == {}
    (tmp_path / "durations.json").write_bytes(b'{"t::a": "slow", "t::b": 0.25}')
    assert load_durations(tmp_path) == {"t::b": 0.25}


def test_slices_split_only_heavy_sliceable_units_into_contiguous_ranges():
    heavy = Unit("big.py", ["/p/big.py"], [f"big.py::t{i}" for i in range(1000)])
    light = Unit("small.py", ["/p/small.py"], ["small.py::t"])
    units = slice_heavy_units([heavy, light], workers=2, can_slice=lambda unit: True)
    slices = [u for u in units if u.slice]
    assert [u.slice.index for u in slices] == list(range(len(slices)))
    assert all(u.slice.ids == heavy.expected for u in slices)
    assert 2 <= len(slices) <= 4
    assert [i for u in slices for i in u.expected] == heavy.expected  # nothing lost or doubled
    for u in slices:
        lo, hi = u.slice.bounds[u.slice.index], u.slice.bounds[u.slice.index + 1]
        assert u.expected == heavy.expected[lo:hi]
    assert all(u.args == heavy.args for u in slices)
    assert light in units


def test_slices_even_out_recorded_durations():
    ids = [
        "m.py::test_slow",
        *[f"m.py::TestA::test_{i}" for i in range(6)],
        *[f"m.py::TestB::TestInner::test_{i}[a::b]" for i in range(3)],
        "m.py::test_x",
        "m.py::test_y",
    ]
    durations = dict.fromkeys(ids, 0.1) | {"m.py::test_slow": 1.2}
    unit = Unit("m.py", ["/p/m.py"], ids, weight=2.3)
    other = Unit("n.py", ["/p/n.py"], ["n.py::t"], weight=0.1)
    units = slice_heavy_units([unit, other], 2, lambda u: True, durations=durations)
    slices = [u for u in units if u.slice]
    # under 500 tests, sliced for its 2.3 recorded seconds, three ways: the slow test alone,
    # then the other 1.1 s halved as nearly as 0.1 s tests allow
    assert len(slices) == 3
    assert slices[0].expected == ["m.py::test_slow"]
    assert [i for u in slices for i in u.expected] == ids
    assert abs(slices[1].weight - slices[2].weight) <= 0.1 + TEST_OVERHEAD_SECONDS + 1e-9
    # without recorded durations, a unit this small is left whole
    unit.weight = 0.0
    assert slice_heavy_units([unit, other], 2, lambda u: True) == [unit, other]
    # and so is a long unit of one test
    single = Unit("s.py", ["/p/s.py"], ["s.py::t"], weight=3.0)
    assert slice_heavy_units([single, other], 2, lambda u: True, durations={"s.py::t": 3.0}) == [
        single,
        other,
    ]


def test_a_dynamic_test_counts_as_the_items_earlier_runs_recorded_for_it():
    # packaging's test_version.py: static discovery names 741 tests, most of them dynamic
    # (parametrized by code), and pytest collects 51,524 items from them: 80% of the suite.
    static = ["v.py::test_static", "v.py::test_dynamic", "v.py::TestC::test_new"]
    recorded_ids = [f"v.py::test_dynamic[{i}]" for i in range(2000)]
    durations = {
        "v.py::test_static": 0.001,
        **dict.fromkeys(recorded_ids, 0.001),
        "other.py::test_a[x]": 0.5,  # another module's parametrized test
    }
    recorded = recorded_items(durations)
    assert recorded["v.py::test_dynamic"] == recorded_ids  # in the order they ran
    unit = Unit("v.py", ["/p/v.py"], static)
    # an id with a duration of its own is itself; a new test with none stays as it is
    assert unit_tests(unit, durations, recorded) == [
        "v.py::test_static",
        *recorded_ids,
        "v.py::TestC::test_new",
    ]
    light = Unit("other.py", ["/p/other.py"], ["other.py::test_a[x]"])
    # without the recorded items the module looks light and stays whole
    assert len(slice_heavy_units([unit, light], 2, lambda u: True, None, durations)) == 2
    units = slice_heavy_units([unit, light], 2, lambda u: True, None, durations, recorded)
    slices = [u for u in units if u.slice]
    assert len(slices) >= 2
    all_ids = unit_tests(unit, durations, recorded)
    assert all(u.slice.ids == all_ids for u in slices)
    assert [i for u in slices for i in u.expected] == all_ids  # nothing lost or doubled
    assert estimate_weight(unit, durations, recorded) > estimate_weight(light, durations)


def test_a_directory_unit_weighs_what_earlier_runs_recorded_under_it(tmp_path):
    # pygments' sample files: a plugin collects them, static discovery knows none of them
    durations = {
        "tests/examples/a/one.txt::": 1.0,
        "tests/examples/a/two.txt::": 0.5,
        "tests/examples/a/deep/three.txt::": 0.25,
        "tests/examples/a/test_mod.py::test_x": 4.0,  # a module unit of its own
        "tests/examples/ab/other.txt::": 8.0,  # a sibling whose name starts the same
        "tests/examples/top.txt::": 2.0,
        "tests/test_api.py::test_f[1]": 16.0,
    }
    root = tmp_path
    files = RecordedFiles(durations, root)
    sub = Unit("tests/examples/a/", [str(root / "tests/examples/a")])
    sub.ignore = [str(root / "tests/examples/a/test_mod.py")]
    assert files.weight(sub) == pytest.approx(
        UNIT_OVERHEAD_SECONDS + 1.75 + 3 * TEST_OVERHEAD_SECONDS
    )
    # the directory's own unit leaves its subdirectories to theirs
    own = Unit("tests/examples/", [str(root / "tests/examples")])
    own.ignore = [str(root / "tests/examples/a"), str(root / "tests/examples/ab")]
    assert files.weight(own) == pytest.approx(
        UNIT_OVERHEAD_SECONDS + 2.0 + TEST_OVERHEAD_SECONDS
    )
    assert files.weight(Unit("tests/new/", [str(root / "tests/new")])) is None
    # estimate_weight asks it for a directory unit, and falls back where nothing is recorded
    assert estimate_weight(sub, durations, files=files) == files.weight(sub)
    new = Unit("tests/new/", [str(root / "tests/new")])
    assert estimate_weight(new, durations, files=files) == estimate_weight(new, durations)
    # the rootdir as a directory unit, leaving tests/ to its own
    top = Unit("./", [str(root)], ignore=[str(root / "tests")])
    files = RecordedFiles({**durations, "conftest_check.txt::": 0.5}, root)
    assert files.weight(top) == pytest.approx(
        UNIT_OVERHEAD_SECONDS + 0.5 + TEST_OVERHEAD_SECONDS
    )


@pytest.mark.parametrize("count", [2, 3, 4, 7])
def test_even_cuts_make_nonempty_runs_in_order(count):
    weights = [0.5, 0.0, 0.0, 3.0, 0.1, 0.1, 0.1, 2.0, 0.0]
    bounds = even_cuts(weights, count)
    assert bounds[0] == 0 and bounds[-1] == len(weights)
    assert all(a < b for a, b in itertools.pairwise(bounds))
    assert len(bounds) - 1 <= count


def test_units_that_cannot_be_sliced_stay_whole():
    heavy = Unit("big.py", ["/p/big.py"], [f"big.py::t{i}" for i in range(1000)])
    assert slice_heavy_units([heavy], workers=2, can_slice=lambda unit: False) == [heavy]
    assert slice_heavy_units([heavy], workers=1, can_slice=lambda unit: True) == [heavy]


def test_a_module_whose_tests_are_mostly_deselected_is_not_sliced():
    # click: ``-m 'not stress'`` leaves out 31,000 tests of one module; every slice would
    # collect all of them to run none.
    stress = Unit("stress.py", ["/p/stress.py"], [f"stress.py::t{i}" for i in range(1000)])
    light = Unit("small.py", ["/p/small.py"], ["small.py::t"])
    units = slice_heavy_units([stress, light], 2, lambda unit: True, lambda unit: 3)
    assert units == [stress, light]
    units = slice_heavy_units([stress, light], 2, lambda unit: True, len_expected)
    assert len(units) > 2


def len_expected(unit: Unit) -> int:
    return len(unit.expected)


def test_plan_has_file_units_directory_units_and_the_collection_order(tmp_path):
    (tmp_path / "tests" / "golden" / "a").mkdir(parents=True)
    (tmp_path / "tests" / "test_x.py").write_text("")
    test = types.SimpleNamespace(id="tests/test_x.py::test_a", file="tests/test_x.py")
    dynamic = types.SimpleNamespace(id="tests/golden/", file="tests/golden/conftest.py")
    imports = {
        "tests/test_x.py": [
            types.SimpleNamespace(module="json", file=None),
            types.SimpleNamespace(module="pkg.helpers", file="pkg/helpers.py"),
            types.SimpleNamespace(module="tests.test_x", file="tests/test_x.py"),
            types.SimpleNamespace(module="pytest", file=None),
        ]
    }
    plan = plan_units(
        tmp_path,
        [test, dynamic],
        imports,
        ["tests/test_broken.py"],
        [tmp_path / "tests"],
        roots=[tmp_path / "tests"],
    )
    by_id = {u.id: u for u in plan.units}
    assert by_id["tests/test_x.py"].args == [str(tmp_path / "tests/test_x.py")]
    assert by_id["tests/test_broken.py"].expected == []  # pytest reports its collection error
    # The test directory: one unit per subdirectory and one for its own files, each leaving
    # the file units to themselves.
    assert by_id["tests/golden/"].ignore == []
    assert set(by_id["tests/"].ignore) == {
        str(tmp_path / "tests/test_x.py"),
        str(tmp_path / "tests/test_broken.py"),
        str(tmp_path / "tests/golden"),
    }
    # pytest's collection order: each directory's entries by name
    assert plan.collection_paths == [
        str(tmp_path / "tests"),
        str(tmp_path / "tests/golden"),
        str(tmp_path / "tests/test_broken.py"),
        str(tmp_path / "tests/test_x.py"),
    ]
    assert plan.expected_tests == 1
