"""pytest-rerunfailures: reruns within the process that ran the test.

With pytest-xdist installed, the plugin's controller starts a TCP server on loopback, in a
thread, holding how often each test failed, so that xdist's controller can rerun a test whose
worker crashed (``pytest_handlecrashitem``). In Tach that controller would be the zygote, which
must have no thread when it forks, and Tach does not call xdist's crash hook: a test reruns in
the process that runs it, which counts its attempts itself (the plugin's own ``StatusDB``, as
without xdist). Its ``pytest_configure`` is told xdist's crash hook is absent before it runs.
"""

from __future__ import annotations

from typing import Any

import pytest


class RerunFailuresAdapter:
    """Keeps pytest-rerunfailures' controller from starting its server (module docstring)."""

    plugin = "rerunfailures"

    def before_configure(self, plugin: Any, config: pytest.Config) -> None:
        if hasattr(plugin, "HAS_PYTEST_HANDLECRASHITEM"):
            plugin.HAS_PYTEST_HANDLECRASHITEM = False
