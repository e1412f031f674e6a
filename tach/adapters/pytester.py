"""pytester: a pytest run inside a test is not one of Tach's workers.

A worker has ``PYTEST_XDIST_WORKER`` and its siblings in its environment, as pytest-xdist's
workers do, for the suite's own tests to read. A test that runs pytest itself (``pytester``,
in process or in a subprocess, as plugins test themselves) would hand them on to that inner
session, whose plugins would then take the role of an xdist worker (syrupy, for one, then writes
no report). The inner session is a session of its own, as under a serial pytest: each
``Pytester`` takes the variables out of the environment it sets up, and its monkeypatch puts
them back when the test ends.
"""

from __future__ import annotations

import functools
from typing import Any

import pytest

#: The variables pytest-xdist sets in its workers.
XDIST_VARIABLES = ("PYTEST_XDIST_WORKER", "PYTEST_XDIST_WORKER_COUNT", "PYTEST_XDIST_TESTRUNUID")


class PytesterAdapter:
    """Keeps the worker's xdist variables out of pytester's runs (module docstring)."""

    plugin = "pytester"

    def worker_started(self, plugin: Any, config: pytest.Config) -> None:
        pytester_class = getattr(plugin, "Pytester", None)
        if pytester_class is None or getattr(pytester_class, "_tach_wrapped", False):
            return
        original = pytester_class.__init__

        @functools.wraps(original)
        def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
            original(self, *args, **kwargs)
            monkeypatch = getattr(self, "_monkeypatch", None)
            if monkeypatch is not None:
                for name in XDIST_VARIABLES:
                    monkeypatch.delenv(name, raising=False)

        pytester_class.__init__ = __init__
        pytester_class._tach_wrapped = True
