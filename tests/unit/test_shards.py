"""Shards (``--shard K/N``): every unit in exactly one shard, longest processing time first,
deterministic; and the option's parsing."""

from __future__ import annotations

import random

import pytest

from tach.config import ConfigValueError, parse_shard
from tach.scheduler import Unit, UnitSlice
from tach.shards import assign, cut, group_of


def shard_units(units, shard, weigh):
    """The units of shard ``shard`` = ``(K, N)``, in their order, as the runner keeps them."""
    shard_of = cut(units, shard[1], weigh)
    return [unit for unit in units if shard_of[group_of(unit)] == shard[0]]


def by_weight(weights: dict[str, float]):
    return lambda group, members: weights[group]


def test_every_unit_lands_in_exactly_one_shard():
    rand = random.Random(21)
    weights = {f"tests/test_{i}.py": rand.uniform(0.01, 3.0) for i in range(200)}
    units = [Unit(name, [name]) for name in weights]
    for total in (1, 2, 3, 4, 7, 250):
        shards = [shard_units(units, (k, total), by_weight(weights)) for k in range(1, total + 1)]
        ids = [u.id for shard in shards for u in shard]
        assert sorted(ids) == sorted(weights), total


def test_longest_processing_time_first_balances_within_the_largest_unit():
    rand = random.Random(4)
    weights = {f"m{i}.py": rand.uniform(0.01, 1.0) for i in range(300)}
    units = [Unit(name, [name]) for name in weights]
    shard_of = assign(weights, 4)
    loads = [sum(w for g, w in weights.items() if shard_of[g] == k) for k in range(1, 5)]
    assert max(loads) - min(loads) <= max(weights.values())
    assert max(loads) <= 1.15 * sum(weights.values()) / 4
    assert [u.id for u in shard_units(units, (2, 4), by_weight(weights))] == [
        u.id for u in units if shard_of[u.id] == 2
    ]


def test_a_known_assignment():
    # heaviest first, each to the lightest shard so far (ties: the lowest number)
    assert assign({"a": 5, "b": 4, "c": 3, "d": 3, "e": 1}, 2) == {
        "a": 1,
        "b": 2,
        "c": 2,
        "d": 1,
        "e": 2,
    }


def test_ties_are_broken_by_id_whatever_the_order_of_the_units():
    weights = {f"t{i}.py": 1.0 for i in range(10)}
    first = assign(weights, 3)
    shuffled = dict(sorted(weights.items(), key=lambda _: random.random()))
    assert assign(shuffled, 3) == first
    assert first["t0.py"] == 1 and first["t1.py"] == 2 and first["t2.py"] == 3


def test_slices_of_a_module_stay_in_one_shard():
    ids = [f"m.py::t{i}" for i in range(10)]
    slices = [
        Unit(f"m.py [{k + 1}/3]", ["m.py"], ids, slice=UnitSlice(k, [0, 3, 6, 10], ids))
        for k in range(3)
    ]
    others = [Unit(f"o{i}.py", [f"o{i}.py"]) for i in range(5)]
    assert {group_of(u) for u in slices} == {"m.py"}
    weights = {"m.py": 10.0, **{u.id: 1.0 for u in others}}
    picked = [shard_units([*slices, *others], (k, 3), by_weight(weights)) for k in (1, 2, 3)]
    holding = [k for k, units in enumerate(picked) if any(u.id.startswith("m.py") for u in units)]
    assert len(holding) == 1 and len(picked[holding[0]]) == 3


def test_more_shards_than_units_leaves_some_empty():
    units = [Unit("a.py", ["a.py"]), Unit("b.py", ["b.py"])]
    weights = {"a.py": 1.0, "b.py": 1.0}
    assert [len(shard_units(units, (k, 4), by_weight(weights))) for k in range(1, 5)] == [
        1,
        1,
        0,
        0,
    ]


@pytest.mark.parametrize(
    ("value", "expected"), [("1/4", (1, 4)), ("4/4", (4, 4)), (" 2/3 ", (2, 3)), ("1/1", (1, 1))]
)
def test_parse_shard(value, expected):
    assert parse_shard(value, {}) == expected


@pytest.mark.parametrize("value", ["5/4", "0/4", "x", "1", "1/0", "-1/4", "a/b", "1/4/2"])
def test_parse_shard_refuses_what_is_not_a_shard(value):
    with pytest.raises(ConfigValueError, match=r"--shard takes K/N"):
        parse_shard(value, {})


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({"CI_NODE_INDEX": "1", "CI_NODE_TOTAL": "4"}, (1, 4)),  # GitLab counts from 1
        ({"CIRCLE_NODE_INDEX": "0", "CIRCLE_NODE_TOTAL": "4"}, (1, 4)),  # CircleCI from 0
        ({"BUILDKITE_PARALLEL_JOB": "3", "BUILDKITE_PARALLEL_JOB_COUNT": "4"}, (4, 4)),
    ],
)
def test_shard_auto_reads_the_ci_variables(environ, expected):
    assert parse_shard("auto", environ) == expected


def test_shard_auto_without_ci_variables_or_with_bad_ones_is_an_error():
    with pytest.raises(ConfigValueError, match="none of the CI variables"):
        parse_shard("auto", {})
    with pytest.raises(ConfigValueError, match="CIRCLE_NODE_INDEX='4'"):
        parse_shard("auto", {"CIRCLE_NODE_INDEX": "4", "CIRCLE_NODE_TOTAL": "4"})
