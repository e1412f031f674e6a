"""Parametrize ids: tach.discovery.params against pytest's own IdMaker, value by value."""

from __future__ import annotations

import ast

import pytest
from _pytest.mark.structures import ParameterSet
from _pytest.python import IdMaker
from hypothesis import given, settings
from hypothesis import strategies as st

from tach.discovery.params import (
    Dynamic,
    IdOptions,
    ParamSet,
    ascii_escaped,
    make_ids,
    parse_argnames,
)
from tach.discovery.parse import encode

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True),
    st.text(max_size=120), st.binary(max_size=20), st.complex_numbers(allow_nan=False),
    st.sampled_from(["a", "a0", "a1", "1", "", "ü", "\n", "x" * 101]),
)


def _enc(value: object) -> list:
    return encode(ast.parse(repr(value), mode="eval").body)


def _literal(value: object) -> bool:
    """Whether ``repr(value)`` is source a test could contain (not ``inf``/``nan``)."""
    try:
        return repr(ast.literal_eval(repr(value))) == repr(value)
    except ValueError:
        return False


def _no_names(v: list) -> str | None:
    raise Dynamic("no names in this test")


def _pytest_ids(argnames: list[str], rows: list[tuple], ids: list | None) -> list[str]:
    sets = [ParameterSet(values=row, marks=[], id=None) for row in rows]
    return IdMaker(argnames, sets, None, ids, None, None).make_unique_parameterset_ids()


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(scalars, scalars), max_size=8))
def test_ids_equal_idmaker(rows: list[tuple]) -> None:
    rows = [r for r in rows if all(_literal(v) for v in r)]
    ours = make_ids(["a", "b"], [ParamSet([_enc(x) for x in r]) for r in rows], None,
                    IdOptions(long_str_strategy="short"), _no_names)
    assert ours == _pytest_ids(["a", "b"], rows, None)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(["x", "x", "x1", "y0", 1, 1, None]), min_size=1, max_size=8),
       st.data())
def test_duplicates_and_explicit_ids(values: list, data: st.DataObject) -> None:
    ids = data.draw(st.one_of(st.none(), st.lists(
        st.sampled_from([None, "p", "p", "p1", "q0"]), min_size=len(values),
        max_size=len(values))))
    ours = make_ids(["v"], [ParamSet([_enc(v)]) for v in values],
                    [_enc(i) for i in ids] if ids else None, IdOptions(), _no_names)
    assert ours == _pytest_ids(["v"], [(v,) for v in values], ids)


@given(st.text())
def test_ascii_escaped_matches_pytest(s: str) -> None:
    from _pytest.compat import ascii_escaped as theirs

    assert ascii_escaped(s) == theirs(s)
    assert ascii_escaped(s.encode("utf-8", "surrogatepass")) == theirs(
        s.encode("utf-8", "surrogatepass"))


def test_long_strings_follow_strategy() -> None:
    long = _enc("x" * 101)
    assert make_ids(["s"], [ParamSet([long])], None, IdOptions(long_str_strategy="short"),
                    _no_names) == ["s0"]
    assert make_ids(["s"], [ParamSet([long])], None, IdOptions(long_str_strategy="legacy"),
                    _no_names) == ["x" * 101]


def test_explicit_param_id_and_hidden() -> None:
    from tach.discovery.params import HIDDEN

    got = make_ids(["v"], [ParamSet([["i", "1"]], "one"), ParamSet([["i", "2"]], HIDDEN)],
                   None, IdOptions(), _no_names)
    assert got[0] == "one" and got[1] is HIDDEN


def test_strict_ids_duplicates_are_dynamic() -> None:
    with pytest.raises(Dynamic):
        make_ids(["v"], [ParamSet([["i", "1"]]), ParamSet([["i", "1"]])], None,
                 IdOptions(strict_ids=True), _no_names)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (["s", "a, b"], (["a", "b"], False)),
        (["s", "a"], (["a"], True)),
        (["s", "a,"], (["a"], False)),
        (["t", [["s", "a"], ["s", "b"]]], (["a", "b"], False)),
        (["l", [["s", "a"]]], (["a"], False)),
    ],
)
def test_parse_argnames(spec: list, expected: tuple) -> None:
    assert parse_argnames(spec) == expected


def test_non_literal_values_are_dynamic() -> None:
    with pytest.raises(Dynamic, match="not a literal"):
        make_ids(["v"], [ParamSet([["?", "call of f()"]])], None, IdOptions(), _no_names)
