"""Outcomes: pytest's phase reports merged into one result per test, and the run's statistics.

The supervisor never imports pytest. Each report arrives serialised by pytest's own hooks, with
the ``teststatus`` (category, letter, word) that ``pytest_report_teststatus`` gave for it in the
test process, so plugins that define their own statuses (subtests, xfail, rerun...) are counted
exactly as pytest's terminal reporter counts them.

A test's *status* (one of ``pass fail skip xfail xpass error``) merges its phases the way
pytest's summary counts them: a setup that did not pass decides; otherwise the call decides; a
teardown that failed turns a test that had not failed into an error. Reports of subtests count in
the statistics but never decide the test's own status.
"""

from __future__ import annotations

import dataclasses
import datetime
from typing import Any

#: Status words of a finished test, as in the NDJSON stream.
STATUSES = ("pass", "fail", "skip", "xfail", "xpass", "error")

#: pytest's ``KNOWN_TYPES``: the order of the parts of the summary line.
KNOWN_TYPES = (
    "failed",
    "passed",
    "skipped",
    "deselected",
    "xfailed",
    "xpassed",
    "warnings",
    "error",
    "subtests passed",
    "subtests failed",
    "subtests skipped",
)
COLOR_FOR_TYPE = {
    "failed": "red",
    "error": "red",
    "warnings": "yellow",
    "passed": "green",
    "subtests passed": "green",
    "subtests failed": "red",
}
DEFAULT_COLOR = "yellow"


def is_subtest(report: dict[str, Any]) -> bool:
    return report.get("_report_type") == "SubTestReport"


def phase_status(report: dict[str, Any]) -> str:
    """The status one (non-subtest) phase report stands for."""
    when, outcome = report.get("when"), report.get("outcome")
    wasxfail = "wasxfail" in report
    if when == "call":
        if outcome == "passed":
            return "xpass" if wasxfail else "pass"
        if outcome == "skipped":
            return "xfail" if wasxfail else "skip"
        return "fail"
    if outcome == "failed":
        return "error"
    if outcome == "skipped":
        return "xfail" if wasxfail else "skip"
    return "pass"


def passed_phase_report(payload: dict[str, Any], slot: int) -> dict[str, Any]:
    """The serialised report of a phase a test process sent as ``PhasePassed``.

    The same keys and values ``pytest_report_to_serializable`` and the plugin's additions give
    such a report, but ``keywords``, which nothing in the supervisor reads.
    """
    return {
        "nodeid": payload["id"],
        "location": payload["location"],
        "outcome": "passed",
        "longrepr": None,
        "when": payload["when"],
        "user_properties": [],
        "sections": [],
        "duration": payload["duration"],
        "start": payload["start"],
        "stop": payload["stop"],
        "$report_type": "TestReport",
        "teststatus": payload["teststatus"],
        "count_towards_summary": True,
        "slot": slot,
        "pid": payload["pid"],
    }


@dataclasses.dataclass
class TestResult:
    """Everything the supervisor knows about one test."""

    __test__ = False  # not a test class, whatever pytest's python_classes says

    id: str
    slot: int = -1
    pid: int = 0
    #: Phase reports in arrival order (pytest's serialised form plus ``teststatus``).
    reports: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    status: str | None = None
    #: The phase that decided the status.
    when: str | None = None
    started: float = 0.0
    finished: bool = False
    #: Seconds of the timeout that ended this test's process (0: it did not time out).
    timed_out: float = 0.0
    #: Whether any of its reports (a phase's or a subtest's) failed: the end of a run looks for
    #: failures and errors among these results only.
    failed_report: bool = False
    #: Seconds of its phases (not of its subtests), summed as they arrive.
    duration: float = 0.0

    def add(self, report: dict[str, Any]) -> None:
        self.reports.append(report)
        if report.get("outcome") == "failed":
            self.failed_report = True
        if report.get("_report_type") == "SubTestReport":  # is_subtest(), inlined: per report
            return
        self.duration += report.get("duration", 0.0) or 0.0
        phase = phase_status(report)
        when = report.get("when")
        if when == "setup":
            if phase != "pass" or self.status is None:
                self.status, self.when = phase, "setup"
        elif when == "call":
            if report.get("outcome") == "passed" and report.get("teststatus", [""])[0] == "failed":
                phase = "fail"  # pytest 9: a passing test with failed subtests fails
            self.status, self.when = phase, "call"
        elif when == "teardown":
            if report.get("outcome") == "failed" and self.status not in ("fail", "error"):
                self.status, self.when = "error", "teardown"
            elif self.status is None:
                self.status, self.when = phase, "teardown"

    def deciding_report(self) -> dict[str, Any] | None:
        """The report of the phase that decided the status (the last one if several)."""
        for report in reversed(self.reports):
            if not is_subtest(report) and report.get("when") == self.when:
                return report
        return None


