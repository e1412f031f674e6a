"""Reporters: what a run tells people (terminal), machines (NDJSON) and CI (JUnit XML).

Every reporter implements :class:`tach.scheduler.Reporter`; :class:`Reporters` fans one run's
events out to several of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tach.results import TestResult
from tach.scheduler import Reporter, RunSummary, Unit

#: pytest's exit codes and what its ``ExitCode`` calls them (the reports say both).
EXIT_MEANINGS = {
    0: "all tests passed",
    1: "tests failed",
    2: "interrupted",
    3: "internal error",
    4: "usage error",
    5: "no tests collected",
}


class Reporters:
    """Several reporters behind one: each event goes to all of them, in order."""

    def __init__(self, reporters: Sequence[Reporter]) -> None:
        self.reporters = list(reporters)

    def on_run_start(self, info: dict[str, Any]) -> None:
        for reporter in self.reporters:
            reporter.on_run_start(info)

    def on_collected(
        self, unit: Unit, ids: Sequence[str], errors: Sequence[dict[str, Any]]
    ) -> None:
        for reporter in self.reporters:
            reporter.on_collected(unit, ids, errors)

    def on_test_start(self, result: TestResult) -> None:
        for reporter in self.reporters:
            reporter.on_test_start(result)

    def on_report(self, result: TestResult, report: dict[str, Any]) -> None:
        for reporter in self.reporters:
            reporter.on_report(result, report)

    def on_test_finished(self, result: TestResult) -> None:
        for reporter in self.reporters:
            reporter.on_test_finished(result)

    def on_warning(self, warning: dict[str, Any]) -> None:
        for reporter in self.reporters:
            reporter.on_warning(warning)

    def on_record(self, record: dict[str, Any]) -> None:
        for reporter in self.reporters:
            reporter.on_record(record)

    def on_terminal_text(self, text: dict[str, Any]) -> None:
        for reporter in self.reporters:
            reporter.on_terminal_text(text)

    def on_debug(self, event: dict[str, Any]) -> None:
        for reporter in self.reporters:
            reporter.on_debug(event)

    def on_unit(self, event: str, unit: Unit, worker: int) -> None:
        """A unit started (``unit_start``) or finished (``unit_finished``) on worker slot
        ``worker``. Optional in a reporter: only those that draw the run's timeline have it."""
        for reporter in self.reporters:
            hook = getattr(reporter, "on_unit", None)
            if hook is not None:
                hook(event, unit, worker)

    def flush(self) -> None:
        for reporter in self.reporters:
            reporter.flush()

    def on_run_finished(self, summary: RunSummary) -> None:
        """Every reporter finishes, even when one of them fails (the first error is raised)."""
        error: BaseException | None = None
        for reporter in self.reporters:
            try:
                reporter.on_run_finished(summary)
            except BaseException as exc:  # the JUnit file must be written even so
                error = error or exc
        if error is not None:
            raise error
