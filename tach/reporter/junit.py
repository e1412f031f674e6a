"""The JUnit XML reporter: the file pytest's ``--junitxml`` writes, from the reports workers send.

The XML is built the way pytest's ``_pytest/junitxml.py`` builds it, report by report, so that
CI shows the same names and outcomes as before: one ``testsuite`` (``junit_suite_name``) inside
``testsuites``; per test a ``testcase`` whose ``classname`` and ``name`` come from the node id
(``mangle_test_address``), with ``failure`` / ``error`` / ``skipped`` elements carrying pytest's
messages and the full report as text, ``system-out`` / ``system-err`` as ``junit_logging`` asks,
and ``properties`` from ``record_property`` (a test's ``user_properties``). Suite properties
recorded with ``record_testsuite_property`` are forwarded by the test processes.
``junit_family`` (``xunit2``, the default, or ``xunit1`` / ``legacy``), ``junit_logging``,
``junit_log_passing_tests`` and ``junit_duration_report`` are honoured.

Where Tach differs: the ``line`` attribute (``xunit1``) is the 1-based line of the test's
``def``, where pytest writes its 0-based ``location`` (which points at the first decorator);
testcases come in the order tests finished, which in a parallel run is not pytest's order; a
suite property recorded once per worker with the same value is written once.

The file is written when the run ends — also when it was interrupted or a worker crashed —
through a temporary file and a rename, so a reader never sees half a report.
"""

from __future__ import annotations

import datetime
import os
import platform
import re
import time
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tach.results import Locations, TestResult
from tach.scheduler import RunSummary, Unit, write_atomically

#: pytest's budget for the ``message`` attribute of ``failure`` and ``error`` elements.
MESSAGE_ATTR_BUDGET = 500
#: The first pytest whose ``message`` attributes are shortened (earlier ones keep them whole).
SHORTENED_SINCE = (9, 2)
FAMILIES = ("xunit1", "xunit2", "legacy")
LOGGING = ("no", "log", "system-out", "system-err", "out-err", "all")

_ILLEGAL_XML = re.compile(
    "[^\u0009\u000a\u000d\u0020-\u007e\u0080-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]"
)


def bin_xml_escape(arg: object) -> str:
    """pytest's ``bin_xml_escape``: characters XML cannot hold become visible ``#xNN``."""

    def repl(match: re.Match[str]) -> str:
        i = ord(match.group())
        return f"#x{i:02X}" if i <= 0xFF else f"#x{i:04X}"

    return _ILLEGAL_XML.sub(repl, str(arg))


def shorten_message(msg: str, budget: int = MESSAGE_ATTR_BUDGET) -> str:
    """pytest's ``shorten_message``: whole lines while they fit ``budget``, then a note."""
    lines = msg.splitlines() or [""]
    kept: list[str] = []
    size = 0
    for line in lines:
        if kept and size + len(line) + 1 > budget:
            break
        kept.append(line)
        size += len(line) + 1
    shortened = "\n".join(kept)
    first_line_cut = len(shortened) > budget
    if first_line_cut:
        shortened = shortened[:budget] + "..."
    remaining = len(lines) - len(kept)
    if remaining:
        note = f"+{remaining} more line{'s' if remaining > 1 else ''}"
    elif first_line_cut:
        note = "truncated"
    else:
        return msg
    return f"{shortened}\n[{note}; full report in element text]"


def mangle_test_address(address: str) -> list[str]:
    """pytest's ``mangle_test_address``: a node id as dotted class name parts and a name.

    ``tests/sub/test_x.py::TestA::test_b[1-2]`` -> ``["tests.sub.test_x", "TestA",
    "test_b[1-2]"]``.
    """
    path, bracket, params = address.partition("[")
    names = path.split("::")
    names[0] = re.sub(r"\.py$", "", names[0].replace("/", "."))
    names[-1] += bracket + params
    return names


def longrepr_text(report: dict[str, Any]) -> str:
    """``str(report.longrepr)`` as pytest would give it, from the serialised report."""
    if report.get("longreprtext"):
        return str(report["longreprtext"])
    longrepr = report.get("longrepr")
    if isinstance(longrepr, list):  # a skip's (path, lineno, reason), a tuple in pytest
        return str(tuple(longrepr))
    return "" if longrepr is None else str(longrepr)


