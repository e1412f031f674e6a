"""A Python thread started at import in the zygote is named in a warning; C threads are not.

Workers are forked from the zygote, and a fork copies only the forking thread. A Python thread a
conftest starts at import is therefore missing from every worker (and a lock it held stays
held): Tach warns, naming it. numpy starts a C thread pool (OpenBLAS) at import, which stops
itself around a fork; warning of such threads warned every numpy user of a hazard they do not
have. ``pthread_create`` through ctypes starts the same kind of thread here, without numpy.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ._run import outcomes, run_tach

PYTHON_THREAD = """
import threading

stop = threading.Event()
threading.Thread(target=stop.wait, name="conftest-poller", daemon=True).start()
"""

C_THREAD = """
import ctypes
import ctypes.util

libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
thread = ctypes.c_ulong()
# a thread with no Python state, blocked in pause() for good, as a C library's pool would be
assert libc.pthread_create(
    ctypes.byref(thread), None, ctypes.cast(libc.pause, ctypes.c_void_p), None
) == 0
"""


def project(where: Path, conftest: str) -> Path:
    (where / "conftest.py").write_text(conftest)
    (where / "test_one.py").write_text("def test_one():\n    pass\n")
    return where


def zygote_warnings(events: list[dict]) -> list[str]:
    return [e["message"] for e in events if e["event"] == "warning" and "zygote" in e["message"]]


@pytest.mark.parametrize("mode", ["none", "module"])
def test_a_python_thread_started_at_import_is_named(tmp_path, mode):
    events, result = run_tach(project(tmp_path, PYTHON_THREAD), "--isolation", mode, "-n", "1")
    assert result.returncode == 0, result.stderr
    assert outcomes(events) == {"test_one.py::test_one": "pass"}
    [message] = zygote_warnings(events)
    assert "conftest-poller" in message
    assert "Start the thread in a fixture" in message


def test_a_thread_without_python_state_is_not_warned_of(tmp_path):
    events, result = run_tach(project(tmp_path, C_THREAD), "-n", "1")
    assert result.returncode == 0, result.stderr
    assert outcomes(events) == {"test_one.py::test_one": "pass"}
    assert zygote_warnings(events) == []
