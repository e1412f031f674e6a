"""The base temporary directory is the whole run's, as in pytest.

Every worker shares the zygote's base directory. ``projects/run_tmp_path`` sets
``tmp_path_retention_policy = failed``, under which pytest removes the base directory at the end
of a session whose tests all passed and keeps it otherwise. Its longest module waits, in a
test, until a session has finished elsewhere (the other module's worker) and then reads its
``tmp_path``: a worker that cleaned up the shared directory at the end of its own session
removed it under that test.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ._run import MODES, outcomes, run_tach

PROJECT = Path(__file__).parent / "projects" / "run_tmp_path"


def copy_project(where: Path, fail: bool) -> tuple[Path, dict[str, str]]:
    """A copy of the project, and its environment: a temp root of its own (so that the base
    directory is found and nothing else is pruned) and where to record the base directory."""
    project = where / "project"
    shutil.copytree(PROJECT, project)
    temp_root = where / "tmp"
    temp_root.mkdir()
    env = {"TMPDIR": str(temp_root), "E2E_BASETEMP_RECORD": str(where / "basetemp")}
    if fail:
        env["E2E_FAIL"] = "1"
    return project, env


def basetemp(where: Path) -> Path:
    return Path((where / "basetemp").read_text())


@pytest.mark.parametrize("fail", [False, True], ids=["passing", "failing"])
def test_pytest_removes_the_base_directory_only_when_every_test_passed(tmp_path, fail):
    project, env = copy_project(tmp_path, fail)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=project,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == (1 if fail else 0), result.stdout
    assert basetemp(tmp_path).exists() is fail


@pytest.mark.parametrize("fail", [False, True], ids=["passing", "failing"])
@pytest.mark.parametrize("mode", MODES)
def test_tach_keeps_the_base_directory_for_the_whole_run(tmp_path, mode, fail):
    project, env = copy_project(tmp_path, fail)
    env["E2E_SESSION_FINISHED"] = str(tmp_path / "session-finished")
    events, result = run_tach(project, "--isolation", mode, "-n", "2", env=env)
    assert result.returncode == (1 if fail else 0), result.stderr
    assert outcomes(events) == {
        "test_a_waits.py::test_keeps_its_tmp_path_while_another_session_finishes": "pass",
        "test_a_waits.py::test_second": "pass",
        "test_b_quick.py::test_quick": "fail" if fail else "pass",
    }
    assert basetemp(tmp_path).exists() is fail
