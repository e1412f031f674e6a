"""What every test of the ``gauntlet`` project must come out as, in every isolation mode."""

from __future__ import annotations

T = "tests/"

EXPECTED: dict[str, str] = {
    # fatal signals
    f"{T}test_signals.py::test_before": "pass:call",
    **{
        f"{T}test_signals.py::test_{name}": "fail:call"
        for name in ("segv", "abrt", "bus", "fpe", "kill", "term")
    },
    f"{T}test_signals.py::test_after": "pass:call",
    # exits
    f"{T}test_exits.py::test_before": "pass:call",
    **{f"{T}test_exits.py::test_os_exit[{code}]": "fail:call" for code in (0, 1, 3, 120)},
    f"{T}test_exits.py::test_sys_exit": "fail:call",
    f"{T}test_exits.py::test_keyboard_interrupt": "fail:call",
    f"{T}test_exits.py::test_closes_stdout_and_stderr": "pass:call",  # as in pytest
    f"{T}test_exits.py::test_after": "pass:call",
    # hangs (timeout mark: 1 s)
    f"{T}test_hangs.py::test_before": "pass:call",
    **{
        f"{T}test_hangs.py::test_{name}": "fail:call"
        for name in ("python_loop", "other_thread", "sleep", "socket_recv", "pipe_read")
    },
    f"{T}test_hangs.py::test_setup_hang": "error:setup",
    f"{T}test_hangs.py::test_teardown_hang": "error:teardown",
    f"{T}test_hangs.py::test_after": "pass:call",
    # fixtures that crash
    f"{T}test_fixture_crash.py::test_before": "pass:call",
    f"{T}test_fixture_crash.py::test_setup_crash": "error:setup",
    f"{T}test_fixture_crash.py::test_teardown_crash": "error:teardown",
    f"{T}test_fixture_crash.py::test_after": "pass:call",
    # a module-scoped fixture that dies in setup (every test using it) or in teardown (the last)
    f"{T}test_module_fixture_setup_crash.py::test_before": "pass:call",
    f"{T}test_module_fixture_setup_crash.py::test_m1": "error:setup",
    f"{T}test_module_fixture_setup_crash.py::test_m2": "error:setup",
    f"{T}test_module_fixture_setup_crash.py::test_after": "pass:call",
    f"{T}test_module_fixture_teardown_crash.py::test_first": "pass:call",
    f"{T}test_module_fixture_teardown_crash.py::test_last": "error:teardown",
    # floods
    f"{T}test_flood.py::test_before": "pass:call",
    f"{T}test_flood.py::test_flood_passes": "pass:call",
    f"{T}test_flood.py::test_flood_fails": "fail:call",
    f"{T}test_flood.py::test_flood_then_crash": "fail:call",
    f"{T}test_flood.py::test_after": "pass:call",
    # processes and the working directory
    f"{T}test_process.py::test_before": "pass:call",
    f"{T}test_process.py::test_forks_and_returns": "pass:call",
    f"{T}test_process.py::test_deletes_its_cwd": "pass:call",
    f"{T}test_process.py::test_leaves_a_daemon": "pass:call",
    f"{T}test_process.py::test_after": "pass:call",
    # state that must not leak into other units (not in isolation "none", where pytest leaks it)
    f"{T}test_env_set.py::test_sets_env_and_sys_path": "pass:call",
    f"{T}test_env_check.py::test_env_and_sys_path_are_clean": "pass:call",
    # twenty tests racing for one port
    **{f"{T}test_port.py::test_race_for_one_port[{n}]": "pass:call" for n in range(20)},
    # a fixture cycle, a syntax error, a conftest that raises
    f"{T}test_cycle.py::test_cycle": "error:setup",
    f"{T}test_cycle.py::test_after": "pass:call",
    f"{T}test_syntax.py": "collect_error",
    f"{T}broken_conftest": "collect_error",
}

#: Tests whose outcome depends on the order of units in isolation ``none``.
LEAKY = {f"{T}test_env_check.py::test_env_and_sys_path_are_clean"}


def expected(mode: str) -> dict[str, str]:
    """The expected outcomes; in ``none`` the leak check may see another unit's changes."""
    return {k: v for k, v in EXPECTED.items() if not (mode == "none" and k in LEAKY)}
