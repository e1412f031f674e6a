"""Reporter pieces: JUnit naming, escaping and messages as pytest makes them; def lines;
NDJSON output bounds; the terminal header."""

from __future__ import annotations

import io

import pytest
from _pytest import junitxml

from tach.reporter.human import HumanReporter
from tach.reporter.junit import bin_xml_escape, mangle_test_address, shorten_message
from tach.results import Locations


@pytest.mark.parametrize(
    "nodeid",
    [
        "tests/test_x.py::test_a",
        "tests/sub/test_x.py::TestA::test_b[1-2]",
        "test_x.py::TestA::TestB::test_c[a::b]",
        "tests/test_x.py::test_d[c[d]]",
        "tests/test_x.py",
    ],
)
def test_names_are_pytests(nodeid):
    assert mangle_test_address(nodeid) == junitxml.mangle_test_address(nodeid)


@pytest.mark.parametrize("text", ["plain", "bell\x07 and esc\x1b", "\ud800 lone", "ok\tnew\nline"])
def test_escaping_is_pytests(text):
    assert bin_xml_escape(text) == junitxml.bin_xml_escape(text)


@pytest.mark.parametrize("text", ["short", "x" * 600, "\n".join(["line"] * 200), ""])
def test_message_shortening_is_pytests(text):
    if not hasattr(junitxml, "shorten_message"):
        pytest.skip("this pytest writes messages whole")
    assert shorten_message(text) == junitxml.shorten_message(text)


def test_locations_prefer_discovery_then_the_function_then_the_report():
    class Def:
        def __init__(self, id: str, line: int) -> None:
            self.id, self.file, self.line = id, id.split("::")[0], line

    locations = Locations()
    locations.update([Def("t.py::test_a", 5), Def("t.py::test_b[1]", 9)])
    assert locations.of("t.py::test_a") == ("t.py", 5)
    assert locations.of("t.py::test_a[computed]") == ("t.py", 5)
    report = {"location": ["u.py", 3, "test_c"]}
    assert locations.of("u.py::test_c", report) == ("u.py", 4)
    assert locations.of("u.py::test_c") == ("u.py", None)


def test_event_output_keeps_head_and_tail_of_a_flood():
    from tach.reporter.json import bounded

    assert bounded("short", 10) == "short"
    text = bounded("a" * 50 + "b" * 50, 10)
    assert text.startswith("aaaaa\n") and text.endswith("\nbbbbb")
    assert "90 characters dropped" in text


@pytest.mark.parametrize(
    ("workers", "tests", "line"),
    [
        (1, 1, "tach: 1 worker, isolation module, 1 test found"),
        (2, 40, "tach: 2 workers, isolation module, 40 tests found"),
        (4, 0, "tach: 4 workers, isolation module"),
    ],
)
def test_the_header_counts_workers_and_tests_in_words(workers, tests, line):
    out = io.StringIO()
    HumanReporter(out, color="no", expected_tests=tests).on_run_start(
        {
            "python": "3.11.7",
            "pytest_version": "9.2.0",
            "rootdir": "/p",
            "workers": workers,
            "isolation": "module",
        }
    )
    assert line in out.getvalue().splitlines()
