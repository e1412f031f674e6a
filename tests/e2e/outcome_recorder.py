"""A pytest plugin that writes every test's merged outcome to $OUTCOME_RECORDER_FILE as JSON.

The merge rule is the one pytest's summary counts by (and Tach's ``test_finished`` status):
a setup that did not pass decides, else the call, and a failed teardown makes an error of a test
that had not failed. Subtest reports never decide. Used with ``-p outcome_recorder``.
"""

import json
import os

import pytest

WORDS = {"passed": "pass", "failed": "fail", "skipped": "skip", "error": "error"}


class Recorder:
    def __init__(self, path):
        self.path = path
        self.outcomes = {}

    @pytest.hookimpl(trylast=True)
    def pytest_runtest_logreport(self, report):
        if type(report).__name__ == "SubtestReport":
            return
        wasxfail = hasattr(report, "wasxfail")
        current = self.outcomes.get(report.nodeid)
        if report.when == "setup":
            if report.failed:
                self.outcomes[report.nodeid] = "error"
            elif report.skipped:
                self.outcomes[report.nodeid] = "xfail" if wasxfail else "skip"
        elif report.when == "call":
            if report.passed:
                self.outcomes[report.nodeid] = "xpass" if wasxfail else "pass"
            elif report.skipped:
                self.outcomes[report.nodeid] = "xfail" if wasxfail else "skip"
            else:
                self.outcomes[report.nodeid] = "fail"
        elif report.when == "teardown" and report.failed and current not in ("fail", "error"):
            self.outcomes[report.nodeid] = "error"

    def pytest_collectreport(self, report):
        if report.failed:
            self.outcomes[report.nodeid] = "collect_error"

    def pytest_sessionfinish(self):
        with open(self.path, "w") as f:
            json.dump(self.outcomes, f, indent=1, sort_keys=True)


def pytest_configure(config):
    path = os.environ.get("OUTCOME_RECORDER_FILE")
    if path and not hasattr(config, "workerinput"):
        config.pluginmanager.register(Recorder(path), "outcome_recorder_instance")
