"""The gauntlet: whatever a test does, through the CLI, in every isolation mode, every collected
test gets exactly one outcome, attributed to the right test and phase, and the rest of each file
still runs."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from ._run import MODES, copy_project, finished, free_port, outcomes, run_tach
from .expected import LEAKY, expected


@pytest.fixture(scope="module", params=MODES)
def gauntlet(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    """One run of the gauntlet project per isolation mode (two workers)."""
    mode = request.param
    project = copy_project("gauntlet", tmp_path_factory.mktemp(f"gauntlet-{mode}"))
    events, result = run_tach(
        project, "--isolation", mode, "-n", "2", env={"GAUNTLET_PORT": str(free_port())}
    )
    return mode, events, result


def test_every_test_gets_exactly_one_expected_outcome(gauntlet):
    mode, events, result = gauntlet
    assert result.returncode == 1, result.stderr[-3000:]
    found = outcomes(events)
    ids = [e["id"] for e in events if e["event"] == "test_finished"]
    assert len(ids) == len(set(ids)), "a test was reported twice"
    if mode == "none":
        for test_id in LEAKY:
            found.pop(test_id, None)
    assert found == expected(mode)


def report_text(event: dict) -> str:
    """All a finished test's report says: ``message`` is its first line, ``longrepr`` the rest."""
    return f"{event['message']}\n{event.get('longrepr') or ''}"


def test_fatal_signals_are_named_with_faulthandlers_traceback(gauntlet):
    _, events, _ = gauntlet
    by_id = finished(events)
    for name, number in (("segv", 11), ("abrt", 6), ("bus", 7), ("fpe", 8)):
        message = report_text(by_id[f"tests/test_signals.py::test_{name}"])
        assert f"signal {number} (SIG{name.upper()})" in message
        assert "Fatal Python error" in message
        assert 'test_signals.py", line' in message
    assert "signal 9 (SIGKILL)" in by_id["tests/test_signals.py::test_kill"]["message"]
    assert "signal 15 (SIGTERM)" in by_id["tests/test_signals.py::test_term"]["message"]


def test_exit_statuses_are_reported(gauntlet):
    _, events, _ = gauntlet
    by_id = finished(events)
    for code in (0, 1, 3, 120):
        message = by_id[f"tests/test_exits.py::test_os_exit[{code}]"]["message"]
        assert f"status {code}" in message
    assert "SystemExit: 4" in report_text(by_id["tests/test_exits.py::test_sys_exit"])
    assert "KeyboardInterrupt" in report_text(by_id["tests/test_exits.py::test_keyboard_interrupt"])


@pytest.mark.parametrize(
    ("name", "frame"),
    [
        ("python_loop", "in test_python_loop"),
        ("other_thread", "in spin"),
        ("sleep", "in test_sleep"),
        ("socket_recv", "in test_socket_recv"),
        ("pipe_read", "in test_pipe_read"),
        ("setup_hang", "in hangs_in_setup"),
        ("teardown_hang", "in hangs_in_teardown"),
    ],
)
def test_hangs_time_out_with_every_threads_stack(gauntlet, name, frame):
    _, events, _ = gauntlet
    event = finished(events)[f"tests/test_hangs.py::test_{name}"]
    assert event["message"].startswith("Timeout after 1 s")
    message = report_text(event)
    assert frame in message  # faulthandler's dump of the hung process, all threads
    if name == "other_thread":
        assert "in join" in message  # the main thread waits for the other one


def test_a_fixture_crash_is_blamed_on_its_test_and_phase(gauntlet):
    _, events, _ = gauntlet
    by_id = finished(events)
    setup = by_id["tests/test_fixture_crash.py::test_setup_crash"]
    assert setup["when"] == "setup" and "status 7" in setup["message"]
    teardown = by_id["tests/test_fixture_crash.py::test_teardown_crash"]
    assert teardown["when"] == "teardown" and "SIGSEGV" in teardown["message"]


