"""pytest-cov under Tach: the same covered lines and branches as ``pytest --cov``, the same
reports, the same exit code (``docs/plugins.md``)."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.e2e._run import MODES
from tests.e2e.plugin_env import plugin_python
from tests.e2e.plugin_runs import pytest_outcomes, run, tach_outcomes

COV = ["--cov", "--cov-branch"]


@pytest.fixture(scope="module")
def python() -> Path:
    return plugin_python()


def xml_lines(path: Path) -> dict[str, list[tuple[str, ...]]]:
    """Per file of a Cobertura report: each line's number, whether it ran, and its branches."""
    found: dict[str, list[tuple[str, ...]]] = {}
    for cls in ET.parse(path).getroot().iter("class"):
        found[cls.get("filename", "")] = [
            (
                line.get("number", ""),
                str(int(line.get("hits", "0")) > 0),
                line.get("condition-coverage", ""),
                line.get("missing-branches", ""),
            )
            for line in cls.iter("line")
        ]
    return found


def json_files(path: Path) -> dict[str, dict[str, list]]:
    """Per file of coverage's JSON report: executed and missing lines and branches."""
    keys = ("executed_lines", "missing_lines", "executed_branches", "missing_branches")
    files = json.loads(path.read_text())["files"]
    return {name: {key: data[key] for key in keys} for name, data in files.items()}


def coverage_table(output: str) -> list[str]:
    """The lines of the terminal report, from its heading to TOTAL."""
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("Name "))
    end = next(i for i, line in enumerate(lines) if line.startswith("TOTAL"))
    return lines[start : end + 1]


@pytest.mark.parametrize("isolation", MODES)
@pytest.mark.parametrize("project", ["coverage_app"], indirect=True)
def test_the_same_lines_and_branches_as_pytest_cov(project, python, isolation):
    # the package's lines run in the zygote (imports), in workers, in test processes and in a
    # subprocess a test starts (coverage's own subprocess patch, from [tool.coverage.run])
    reports = ["--cov-report=term-missing", "--cov-report=xml:{}.xml", "--cov-report=json:{}.json"]
    expected, baseline = pytest_outcomes(
        python, project, *COV, *(r.format("pytest") for r in reports)
    )
    assert baseline.returncode == 0, baseline.stdout
    found, result = tach_outcomes(
        python, project, "-n", "2", "--isolation", isolation, *COV,
        *(r.format("tach") for r in reports),
    )
    assert found == expected, result.stderr
    assert result.returncode == 0, result.stderr
    assert xml_lines(project / "tach.xml") == xml_lines(project / "pytest.xml")
    assert json_files(project / "tach.json") == json_files(project / "pytest.json")
    assert coverage_table(result.stderr) == coverage_table(baseline.stdout)
    assert "tests coverage" in result.stderr
    # what the processes saved was combined into the one data file, as under pytest
    assert sorted(p.name for p in project.glob(".coverage*")) == [".coverage"]


@pytest.mark.parametrize(("minimum", "code"), [(95, 1), (50, 0)])
@pytest.mark.parametrize("project", ["coverage_app"], indirect=True)
def test_cov_fail_under_decides_the_exit_code_as_under_pytest_cov(project, python, minimum, code):
    args = [*COV, f"--cov-fail-under={minimum}"]
    baseline = run(python, project, "pytest", *args)
    result = run(python, project, "tach", "-n", "2", *args)
    assert baseline.returncode == result.returncode == code, result.stdout + result.stderr
    verdict = re.search(r"(FAIL )?Required test coverage of \d+% (not )?reached.*", baseline.stdout)
    assert verdict is not None and verdict.group(0) in result.stdout


@pytest.mark.parametrize("project", ["coverage_app"], indirect=True)
def test_cov_append_adds_to_the_previous_data_as_under_pytest_cov(project, python):
    json_report = "--cov-report=json:{}.json"
    for tool, prefix in (("pytest", ["pytest"]), ("tach", ["tach", "-n", "2"])):
        for selection in ("area", "kind"):
            report = json_report.format(tool)
            result = run(python, project, *prefix, *COV, "--cov-append", "-k", selection, report)
            assert result.returncode == 0, result.stdout + result.stderr
        (project / ".coverage").unlink()
    assert json_files(project / "tach.json") == json_files(project / "pytest.json")


@pytest.mark.parametrize("project", ["coverage_app"], indirect=True)
def test_html_reports_the_same_files_and_no_cov_measures_nothing(project, python):
    run(python, project, "pytest", *COV, "--cov-report=html:pytest-html")
    result = run(python, project, "tach", *COV, "--cov-report=html:tach-html")
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (project / "tach-html").iterdir()) == sorted(
        p.name for p in (project / "pytest-html").iterdir()
    )
    for data in project.glob(".coverage*"):
        data.unlink()
    result = run(python, project, "tach", *COV, "--no-cov")
    assert result.returncode == 0, result.stderr
    assert "coverage:" not in result.stdout
    assert not list(project.glob(".coverage*"))