def crash_message(report: dict[str, Any]) -> str:
    """``longrepr.reprcrash.message`` when the report has one, else the whole report's text."""
    longrepr = report.get("longrepr")
    if isinstance(longrepr, dict):
        crash = longrepr.get("reprcrash")
        if isinstance(crash, dict) and crash.get("message") is not None:
            return str(crash["message"])
    return longrepr_text(report)


def captured(report: dict[str, Any], prefix: str) -> str:
    """pytest's ``capstdout`` / ``capstderr`` / ``caplog`` of a serialised report."""
    return "".join(
        content for title, content in report.get("sections", ()) if title.startswith(prefix)
    )


class _TestCase:
    """One ``testcase`` element being built (pytest's ``_NodeReporter``)."""

    def __init__(self, writer: JunitXmlReporter, test_id: str) -> None:
        self.writer = writer
        self.id = test_id
        self.duration = 0.0
        self.properties: list[tuple[str, str]] = []
        self.nodes: list[ET.Element] = []
        self.attrs: dict[str, str] = {}
        self.element: ET.Element | None = None

    def append(self, node: ET.Element) -> None:
        self.writer.add_stats(node.tag)
        self.nodes.append(node)

    def record(self, report: dict[str, Any]) -> None:
        names = mangle_test_address(self.id)
        classnames = names[:-1]
        if self.writer.prefix:
            classnames.insert(0, self.writer.prefix)
        file, line = self.writer.locations.of(self.id, report)
        attrs = {"classname": ".".join(classnames), "name": bin_xml_escape(names[-1])}
        if self.writer.family == "xunit1":
            attrs["file"] = file
            if line is not None and report.get("$report_type") != "CollectReport":
                attrs["line"] = str(line)
            attrs.update(self.attrs)  # record_xml_attribute's, as pytest keeps them
        self.attrs = attrs

    def add_simple(self, tag: str, message: str, data: str | None = None) -> None:
        node = ET.Element(tag, message=message)
        node.text = bin_xml_escape(data)
        self.append(node)

    def write_captured_output(self, report: dict[str, Any]) -> None:
        writer = self.writer
        if not writer.log_passing_tests and report.get("outcome") == "passed":
            return
        if writer.logging == "no":
            return
        content_all = ""
        if writer.logging in ("log", "all"):
            content_all = _prepare(captured(report, "Captured log"), " Captured Log ")
        if writer.logging in ("system-out", "out-err", "all"):
            content_all += _prepare(captured(report, "Captured stdout"), " Captured Out ")
            self._write_content(content_all, "system-out")
            content_all = ""
        if writer.logging in ("system-err", "out-err", "all"):
            content_all += _prepare(captured(report, "Captured stderr"), " Captured Err ")
            self._write_content(content_all, "system-err")
            content_all = ""
        if content_all:
            self._write_content(content_all, "system-out")

    def _write_content(self, content: str, tag: str) -> None:
        node = ET.Element(tag)
        node.text = bin_xml_escape(content)
        self.append(node)

    def append_failure(self, report: dict[str, Any]) -> None:
        if "wasxfail" in report:
            self.add_simple("skipped", "xfail-marked test passes unexpectedly")
        else:
            message = bin_xml_escape(self.writer.shorten(crash_message(report)))
            self.add_simple("failure", message, longrepr_text(report))

    def append_error(self, report: dict[str, Any]) -> None:
        reason = crash_message(report)
        phase = "teardown" if report.get("when") == "teardown" else "setup"
        message = bin_xml_escape(self.writer.shorten(f'failed on {phase} with "{reason}"'))
        self.add_simple("error", message, longrepr_text(report))

    def append_skipped(self, report: dict[str, Any]) -> None:
        if "wasxfail" in report:
            reason = str(report["wasxfail"]).removeprefix("reason: ")
            self.append(ET.Element("skipped", type="pytest.xfail", message=bin_xml_escape(reason)))
            return
        longrepr = report.get("longrepr")
        if isinstance(longrepr, list | tuple) and len(longrepr) == 3:
            filename, lineno, reason = longrepr
        else:
            filename, lineno, reason = "", "", longrepr_text(report)
        reason = str(reason).removeprefix("Skipped: ")
        node = ET.Element("skipped", type="pytest.skip", message=bin_xml_escape(reason))
        node.text = bin_xml_escape(f"{filename}:{lineno}: {reason}")
        self.append(node)
        self.write_captured_output(report)

    def finalize(self, report: dict[str, Any]) -> None:
        for name, value in report.get("user_properties") or ():
            self.properties.append((str(name), bin_xml_escape(str(value))))
        self.element = self.to_xml()

    def to_xml(self) -> ET.Element:
        if self.element is not None:
            return self.element
        testcase = ET.Element("testcase", self.attrs, time=f"{self.duration:.3f}")
        if self.properties:
            properties = ET.SubElement(testcase, "properties")
            for name, value in self.properties:
                ET.SubElement(properties, "property", name=name, value=value)
        testcase.extend(self.nodes)
        return testcase


