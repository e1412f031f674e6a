"""Bad input on the command line: pytest's usage error (exit 4), naming what was wrong."""

from __future__ import annotations

import subprocess
import sys

import pytest

from ._run import copy_project, outcomes, run_tach, without_file_privileges


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory):
    return copy_project("gauntlet", tmp_path_factory.mktemp("usage"))


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["tests/nope.py"], "tests/nope.py"),
        (["tests/test_cycle.py::nope"], "tests/test_cycle.py::nope"),
        (["-k", "a and"], "-k"),
        (["-m", "x or"], "-m"),
        (["--timeout", "soon"], "--timeout"),
        (["--session-timeout", "-1"], "--session-timeout"),
        (["--max-memory", "12Q"], "--max-memory"),
        (["-n", "-1"], "-n/--workers"),
        (["-n", "many"], "-n/--workers"),
        (["--isolation", "some"], "--isolation"),
    ],
)
def test_usage_errors_exit_4_and_name_the_culprit(project, args, named):
    _, result = run_tach(project, *args, timeout=120)
    assert result.returncode == 4, result.stdout[-2000:] + result.stderr[-2000:]
    assert named in result.stdout + result.stderr


def test_timeout_from_the_environment_is_checked_too(project):
    _, result = run_tach(project, "tests/test_cycle.py", env={"TACH_TIMEOUT": "later"})
    assert result.returncode == 4
    assert "TACH_TIMEOUT" in result.stderr


def test_a_node_id_runs_only_that_test(project):
    events, result = run_tach(project, "tests/test_exits.py::test_os_exit[3]", "-n", "1")
    assert result.returncode == 1
    assert [e["id"] for e in events if e["event"] == "test_finished"] == [
        "tests/test_exits.py::test_os_exit[3]"
    ]


def tach_list(project, *args: str, prefix: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*prefix, sys.executable, "-m", "tach", "list", *args],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def unreadable(tmp_path):
    """A project with one readable test file, one unreadable test file and one unreadable
    directory of tests, and the command prefix under which they are unreadable."""
    prefix = without_file_privileges()
    if prefix is None:
        pytest.skip("running as root without a way to drop CAP_DAC_OVERRIDE (setpriv)")
    (tmp_path / "test_ok.py").write_text("def test_ok():\n    pass\n")
    (tmp_path / "test_locked.py").write_text("def test_locked():\n    pass\n")
    (tmp_path / "locked").mkdir()
    (tmp_path / "locked" / "test_inside.py").write_text("def test_inside():\n    pass\n")
    (tmp_path / "test_locked.py").chmod(0)
    (tmp_path / "locked").chmod(0)
    yield tmp_path, prefix
    (tmp_path / "locked").chmod(0o755)
    (tmp_path / "test_locked.py").chmod(0o644)


@pytest.mark.parametrize("named", ["test_locked.py", "locked", "locked/test_inside.py"])
def test_an_unreadable_path_on_the_command_line_is_a_usage_error(unreadable, named):
    project, prefix = unreadable
    _, result = run_tach(project, named, prefix=prefix, timeout=120)
    listed = tach_list(project, named, prefix=prefix)
    for got in (result, listed):
        assert got.returncode == 4, got.stdout[-2000:] + got.stderr[-2000:]
        assert f"cannot read {named}: Permission denied" in got.stderr


def test_unreadable_files_and_directories_found_in_the_tree_are_errors_and_the_rest_runs(
    unreadable,
):
    project, prefix = unreadable
    events, result = run_tach(project, "-n", "1", prefix=prefix, timeout=120)
    # as pytest: each is a collection error; the readable test runs
    assert outcomes(events) == {
        "test_ok.py::test_ok": "pass:call",
        "test_locked.py": "collect_error",
        "locked": "collect_error",
    }, result.stderr[-3000:]
    assert result.returncode == 1
    assert "Permission denied" in result.stderr

    listed = tach_list(project, "-q", prefix=prefix)
    assert "test_ok.py::test_ok" in listed.stdout.splitlines()
    assert "ERROR: test_locked.py:1: cannot read: Permission denied" in listed.stderr
    assert "ERROR: locked: cannot read directory: Permission denied" in listed.stderr