def test_a_module_fixture_crash_is_blamed_as_pytest_would(gauntlet):
    _, events, _ = gauntlet
    by_id = finished(events)
    for name in ("test_m1", "test_m2"):
        assert "status 12" in by_id[f"tests/test_module_fixture_setup_crash.py::{name}"]["message"]
    last = by_id["tests/test_module_fixture_teardown_crash.py::test_last"]
    assert "status 13" in last["message"]


def test_floods_are_cut_in_the_middle(gauntlet):
    mode, events, _ = gauntlet
    by_id = finished(events)
    failed = by_id["tests/test_flood.py::test_flood_fails"]
    assert failed["stdout"].startswith("FLOOD-HEAD") and failed["stdout"].endswith("FLOOD-TAIL\n")
    assert "characters dropped" in failed["stdout"]
    assert len(failed["stdout"]) < 2 << 20
    assert len(by_id["tests/test_flood.py::test_flood_passes"]["stdout"]) < 2 << 20
    crashed = report_text(by_id["tests/test_flood.py::test_flood_then_crash"])
    assert "status 9" in crashed
    if mode != "none":  # the worker read the dead process's capture file: head and tail
        assert "CRASH-HEAD" in crashed and "CRASH-TAIL" in crashed
        assert re.search(r"\[\.\.\. \d+ bytes of output dropped \.\.\.\]", crashed)
        assert len(crashed) < 200_000


def test_a_daemon_left_behind_is_ended_and_named(gauntlet):
    _, events, _ = gauntlet
    warnings = [e["message"] for e in events if e["event"] == "warning"]
    daemons = [w for w in warnings if "gauntlet-daemon" in w]
    assert daemons, warnings
    pid = int(re.search(r"process (\d+)", daemons[0]).group(1))
    assert not Path(f"/proc/{pid}").exists() or _is_zombie_of_someone_else(pid)


def _is_zombie_of_someone_else(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    return b"gauntlet-daemon" not in cmdline or stat.rsplit(")", 1)[1].split()[0] == "Z"


def test_run_summary_counts_every_outcome_once(gauntlet):
    _, events, _ = gauntlet
    summary = next(e for e in events if e["event"] == "run_finished")
    statuses = [e["status"] for e in events if e["event"] == "test_finished"]
    assert summary["passed"] == statuses.count("pass")
    assert summary["failed"] == statuses.count("fail")
    assert summary["errors"] == statuses.count("error") + 2  # two collection errors


@pytest.mark.parametrize("mode", MODES)
def test_a_conftest_that_raises_gives_pytests_message_and_exit_code(tmp_path, mode):
    import subprocess
    import sys

    project = copy_project("conftest_raises", tmp_path)
    pytest_run = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTEST_ADDOPTS": ""},
    )
    _, result = run_tach(project, "--isolation", mode)
    assert result.returncode == pytest_run.returncode == 4
    assert "the root conftest raises at import" in result.stdout + result.stderr
    assert "ImportError while loading conftest" in result.stdout + result.stderr


@pytest.mark.parametrize("mode", MODES)
def test_pytest_timeout_installed_is_silenced_and_its_setting_enforced(tmp_path, mode):
    project = copy_project("pytest_timeout", tmp_path)
    events, result = run_tach(
        project, "--isolation", mode, "-n", "1", env={"PYTHONPATH": str(project)}
    )
    assert outcomes(events) == {
        "tests/test_timeouts.py::test_quick": "pass:call",
        "tests/test_timeouts.py::test_hangs_past_the_ini_timeout": "fail:call",
        "tests/test_timeouts.py::test_mark_zero_means_no_limit": "pass:call",
    }, result.stdout[-3000:] + result.stderr[-3000:]
    message = finished(events)["tests/test_timeouts.py::test_hangs_past_the_ini_timeout"]
    assert message["message"].startswith("Timeout after 1 s")
