"""pytest plugin of the compatibility harness: record every test's outcome, keyed by node id.

Loaded with ``-p compat_outcomes`` (this directory on PYTHONPATH); it writes a JSON document
to the file named by ``$TACH_COMPAT_OUTCOMES`` at session end. No conftest and no options, so
projects with ``--strict-config``/``--strict-markers`` run unchanged.

A test's outcome is one of pytest's words, merged over its setup/call/teardown reports the
way pytest's summary line counts them:

* setup failed -> ``error``; setup skipped -> ``skipped`` (``xfailed`` if it carries
  ``wasxfail``);
* call passed -> ``passed`` (``xpassed`` with ``wasxfail``), call skipped -> ``skipped``
  (``xfailed`` with ``wasxfail``), call failed -> ``failed``;
* teardown failed -> ``error`` unless the test already ``failed``/``error``-ed.

Subtest reports (unittest ``subTest``, the ``subtests`` fixture) are counted per test under
``subtests`` and never decide the test's own outcome (pytest's own status for the test does,
including pytest 9 failing a test whose fixture subtests failed). Failed and skipped
collectors (collection errors, module-level skips) are recorded under ``collect_errors`` and
``collect_skipped`` by the collector's node id. A test reported more than once (a rerun
plugin) keeps the last verdict; its reruns are counted under ``reruns``.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

import pytest

ENV = "TACH_COMPAT_OUTCOMES"


def _text(report: Any, limit: int = 1500) -> str:
    try:
        text = str(report.longrepr)
    except Exception:
        text = repr(report.longrepr)
    return text[-limit:]


class OutcomeRecorder:
    """Collects the reports of one pytest session."""

    def __init__(self, config: pytest.Config, path: str) -> None:
        self.config = config
        self.path = path
        self.tests: dict[str, dict[str, Any]] = {}
        self.collected: list[str] | None = None
        self.deselected = 0
        self.collect_errors: dict[str, str] = {}
        self.collect_skipped: dict[str, str] = {}
        self.t0 = time.perf_counter()
        self.t_collected: float | None = None

    @pytest.hookimpl(trylast=True)
    def pytest_collection_finish(self, session: pytest.Session) -> None:
        self.collected = [item.nodeid for item in session.items]
        self.t_collected = time.perf_counter()

    def pytest_deselected(self, items: list[pytest.Item]) -> None:
        self.deselected += len(items)

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            self.collect_errors[report.nodeid] = _text(report)
        elif report.skipped:
            self.collect_skipped[report.nodeid] = _text(report, 300)

    @pytest.hookimpl(trylast=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        rec = self.tests.setdefault(report.nodeid, {"outcome": None, "duration_s": 0.0})
        if type(report).__name__ == "SubtestReport":
            counts = rec.setdefault("subtests", {})
            word = "xfailed" if hasattr(report, "wasxfail") else report.outcome
            counts[word] = counts.get(word, 0) + 1
            return
        if report.outcome == "rerun":
            rec["reruns"] = rec.get("reruns", 0) + 1
            rec["outcome"] = None
            return
        if report.when == "call" and report.passed:
            # pytest 9 turns a passing test with failed fixture subtests into a failure
            # in its own pytest_report_teststatus; make sure it ran for this report.
            self.config.hook.pytest_report_teststatus(report=report, config=self.config)
        rec["duration_s"] += getattr(report, "duration", 0.0) or 0.0
        xf = hasattr(report, "wasxfail")
        if report.when == "setup":
            if report.failed:
                rec["outcome"] = "error"
            elif report.skipped:
                rec["outcome"] = "xfailed" if xf else "skipped"
        elif report.when == "call":
            if report.passed:
                rec["outcome"] = "xpassed" if xf else "passed"
            elif report.skipped:
                rec["outcome"] = "xfailed" if xf else "skipped"
            else:
                rec["outcome"] = "failed"
        elif report.when == "teardown":
            if rec["outcome"] is None:
                rec["outcome"] = "passed"
            if report.failed and rec["outcome"] not in ("failed", "error"):
                rec["outcome"] = "error"
        if report.failed and "longrepr" not in rec:
            rec["longrepr"] = _text(report)

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        end = time.perf_counter()
        for rec in self.tests.values():
            rec["duration_s"] = round(rec["duration_s"], 6)
        data = {
            "pytest_version": pytest.__version__,
            "exitstatus": int(exitstatus),
            "collected": self.collected or [],
            "deselected": self.deselected,
            "collect_errors": self.collect_errors,
            "collect_skipped": self.collect_skipped,
            "tests": self.tests,
            "in_process_s": round(end - self.t0, 4),
            "in_process_collect_s": (
                round(self.t_collected - self.t0, 4) if self.t_collected else None
            ),
        }
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(data, f, indent=1)
        os.replace(tmp, self.path)


def pytest_configure(config: pytest.Config) -> None:
    path = os.environ.get(ENV)
    if not path or hasattr(config, "workerinput"):
        return
    config.pluginmanager.register(OutcomeRecorder(config, os.path.abspath(path)), "compat-rec")
