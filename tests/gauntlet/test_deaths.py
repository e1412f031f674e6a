"""Deaths of workers and zygotes, and hangs of what a worker holds: replaced, blamed as pytest
would blame them, and never respawned forever."""

from __future__ import annotations

import pytest

from ._run import MODES, copy_project, outcomes, run_tach


@pytest.mark.parametrize("mode", MODES)
def test_a_zygote_that_dies_is_replaced(tmp_path, mode):
    project = copy_project("zygote_death", tmp_path)
    events, result = run_tach(
        project,
        "--isolation",
        mode,
        "-n",
        "1",
        "tests/test_a.py",
        env={"ZYGOTE_DEATH_DIR": str(tmp_path), "KILL_ZYGOTE_TIMES": "1"},
    )
    assert result.returncode == 1, result.stderr[-3000:]
    assert outcomes(events) == {
        "tests/test_a.py::test_a1": "pass:call",
        "tests/test_a.py::test_a2": "error:setup",
        "tests/test_a.py::test_a3": "pass:call",
    }
    message = next(
        e
        for e in events
        if e.get("id") == "tests/test_a.py::test_a2" and e["event"] == "test_finished"
    )["message"]
    assert "the zygote" in message and "died" in message
    assert sum(e["event"] == "run_start" for e in events) == 1


@pytest.mark.parametrize("mode", MODES)
def test_a_zygote_that_keeps_dying_stops_the_run(tmp_path, mode):
    project = copy_project("zygote_death", tmp_path)
    events, result = run_tach(
        project,
        "--isolation",
        mode,
        "-n",
        "1",
        env={"ZYGOTE_DEATH_DIR": str(tmp_path), "KILL_ZYGOTE_TIMES": "100"},
        timeout=120,
    )
    assert result.returncode == 3, result.stderr[-3000:]
    assert "died 3 times, not started again" in result.stdout + result.stderr
    ids = [e["id"] for e in events if e["event"] == "test_finished"]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("mode", MODES)
def test_a_worker_that_keeps_dying_with_no_test_to_blame_stops_the_run(tmp_path, mode):
    project = copy_project("worker_death", tmp_path)
    events, result = run_tach(project, "--isolation", mode, "-n", "1", timeout=120)
    assert result.returncode == 3, result.stderr[-3000:]
    text = result.stdout + result.stderr
    assert "died 3 times in a row with no test to blame" in text
    assert "not run: tests/test_f" in text
    assert not [e for e in events if e["event"] == "test_finished"]


@pytest.mark.parametrize("mode", MODES)
def test_a_session_fixture_hanging_in_teardown_is_blamed_on_the_last_test(tmp_path, mode):
    project = copy_project("session_hang", tmp_path)
    events, result = run_tach(project, "--isolation", mode, "-n", "1", "--timeout", "1")
    assert result.returncode == 1, result.stderr[-3000:]
    assert outcomes(events) == {
        "tests/test_session.py::test_first": "pass:call",
        "tests/test_session.py::test_last": "error:teardown",
    }
    assert sum(e["event"] == "test_finished" for e in events) == 2
    last = next(
        e
        for e in events
        if e["event"] == "test_finished" and e["id"] == "tests/test_session.py::test_last"
    )
    assert last["message"].startswith("Timeout after 1 s")
    assert "in hangs_in_session_teardown" in last["longrepr"]
