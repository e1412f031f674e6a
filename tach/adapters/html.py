"""pytest-html: one report for the whole run, written by the zygote.

pytest-html's ``pytest_configure`` registers its report object only in a process that is no
xdist worker: pytest's own, or xdist's controller, which is given every test's reports
(``pytest_runtest_logreport``) by the workers. The report object gathers the rows from those
reports and writes the file at the session's end (after every test too, with
``generate_report_on_test``). In Tach it is registered in the zygote, which runs no test and is
given no report; every worker and test process inherits it, and a worker's session finish
would write a report of its own tests over the same file.

So in a worker the report object is unregistered, and each process that runs tests records its
reports as pytest-xdist's workers would send them (``pytest_report_to_serializable``),
appending each as it comes to a stream in the hand-over directory, so that what a process
recorded survives its later death. The zygote reads them back before the plugins' session
finish, in order, and gives them to its report object, which then writes the one file over the
whole run.

The report of a test whose process died is made by the worker and goes through pytest's report
hook there like any other; pytest-html writes a test's row when its teardown is reported, which
that process never reached, so the recorder adds a passed teardown after it.
"""

from __future__ import annotations

from typing import Any

import pytest

from tach.adapters import handoff


class HtmlAdapter:
    """Moves pytest-html's report gathering to the zygote (module docstring)."""

    plugin = "html"

    def worker_started(self, plugin: Any, config: pytest.Config) -> None:
        report = html_report(config)
        if report is None:
            return
        config.pluginmanager.unregister(report)
        config.pluginmanager.register(ReportRecorder(config), "tach-html-recorder")

    def session_finishing(self, plugin: Any, config: pytest.Config) -> None:
        report = html_report(config)
        if report is None:
            return
        hook = config.hook
        tests = set()
        for kind, data in handoff.taken_over(config, "html"):
            received = hook.pytest_report_from_serializable(config=config, data=data)
            if received is None:
                continue
            if kind == "collect":
                report.pytest_collectreport(received)
            else:
                tests.add(received.nodeid)
                report.pytest_runtest_logreport(received)
        # What the report shows while a run is under way ("3/8 tests done"): the zygote
        # collected nothing itself.
        data = getattr(report, "_report", None)
        if data is not None and not data.collected_items:
            data.collected_items = len(tests)


def html_report(config: pytest.Config) -> Any:
    """pytest-html's report object, if ``--html`` made one in this process."""
    try:
        from pytest_html.basereport import BaseReport
    except ImportError:
        return None
    for plugin in config.pluginmanager.get_plugins():
        if isinstance(plugin, BaseReport):
            return plugin
    return None


class ReportRecorder:
    """In a worker and its test processes: each report, for the zygote's report object."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config

    @pytest.hookimpl(trylast=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.record("test", report)
        if getattr(report, "tach_crash", None) and report.outcome != "rerun":
            # The worker's report of a test whose process died: pytest-html writes a test's row
            # when its teardown is reported, which that process never reached.
            from _pytest.reports import TestReport

            teardown = TestReport(
                nodeid=report.nodeid,
                location=report.location,
                keywords=dict(report.keywords),
                outcome="passed",
                longrepr=None,
                when="teardown",
                sections=[],
                duration=0.0,
            )
            self.record("test", teardown)

    @pytest.hookimpl(trylast=True)
    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:  # all the report object keeps of collection
            self.record("collect", report)

    def record(self, kind: str, report: Any) -> None:
        data = self.config.hook.pytest_report_to_serializable(config=self.config, report=report)
        if data is None:
            return
        try:
            handoff.hand_over_stream(self.config, "html", (kind, data))
        except Exception:
            # What a test attached to its report that does not pickle: as text.
            data["user_properties"] = [
                (name, repr(value)) for name, value in data.get("user_properties", ())
            ]
            data["extras"] = [
                {
                    key: value
                    if isinstance(value, str | int | float | bool | None)
                    else repr(value)
                    for key, value in extra.items()
                }
                for extra in data.get("extras", ())
                if isinstance(extra, dict)
            ]
            handoff.hand_over_stream(self.config, "html", (kind, data))
