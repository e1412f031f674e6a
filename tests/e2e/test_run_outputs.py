"""Machine outputs through the real CLI: the NDJSON event stream, JUnit XML, and both at once
with the human report, on the ``outputs`` project (every kind of outcome, properties, a
collection error, a module-level skip)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema
import junitparser
import pytest
import xmlschema
from tach.bench.junit_agreement import compare

from tach.reporter.json import SCHEMA_VERSION, schema

from .conftest import PROJECTS

XSD = Path(__file__).resolve().parents[1] / "data" / "junit-10.xsd"


def tach(cwd: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "tach", *args],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=300,
    )


def events_of(stdout: str) -> list[dict]:
    """Every line of stdout is one JSON event (stdout carries nothing else)."""
    return [json.loads(line) for line in stdout.splitlines()]


@pytest.fixture(scope="module")
def outputs(tmp_path_factory) -> Path:
    dest = tmp_path_factory.mktemp("outputs") / "outputs"
    shutil.copytree(PROJECTS / "outputs", dest)
    return dest


@pytest.fixture(scope="module")
def combined(outputs):
    """One run with all three reporters: NDJSON on stdout, the report on stderr, JUnit XML."""
    result = tach(outputs, "--format=json", "--junit-xml=reports/tach.xml", "-n", "2", "-v")
    return result, outputs / "reports" / "tach.xml"


@pytest.fixture(scope="module")
def pytest_xml(outputs) -> Path:
    path = outputs / "reports" / "pytest.xml"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "--continue-on-collection-errors",
            f"--junitxml={path}",
        ],
        cwd=outputs,
        capture_output=True,
        timeout=300,
    )
    return path


# -- NDJSON -----------------------------------------------------------------------------------


def test_every_event_is_one_json_line_valid_against_the_shipped_schema(combined):
    result, _ = combined
    events = events_of(result.stdout)
    validator = jsonschema.Draft202012Validator(schema())
    for event in events:
        validator.validate(event)
    kinds = [e["event"] for e in events]
    assert kinds[0] == "run_start" and kinds[-1] == "run_finished"
    assert {"collect_error", "test_start", "test_finished"} <= set(kinds)
    start = events[0]
    assert start["schema_version"] == SCHEMA_VERSION
    assert start["count"] >= 20 and start["workers"] == 2 and start["isolation"] == "module"


def test_human_report_goes_to_stderr(combined):
    result, _ = combined
    assert "[w" in result.stderr and "(line " in result.stderr
    assert result.stderr.rstrip().splitlines()[-1].startswith("=")
    assert "passed" in result.stderr.rstrip().splitlines()[-1]


def test_test_finished_carries_status_phase_messages_output_and_def_lines(combined):
    result, _ = combined
    finished = {e["id"]: e for e in events_of(result.stdout) if e["event"] == "test_finished"}
    base = "tests/test_outcomes.py::"
    expected = {
        "test_passes": ("pass", "call"),
        "test_fails": ("fail", "call"),
        "test_setup_error": ("error", "setup"),
        "test_teardown_error": ("error", "teardown"),
        "test_fails_and_teardown_error": ("fail", "call"),
        "test_skipped": ("skip", "setup"),
        "test_skips_inside": ("skip", "call"),
        "test_xfails": ("xfail", "call"),
        "test_xpasses": ("xpass", "call"),
        "test_xpasses_strictly": ("fail", "call"),
    }
    for name, (status, when) in expected.items():
        assert (finished[base + name]["status"], finished[base + name]["when"]) == (status, when)
    fails = finished[base + "test_fails"]
    assert fails["message"] == "AssertionError: arithmetic is broken\nassert (1 + 1) == 3"
    assert "assert 1 + 1 == 3" in fails["longrepr"] and fails["line"] == 11
    assert "output of a failing test" in fails["stdout"]
    passes = finished[base + "test_passes"]
    assert passes["stdout"] == "hello from stdout\n" and passes["stderr"] == "hello from stderr\n"
    assert passes["longrepr"] == "" and passes["line"] == 6 and passes["file"].endswith(".py")
    assert finished[base + "test_skipped"]["message"] == "not today"
    assert finished[base + "test_xfails"]["message"] == "known bug"
    # the line of the def, not of the first decorator (pytest's location points there)
    assert finished["tests/sub/test_more.py::test_decorated[1]"]["line"] == 11
    assert finished[base + "TestGroup::test_odd_ids[a::b]"]["line"] == 63
    skipped_module = finished["tests/test_module_skip.py"]
    assert skipped_module["status"] == "skip" and skipped_module["when"] == "collect"


def test_collect_errors_and_the_final_counts(combined):
    result, _ = combined
    events = events_of(result.stdout)
    (error,) = [e for e in events if e["event"] == "collect_error"]
    assert error["file"] == "tests/sub/test_broken.py" and error["line"] == 1
    assert "SyntaxError" in error["message"]
    starts = {e["id"]: e for e in events if e["event"] == "test_start"}
    assert starts["tests/test_outcomes.py::test_passes"]["line"] == 6
    assert starts["tests/test_outcomes.py::test_passes"]["worker"] in (0, 1)
    final = events[-1]
    assert result.returncode == 1
    # tests by status (a failed test whose teardown failed too counts once, as failed)
    assert (final["passed"], final["failed"], final["errors"]) == (8, 5, 3)
    assert (final["skipped"], final["xfailed"], final["xpassed"]) == (3, 1, 1)
    assert final["exit_code"] == 1


def test_format_from_the_environment_and_quiet_silences_the_report(outputs):
    result = tach(outputs, "-q", "tests/sub/test_more.py", env={"TACH_FORMAT": "json"})
    events = events_of(result.stdout)
    assert events[0]["event"] == "run_start"
    assert events[-1]["passed"] == 2 and result.returncode == 0
    assert result.stderr == ""


# -- JUnit XML --------------------------------------------------------------------------------


def test_junit_xml_validates_against_jenkins_schema(outputs):
    # record_property's <properties> in a testcase is outside the schema (pytest warns that it
    # is "incompatible with junit_family 'xunit2'"), so the tests that use it stay out.
    path = outputs / "reports" / "valid.xml"
    result = tach(outputs, "-k", "not params", f"--junit-xml={path}")
    assert result.returncode == 1, result.stderr
    xmlschema.XMLSchema(str(XSD)).validate(str(path))
    assert len(list(_suite(path))) == 19


def test_junit_xml_parses_with_a_real_consumer(combined):
    _, path = combined
    xml = junitparser.JUnitXml.fromfile(str(path))
    (suite,) = list(xml)
    assert suite.name == "outputs-suite"  # junit_suite_name
    assert (suite.tests, suite.failures, suite.errors, suite.skipped) == (22, 5, 4, 4)
    assert {(p.name, p.value) for p in suite.properties()} == {("build", "42")}
    cases = {(c.classname, c.name): c for c in suite}
    fails = cases[("tests.test_outcomes", "test_fails")]
    (failure,) = fails.result
    assert isinstance(failure, junitparser.Failure)
    assert failure.message.startswith("AssertionError: arithmetic is broken")
    assert "assert 1 + 1 == 3" in failure.text
    params = cases[("tests.test_outcomes", "test_params[1]")]
    assert [(p.name, p.value) for p in params.child(junitparser.Properties)] == [("n", "1")]
    assert ("tests.test_outcomes.TestGroup", "test_odd_ids[a::b]") in cases


def test_junit_xml_lists_what_pytest_lists(combined, pytest_xml):
    _, path = combined
    agreement = compare(path, pytest_xml)
    assert agreement["different"] == {} and agreement["missing"] == []
    assert agreement["extra"] == []
    assert agreement["same"] == agreement["theirs"] == 21
    # and the same messages and report texts (the texts of a test that prints an address
    # differ by that address)
    ours = {(c.classname, c.name, r._tag, r.message) for c in _suite(path) for r in c.result}
    theirs = {
        (c.classname, c.name, r._tag, r.message) for c in _suite(pytest_xml) for r in c.result
    }
    assert ours == theirs


def _suite(path: Path) -> junitparser.TestSuite:
    return next(iter(junitparser.JUnitXml.fromfile(str(path))))


def test_junit_family_xunit1_has_file_and_def_line(outputs):
    path = outputs / "reports" / "xunit1.xml"
    result = tach(
        outputs, "tests/sub/test_more.py", "-o", "junit_family=xunit1", f"--junit-xml={path}"
    )
    assert result.returncode == 0, result.stderr
    cases = [dict(c.attrib) for c in ET.parse(path).getroot().iter("testcase")]
    assert [(c["file"], c["line"]) for c in cases] == [("tests/sub/test_more.py", "11")] * 2


def test_junit_xml_is_as_readable_as_a_file_pytest_writes(combined):
    _, xml = combined
    umask = os.umask(0)
    os.umask(umask)
    assert xml.stat().st_mode & 0o777 == 0o666 & ~umask


def test_a_reader_closing_the_event_stream_loses_neither_the_run_nor_the_junit_xml(
    outputs, tmp_path
):
    xml = tmp_path / "tach.xml"
    with open(tmp_path / "stderr", "wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tach", "--format=json", f"--junit-xml={xml}", "-n", "2"],
            cwd=outputs,
            stdout=subprocess.PIPE,
            stderr=err,
        )
        first = proc.stdout.readline()  # the reader takes one event (``| head -1``)...
        proc.stdout.close()  # ...and goes away
        assert proc.wait(timeout=300) == 1  # the run's own outcome: failures
    assert json.loads(first)["event"] == "run_start"
    cases = list(_suite(xml))
    assert len(cases) > 10
    assert "Traceback" not in (tmp_path / "stderr").read_text()


@pytest.mark.parametrize("project", ["run_crash"], indirect=True)
def test_junit_xml_is_written_when_a_test_crashed(project):
    result = tach(project, "-n", "1", env={"TACH_JUNIT_XML": "crash.xml"})
    assert result.returncode == 1
    cases = {c.name: c for c in _suite(project / "crash.xml")}
    assert isinstance(cases["test_segfault"].result[0], junitparser.Failure)
    assert "SIGSEGV" in cases["test_segfault"].result[0].message
    assert cases["test_after"].result == []


def test_junit_xml_is_written_when_the_run_is_interrupted(tmp_path):
    (tmp_path / "test_slow.py").write_text(
        "import time\n\ndef test_quick():\n    pass\n\n"
        "def test_slow():\n    time.sleep(60)\n"
    )
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    proc = subprocess.Popen(
        [sys.executable, "-m", "tach", "-n", "1", "--junit-xml=out.xml", "--format=json"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        if '"test_start"' in line and "test_slow" in line:
            break
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    rest, _ = proc.communicate(timeout=60)
    assert proc.returncode == 2
    assert json.loads(rest.splitlines()[-1])["exit_code"] == 2
    names = [c.name for c in _suite(tmp_path / "out.xml")]
    assert "test_quick" in names
    assert not list(tmp_path.glob(".out.xml.*")), "a temporary file was left behind"
