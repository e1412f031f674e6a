"""What the Tach plugin puts on a result ring: passed phases as ``PhasePassed``, and wake-ups.

For ``PhasePassed``, pytest runs a small project in this process with a recorder plugin that,
for every phase report, asks :func:`tach.plugin.is_plain_pass` and puts both forms through the
wire encoding:
the compact message rebuilt by :func:`tach.results.passed_phase_report`, and pytest's own
serialisation with the fields the Tach plugin adds. The two must be equal but for ``keywords``.
"""

from __future__ import annotations

import os
import selectors
import textwrap
from pathlib import Path
from typing import Any

import orjson
import pytest

from tach._native.ring import Ring
from tach.plugin import TachPlugin, is_plain_pass, plain_pass_payload
from tach.protocol import MessageKind
from tach.results import passed_phase_report

TESTS = textwrap.dedent(
    """
    import pytest

    def test_plain():
        pass

    @pytest.mark.slow
    class TestGroup:
        def test_method(self):
            pass

    def test_prints():
        print("hello")

    def test_property(record_property):
        record_property("answer", 42)

    def test_fails():
        assert False

    @pytest.mark.skip(reason="not today")
    def test_skipped():
        pass

    @pytest.mark.xfail(reason="known")
    def test_xpasses():
        pass
    """
)

EXTRA_ATTRIBUTE = textwrap.dedent(
    """
    import pytest

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(item, call):
        report = yield
        if item.name == "test_plain" and call.when == "call":
            report.extra_note = "added by a plugin"
        return report
    """
)

OWN_SERIALIZER = textwrap.dedent(
    """
    def pytest_report_to_serializable(config, report):
        return None
    """
)


class Recorder:
    """Both wire forms of every phase report, keyed by (test name, phase)."""

    def __init__(self) -> None:
        self.plain: dict[tuple[str, str], bool] = {}
        self.forms: dict[tuple[str, str], tuple[dict[str, Any], dict[str, Any]]] = {}

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        config = self.config
        key = (report.nodeid.rpartition("::")[2], report.when)
        self.plain[key] = is_plain_pass(report, config)
        if not self.plain[key]:
            return
        status = config.hook.pytest_report_teststatus(report=report, config=config)
        compact = orjson.loads(orjson.dumps(plain_pass_payload(report, status)))
        rebuilt = passed_phase_report(compact, slot=3)
        full = config.hook.pytest_report_to_serializable(config=config, report=report)
        full.update(
            teststatus=list(status),
            outcome=report.outcome,
            count_towards_summary=True,
            slot=3,
            pid=os.getpid(),
        )
        del full["keywords"]
        self.forms[key] = rebuilt, orjson.loads(orjson.dumps(full))

    def pytest_configure(self, config: pytest.Config) -> None:
        self.config = config


def run(tmp_path: Path, conftest: str = "") -> Recorder:
    (tmp_path / "test_reports.py").write_text(TESTS)
    (tmp_path / "conftest.py").write_text(conftest)
    (tmp_path / "pytest.ini").write_text("[pytest]\nmarkers =\n    slow: a slow test\n")
    recorder = Recorder()
    code = pytest.main(
        [
            str(tmp_path),
            "-q",
            "-p",
            "no:cacheprovider",
            "--rootdir",
            str(tmp_path),
            "--import-mode=importlib",
        ],
        plugins=[recorder],
    )
    assert code == pytest.ExitCode.TESTS_FAILED
    return recorder


def test_plain_passes_rebuild_pytests_serialisation(tmp_path: Path) -> None:
    recorder = run(tmp_path)
    for name in ("test_plain", "test_method"):
        for when in ("setup", "call", "teardown"):
            assert recorder.plain[name, when], (name, when)
            rebuilt, full = recorder.forms[name, when]
            assert rebuilt == full
    assert recorder.forms["test_method", "call"][0]["teststatus"] == ["passed", ".", "PASSED"]
    assert recorder.forms["test_plain", "setup"][0]["teststatus"] == ["", "", ""]


def test_reports_with_something_to_tell_are_not_plain(tmp_path: Path) -> None:
    recorder = run(tmp_path)
    assert not recorder.plain["test_prints", "call"]  # captured output
    assert not recorder.plain["test_property", "call"]  # user properties
    assert not recorder.plain["test_fails", "call"]
    assert not recorder.plain["test_skipped", "setup"]
    assert not recorder.plain["test_xpasses", "call"]  # wasxfail
    assert recorder.plain["test_skipped", "teardown"]


def test_a_report_a_plugin_added_to_is_not_plain(tmp_path: Path) -> None:
    recorder = run(tmp_path, EXTRA_ATTRIBUTE)
    assert not recorder.plain["test_plain", "call"]
    assert recorder.plain["test_plain", "setup"]


def test_no_report_is_plain_under_a_plugins_serialiser(tmp_path: Path) -> None:
    recorder = run(tmp_path, OWN_SERIALIZER)
    assert recorder.plain and not any(recorder.plain.values())


@pytest.mark.parametrize(
    ("kind", "payload", "wakes"),
    [
        (MessageKind.PhasePassed, {"id": "t.py::test"}, False),
        (MessageKind.TestStart, {"id": "t.py::test", "pid": 1}, False),
        (MessageKind.TestReport, {"report": {"outcome": "passed"}}, False),
        (MessageKind.TestReport, {"report": {"outcome": "failed"}}, True),
        (MessageKind.WorkerReady, {"slot": 0, "pid": 1}, True),
        (MessageKind.UnitFinished, {"unit": "t.py"}, True),
        (MessageKind.WorkerDone, {"slot": 0, "pid": 1}, True),
    ],
)
def test_the_supervisor_is_woken_for_what_it_must_act_on(
    kind: MessageKind, payload: dict[str, Any], wakes: bool
) -> None:
    # The supervisor reads a busy ring on a timer, without arming it: only what it must act
    # on at once (the next unit, the end of the run, a failure for -x) wakes it.
    plugin = TachPlugin.__new__(TachPlugin)  # send() needs nothing but the ring and the pid
    with Ring(1 << 16) as ring, selectors.DefaultSelector() as selector:
        selector.register(ring.fileno(), selectors.EVENT_READ)
        plugin.ring, plugin.producer_pid = ring, os.getpid()
        plugin.send(kind, payload)
        assert bool(selector.select(0)) is wakes
        assert len(ring.pop_many()) == 1
