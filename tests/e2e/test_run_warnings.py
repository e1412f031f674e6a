"""Tach's warnings are pytest's: the same warnings, and the same count in the summary line.

``projects/run_warnings`` starts processes with multiprocessing's spawn and forkserver start
methods and leaves a shared memory segment behind. multiprocessing's helper processes (resource
tracker, fork server) run until the process that started them ends: a test process, or the worker
itself with ``--isolation none``. They are not processes a test left running, and pytest, where
they end with its own process, never warns of them; the tracker unlinks the segment then.
"""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import pytest

from ._run import MODES, outcomes, pytest_warnings, run_tach, summary_warnings

PROJECT = Path(__file__).parent / "projects" / "run_warnings"
TESTS = 6


def copy_project(where: Path) -> tuple[Path, dict[str, str]]:
    """A copy of the project, and the environment that names its shared memory segment."""
    project = where / "project"
    shutil.copytree(PROJECT, project)
    return project, {"TACH_E2E_SHM": f"tach-e2e-{uuid.uuid4().hex[:12]}"}


@pytest.fixture(scope="module")
def expected(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[list[str]], int | None]:
    """pytest's warnings on the project, and its summary's count."""
    project, env = copy_project(tmp_path_factory.mktemp("pytest"))
    return pytest_warnings(project, env=env)


def test_pytest_reports_the_test_warning_alone(expected):
    warnings, count = expected
    assert warnings == [["UserWarning", "mind the gap", "tests/test_warning.py::test_warns"]]
    assert count == 1


@pytest.mark.parametrize("mode", MODES)
def test_warnings_are_pytests(mode, expected, tmp_path):
    project, env = copy_project(tmp_path)
    tempdir = tmp_path / "tmp"
    tempdir.mkdir()
    env["TMPDIR"] = str(tempdir)
    events, result = run_tach(project, "--isolation", mode, "-n", "2", env=env)
    assert result.returncode == 0, result.stderr
    assert list(outcomes(events).values()) == ["pass"] * TESTS
    warnings = [
        [event["category"], event["message"], event["nodeid"]]
        for event in events
        if event["event"] == "warning"
    ]
    pytests, count = expected
    assert sorted(warnings) == sorted(pytests)
    assert summary_warnings(result.stderr) == count
    # The tracker cleaned up once the process that started it had ended, and what it said then
    # on its stderr is no test's output.
    assert not (Path("/dev/shm") / env["TACH_E2E_SHM"]).exists()
    stderr = {e["id"]: e["stderr"] for e in events if e["event"] == "test_finished"}
    assert stderr == dict.fromkeys(stderr, "")
    # multiprocessing's temporary directories (the fork server's socket) are gone, as they are
    # when pytest's process exits
    assert sorted(p.name for p in tempdir.glob("pymp-*")) == []
