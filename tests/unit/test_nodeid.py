"""tach.nodeid: parse/format agree with pytest's own NodeId."""

from __future__ import annotations

import pytest
from _pytest.nodeid import NodeId as PytestNodeId

from tach.nodeid import NodeId, format_nodeid, matches_selection

CASES = [
    "tests/test_a.py",
    "tests/test_a.py::test_f",
    "tests/test_a.py::TestA::TestB::test_f[1-a]",
    "tests/test[1].py",
    "t.py::test_x[a::b]",
    "t.py::test_x[a[0]]",
    "t.py::test_x[]",
]


@pytest.mark.parametrize("nodeid", CASES)
def test_parse_matches_pytest(nodeid: str) -> None:
    ours = NodeId.parse(nodeid)
    theirs = PytestNodeId.parse(nodeid)
    assert (ours.path, ours.names, ours.params) == (theirs.path, theirs.names, theirs.params)
    assert str(ours) == nodeid


def test_format() -> None:
    assert format_nodeid("a.py", ("C", "f"), "1") == "a.py::C::f[1]"
    assert format_nodeid("a.py") == "a.py"


@pytest.mark.parametrize(
    ("nodeid", "selector", "expected"),
    [
        ("a.py::C::f[1]", "a.py::C", True),
        ("a.py::C::f[1]", "a.py::C::f", True),
        ("a.py::C::f[1]", "a.py::C::f[1]", True),
        ("a.py::C::f[1]", "a.py::C::f[2]", False),
        ("a.py::C::fg", "a.py::C::f", False),
        ("a.py::C2::f", "a.py::C", False),
        ("b.py::C::f", "a.py::C", False),
    ],
)
def test_matches_selection(nodeid: str, selector: str, expected: bool) -> None:
    assert matches_selection(nodeid, selector) is expected
