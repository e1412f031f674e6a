"""pytest-rerunfailures: reruns within the process that ran the test, and of a test whose
process died.

With pytest-xdist installed, the plugin's controller starts a TCP server on loopback, in a
thread, holding how often each test failed, so that xdist's controller can rerun a test whose
worker crashed (``pytest_handlecrashitem``). In Tach that controller would be the zygote, which
must have no thread when it forks: its ``pytest_configure`` is told xdist's crash hook is absent
before it runs, and a test reruns in the process that runs it, which counts its attempts itself
(the plugin's own ``StatusDB``, as without xdist).

A test whose test process dies is what xdist's crash hook is for: the worker that forked the
process asks :meth:`RerunFailuresAdapter.rerun_after_crash`, which grants a rerun while the
test has reruns left (its ``flaky`` mark or ``--reruns``), as the hook does; the worker then
reports the crash as a ``rerun`` and runs the test again in a new process. (A worker that dies
under ``--isolation none`` takes the test with it: that is reported as a crash.)
"""

from __future__ import annotations

from typing import Any

import pytest


class RerunFailuresAdapter:
    """Keeps pytest-rerunfailures' controller from starting its server, and reruns crashed
    tests (module docstring)."""

    plugin = "rerunfailures"

    def __init__(self) -> None:
        #: node id -> reruns granted after a crash, in this worker.
        self.crash_reruns: dict[str, int] = {}

    def before_configure(self, plugin: Any, config: pytest.Config) -> None:
        if hasattr(plugin, "HAS_PYTEST_HANDLECRASHITEM"):
            plugin.HAS_PYTEST_HANDLECRASHITEM = False

    def rerun_after_crash(self, plugin: Any, item: pytest.Item) -> bool:
        try:
            reruns = int(plugin.get_reruns_count(item) or 0)
        except Exception:  # another version of the plugin: no rerun, the crash is reported
            return False
        done = self.crash_reruns.get(item.nodeid, 0)
        if done >= reruns:
            return False
        self.crash_reruns[item.nodeid] = done + 1
        return True