@dataclasses.dataclass
class Stats:
    """What pytest's terminal reporter counts in its ``stats``: for each category seen, the
    reports that count towards the summary (counted as they arrive: the closing line of a run
    of 64,000 tests asks for a dozen counts)."""

    counts: dict[str, int] = dataclasses.field(default_factory=dict)
    collected: int = 0

    def add(self, category: str, item: dict[str, Any]) -> None:
        counted = 1 if item.get("count_towards_summary", True) else 0
        self.counts[category] = self.counts.get(category, 0) + counted

    def count(self, category: str) -> int:
        return self.counts.get(category, 0)

    def summary_parts(self, collect_only: bool = False) -> tuple[list[tuple[str, str]], str]:
        """The parts of pytest's final line with their colours, and the line's colour."""
        if collect_only:
            return self._collect_only_parts()
        unknown = [k for k in self.counts if k and k not in KNOWN_TYPES]
        main = self.main_color(bool(unknown))
        parts = []
        for key in (*KNOWN_TYPES, *unknown):
            count = self.count(key)
            if count:
                parts.append(
                    (f"{count} {pluralize(count, key)}", COLOR_FOR_TYPE.get(key, DEFAULT_COLOR))
                )
        if not parts:
            parts = [("no tests ran", DEFAULT_COLOR)]
        return parts, main

    def _collect_only_parts(self) -> tuple[list[tuple[str, str]], str]:
        deselected, errors = self.count("deselected"), self.count("error")
        if self.collected == 0:
            parts, main = [("no tests collected", "yellow")], "yellow"
        elif deselected == 0:
            main = "green"
            parts = [(f"{self.collected} {pluralize(self.collected, 'test')} collected", main)]
        elif self.collected == deselected:
            main = "yellow"
            parts = [(f"no tests collected ({deselected} deselected)", main)]
        else:
            main = "green"
            selected = self.collected - deselected
            parts = [
                (f"{selected}/{self.collected} tests collected ({deselected} deselected)", main)
            ]
        if errors:
            main = "red"
            parts.append((f"{errors} {pluralize(errors, 'error')}", main))
        return parts, main

    def main_color(self, unknown_type_seen: bool) -> str:
        if self.count("failed") or self.count("error"):
            return "red"
        if self.count("warnings") or self.count("xpassed") or unknown_type_seen:
            return "yellow"
        if self.count("passed") or self.count("subtests passed"):
            return "green"
        return "yellow"


def pluralize(count: int, noun: str) -> str:
    """pytest's ``pluralize``: only error, warnings and test change with the count."""
    if noun not in ("error", "warnings", "test"):
        return noun
    noun = noun.replace("warnings", "warning")
    return noun + "s" if count != 1 else noun


def format_duration(seconds: float) -> str:
    """pytest's ``format_session_duration``."""
    if seconds < 60:
        return f"{seconds:.2f}s"
    return f"{seconds:.2f}s ({datetime.timedelta(seconds=int(seconds))})"


def summary_line(stats: Stats, seconds: float, collect_only: bool = False) -> str:
    """pytest's closing line, without the ``=`` frame: ``1 failed, 2 passed in 0.12s``."""
    parts, _ = stats.summary_parts(collect_only)
    return ", ".join(text for text, _ in parts) + f" in {format_duration(seconds)}"


class Locations:
    """Where each test is defined: its file and the 1-based line of its ``def``.

    Filled from static discovery (whose lines are those of the ``def`` itself, not of its first
    decorator, as editors expect) once the run is planned; a test discovery did not name exactly
    (a parameter pytest computed) takes the line of its function, and a test discovery does not
    know at all takes the line its report gives (pytest's 0-based ``location``, made 1-based).
    """

    def __init__(self, lines: dict[str, tuple[str, int]] | None = None) -> None:
        self._lines: dict[str, tuple[str, int]] = dict(lines or {})

    def update(self, tests: Any) -> None:
        """Add tests from discovery (objects with ``id``, ``file`` and ``line``)."""
        for test in tests:
            if test.id and not test.id.endswith("/"):
                self._lines[test.id] = (test.file, test.line)

    def of(self, test_id: str, report: dict[str, Any] | None = None) -> tuple[str, int | None]:
        """The file and line of ``test_id`` (the line may be unknown: None)."""
        found = self._lines.get(test_id)
        if found is None and test_id.endswith("]") and "[" in test_id:
            found = self._lines.get(test_id.split("[", 1)[0])
        if found is not None:
            return found
        location = (report or {}).get("location")
        if isinstance(location, list | tuple) and len(location) == 3:
            line = location[1] + 1 if isinstance(location[1], int) else None
            return str(location[0]), line
        return test_id.split("::")[0], None
