"""Bad input on the command line: pytest's usage error (exit 4), naming what was wrong."""

from __future__ import annotations

import pytest

from ._run import copy_project, run_tach


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
        (["-n", "0"], "-n/--workers"),
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
