"""A test process that dies is a failure of exactly that test; the rest of its unit runs."""

from __future__ import annotations

import pytest

from ._run import MODES, outcomes, run_tach


@pytest.mark.parametrize("isolation", MODES)
@pytest.mark.parametrize("project", ["run_crash"], indirect=True)
def test_crashes_are_results_of_the_test_that_crashed(project, isolation):
    events, result = run_tach(
        project, "--isolation", isolation, "-n", "1", "-p", "no:cacheprovider"
    )
    assert result.returncode == 1, result.stderr
    assert outcomes(events) == {
        "tests/test_crash.py::test_before": "pass",
        "tests/test_crash.py::test_segfault": "fail",
        "tests/test_crash.py::test_exit": "fail",
        "tests/test_crash.py::test_after": "pass",
    }
    finished = {e["id"]: e for e in events if e["event"] == "test_finished"}
    segfault = finished["tests/test_crash.py::test_segfault"]
    assert "SIGSEGV" in segfault["message"] and segfault["when"] == "call"
    assert "status 3" in finished["tests/test_crash.py::test_exit"]["message"]
    assert segfault["message"] in segfault["longrepr"]
    crashes = {e["id"]: e for e in events if e["event"] == "worker_crash"}
    assert set(crashes) == {"tests/test_crash.py::test_segfault", "tests/test_crash.py::test_exit"}
    assert crashes["tests/test_crash.py::test_segfault"]["phase"] == "call"
    # The test process's own output (the worker itself with isolation none): faulthandler's
    # traceback.
    assert "Fatal Python error: Segmentation fault" in segfault["longrepr"]
    assert 'test_crash.py", line 10 in test_segfault' in segfault["longrepr"]