def version_tuple(version: str) -> tuple[int, ...]:
    """``"9.2.0"`` -> ``(9, 2, 0)``; the numeric prefix of each part (``"0rc1"`` -> 0)."""
    parts = []
    for part in version.split(".")[:3]:
        digits = re.match(r"\d*", part)
        parts.append(int(digits.group()) if digits and digits.group() else 0)
    return tuple(parts)


def _prepare(content: str, header: str) -> str:
    return "\n".join([header.center(80, "-"), content, ""])


class JunitXmlReporter:
    """Collects the run's reports and writes pytest's JUnit XML to ``path`` when it ends."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        locations: Locations | None = None,
        suite_name: str = "pytest",
        family: str = "xunit2",
        logging: str = "no",
        log_passing_tests: bool = True,
        duration_report: str = "total",
        prefix: str | None = None,
    ) -> None:
        self.path = Path(path)
        self.locations = locations if locations is not None else Locations()
        self.suite_name = suite_name
        self.family = "xunit1" if family == "legacy" else family
        self.logging = logging
        self.log_passing_tests = log_passing_tests
        self.duration_report = duration_report
        self.prefix = prefix
        self.start_time = time.time()
        self.started = time.perf_counter()
        #: Tests in the order they finished, and the collection reports that failed or skipped.
        self.entries: list[TestResult | dict[str, Any]] = []
        self.seen: set[str] = set()
        self.suite_properties: list[tuple[str, str]] = []
        self.attributes: dict[str, dict[str, str]] = {}
        self.pytest_version: tuple[int, ...] = SHORTENED_SINCE

    # -- events -------------------------------------------------------------------------------

    def on_run_start(self, info: dict[str, Any]) -> None:
        self.pytest_version = version_tuple(str(info.get("pytest_version") or ""))

    def shorten(self, message: str) -> str:
        """A ``message`` attribute as the pytest that ran the tests writes it."""
        if self.pytest_version < SHORTENED_SINCE:
            return message
        return shorten_message(message)

    def on_collected(
        self, unit: Unit, ids: Sequence[str], errors: Sequence[dict[str, Any]]
    ) -> None:
        self.entries.extend(errors)

    def on_test_start(self, result: TestResult) -> None:
        pass

    def on_report(self, result: TestResult, report: dict[str, Any]) -> None:
        pass

    def on_test_finished(self, result: TestResult) -> None:
        if result.id not in self.seen:  # a late teardown error is already in result.reports
            self.seen.add(result.id)
            self.entries.append(result)

    def on_warning(self, warning: dict[str, Any]) -> None:
        pass

    def on_terminal_text(self, text: dict[str, Any]) -> None:
        pass  # pytest's --junitxml has no place for it either

    def on_debug(self, event: dict[str, Any]) -> None:
        pass  # nor for a debugger session

    def on_record(self, record: dict[str, Any]) -> None:
        """A ``record_testsuite_property`` or ``record_xml_attribute`` call in a test process."""
        name, value = str(record.get("name")), bin_xml_escape(record.get("value"))
        if record.get("kind") == "suite_property":
            if (name, value) not in self.suite_properties:
                self.suite_properties.append((name, value))
        elif record.get("kind") == "attribute":
            self.attributes.setdefault(str(record.get("nodeid")), {})[name] = value

    def flush(self) -> None:
        pass  # the file is written whole at the end

    def on_run_finished(self, summary: RunSummary) -> None:
        if summary.zygote_exit_code is not None:
            return  # pytest stopped before its session started: it writes no report either
        write_atomically(self.path, self.render(summary))

    # -- the document -------------------------------------------------------------------------

    def add_stats(self, key: str) -> None:
        if key in self.stats:
            self.stats[key] += 1

    def render(self, summary: RunSummary | None = None) -> bytes:
        """The whole XML document, as pytest's ``pytest_sessionfinish`` writes it."""
        self.stats = dict.fromkeys(("error", "passed", "failure", "skipped"), 0)
        self.double_fail = 0
        cases: list[_TestCase] = []
        for entry in self.entries:
            if isinstance(entry, TestResult):
                cases += self._test_cases(entry)
            else:
                cases.append(self._collect_case(entry))
        numtests = sum(self.stats.values()) - self.double_fail
        duration = summary.duration if summary is not None else time.perf_counter() - self.started
        start = datetime.datetime.fromtimestamp(self.start_time).astimezone()
        suite = ET.Element(
            "testsuite",
            name=self.suite_name,
            errors=str(self.stats["error"]),
            failures=str(self.stats["failure"]),
            skipped=str(self.stats["skipped"]),
            tests=str(numtests),
            time=f"{duration:.3f}",
            timestamp=start.isoformat(),
            hostname=platform.node(),
        )
        if self.suite_properties:
            properties = ET.SubElement(suite, "properties")
            for name, value in self.suite_properties:
                ET.SubElement(properties, "property", name=name, value=value)
        for case in cases:
            suite.append(case.to_xml())
        testsuites = ET.Element("testsuites", name="pytest tests")
        testsuites.append(suite)
        text = '<?xml version="1.0" encoding="utf-8"?>' + ET.tostring(
            testsuites, encoding="unicode"
        )
        return text.encode("utf-8")

    def _new_case(self, test_id: str, report: dict[str, Any]) -> _TestCase:
        case = _TestCase(self, test_id)
        case.attrs = dict(self.attributes.get(test_id, {}))
        case.record(report)
        return case

    def _collect_case(self, report: dict[str, Any]) -> _TestCase:
        case = self._new_case(str(report.get("nodeid", "")), report)
        if report.get("outcome") == "failed":
            case.add_simple("error", "collection failure", longrepr_text(report))
        else:
            case.add_simple("skipped", "collection skipped", longrepr_text(report))
        return case

    def _test_cases(self, result: TestResult) -> list[_TestCase]:
        """A test's phase reports through pytest's ``LogXML.pytest_runtest_logreport``.

        Usually one testcase; two when the call failed and the teardown failed too (pytest
        closes the first and opens another, to follow the schema).
        """
        cases: list[_TestCase] = []
        current: _TestCase | None = None
        failed_call: dict[str, Any] | None = None

        def opened(report: dict[str, Any]) -> _TestCase:
            nonlocal current
            if current is None:
                current = self._new_case(result.id, report)
                cases.append(current)
            else:
                current.record(report)
            return current

        for report in result.reports:
            outcome, when = report.get("outcome"), report.get("when")
            if outcome == "passed":
                if when == "call":
                    opened(report)
                    self.add_stats("passed")
            elif outcome == "failed":
                if when == "teardown":
                    if failed_call is not None and current is not None:
                        current.finalize(failed_call)
                        current = None
                    elif current is not None:
                        self.double_fail += 1
                case = opened(report)
                if when == "call":
                    case.append_failure(report)
                    failed_call = report
                    if not self.log_passing_tests:
                        case.write_captured_output(report)
                else:
                    case.append_error(report)
            elif outcome == "skipped":
                opened(report).append_skipped(report)
            if self.duration_report in ("total", when):
                case = current if current is not None else opened(report)
                case.duration += report.get("duration", 0.0) or 0.0
            if when == "teardown":
                case = opened(report)
                case.write_captured_output(report)
                case.finalize(report)
                current = None
                failed_call = None
        return cases
