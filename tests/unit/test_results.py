"""Merging phase reports into one status, and pytest's closing line."""

from __future__ import annotations

import pytest

from tach.results import Stats, TestResult, format_duration, summary_line


def report(when, outcome, **extra):
    return {"when": when, "outcome": outcome, "nodeid": "t.py::x", **extra}


@pytest.mark.parametrize(
    ("reports", "status", "when"),
    [
        (
            [report("setup", "passed"), report("call", "passed"), report("teardown", "passed")],
            "pass",
            "call",
        ),
        (
            [report("setup", "passed"), report("call", "failed"), report("teardown", "passed")],
            "fail",
            "call",
        ),
        ([report("setup", "failed"), report("teardown", "passed")], "error", "setup"),
        ([report("setup", "skipped"), report("teardown", "passed")], "skip", "setup"),
        (
            [report("setup", "passed"), report("call", "passed"), report("teardown", "failed")],
            "error",
            "teardown",
        ),
        (
            [report("setup", "passed"), report("call", "failed"), report("teardown", "failed")],
            "fail",
            "call",
        ),
        ([report("setup", "passed"), report("call", "skipped", wasxfail="bug")], "xfail", "call"),
        ([report("setup", "passed"), report("call", "passed", wasxfail="bug")], "xpass", "call"),
        ([report("setup", "skipped", wasxfail="run=False")], "xfail", "setup"),
    ],
)
def test_status_merges_phases_as_pytest_counts_them(reports, status, when):
    result = TestResult("t.py::x")
    for r in reports:
        result.add(r)
    assert (result.status, result.when) == (status, when)


def test_subtest_reports_never_decide_the_status():
    result = TestResult("t.py::x")
    result.add(report("setup", "passed"))
    result.add({**report("call", "failed"), "_report_type": "SubTestReport"})
    result.add(report("call", "passed", teststatus=["passed", ".", "PASSED"]))
    assert result.status == "pass"


def test_a_passing_call_that_pytest_calls_failed_is_a_failure():
    # pytest 9's subtests plugin turns a passing test with failed subtests into a failed one.
    result = TestResult("t.py::x")
    result.add(report("call", "passed", teststatus=["failed", "F", "FAILED"]))
    assert result.status == "fail"


def test_duration_sums_the_phases():
    result = TestResult("t.py::x")
    result.add(report("setup", "passed", duration=0.25))
    result.add(report("call", "passed", duration=0.5))
    assert result.duration == pytest.approx(0.75)


def stats_of(**counts):
    stats = Stats()
    for category, count in counts.items():
        for _ in range(count):
            stats.add(category.replace("_", " "), {})
    return stats


@pytest.mark.parametrize(
    ("counts", "line"),
    [
        ({"passed": 3}, "3 passed in 1.50s"),
        (
            {"failed": 2, "passed": 10, "skipped": 1, "xfailed": 1},
            "2 failed, 10 passed, 1 skipped, 1 xfailed in 1.50s",
        ),
        ({"error": 1, "passed": 1}, "1 passed, 1 error in 1.50s"),
        ({"error": 2, "warnings": 1}, "1 warning, 2 errors in 1.50s"),
        (
            {"subtests_passed": 5, "passed": 1, "deselected": 3},
            "1 passed, 3 deselected, 5 subtests passed in 1.50s",
        ),
        ({}, "no tests ran in 1.50s"),
        ({"flaky": 1, "passed": 1}, "1 passed, 1 flaky in 1.50s"),
    ],
)
def test_summary_line_is_pytests(counts, line):
    assert summary_line(stats_of(**counts), 1.5) == line


def test_summary_counts_only_reports_that_count():
    stats = Stats()
    stats.add("passed", {"count_towards_summary": False})
    stats.add("passed", {})
    assert summary_line(stats, 0.1) == "1 passed in 0.10s"


@pytest.mark.parametrize(
    ("collected", "deselected", "errors", "line"),
    [
        (0, 0, 0, "no tests collected in 0.20s"),
        (1, 0, 0, "1 test collected in 0.20s"),
        (5, 0, 1, "5 tests collected, 1 error in 0.20s"),
        (5, 5, 0, "no tests collected (5 deselected) in 0.20s"),
        (5, 2, 0, "3/5 tests collected (2 deselected) in 0.20s"),
    ],
)
def test_collect_only_line(collected, deselected, errors, line):
    stats = stats_of(deselected=deselected, error=errors)
    stats.collected = collected
    assert summary_line(stats, 0.2, collect_only=True) == line


def test_main_color():
    assert stats_of(passed=1).summary_parts()[1] == "green"
    assert stats_of(passed=1, failed=1).summary_parts()[1] == "red"
    assert stats_of(passed=1, xpassed=1).summary_parts()[1] == "yellow"
    assert stats_of(skipped=1).summary_parts()[1] == "yellow"


def test_long_durations_show_hours_minutes_seconds():
    assert format_duration(59.999) == "60.00s"
    assert format_duration(3725.5) == "3725.50s (1:02:05)"
