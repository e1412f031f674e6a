"""What session-wide plugins need from Tach, one module per plugin.

pytest-xdist gives plugins that aggregate over a whole session (coverage, databases per
worker, seeds) a controller and workers: each worker is a pytest process configured *as* a
worker (``config.workerinput`` is set before ``pytest_configure``), and the plugins' xdist hooks
carry data between them. Tach's workers are forks of a zygote whose ``pytest_configure`` and
``pytest_sessionstart`` ran once, as a controller: a plugin chose its controller role there, and
every worker inherits that choice. So the zygote stays the controller (it runs the plugins'
session-finish and terminal-summary hooks once, at the end, over what the workers left), and an
adapter turns the inherited controller state into a worker's in each fork, as the plugin's own
worker role would have set it up (``docs/plugins.md``).

An adapter is a class with a ``plugin`` name (the name the plugin registers under in pytest's
plugin manager) and any of these methods, each called with the plugin object:

* ``before_configure(plugin, config)``: in the zygote, once pytest has parsed the command line
  and before ``pytest_configure``.
* ``worker_started(plugin, config)``: in a worker, right after the fork.
* ``process_ending(plugin, config)``: in a test process that a worker forked, before it ends
  (with ``os._exit``, which runs no exit handler).
"""

from __future__ import annotations

import os
from typing import Any, Protocol

import pytest

from tach.adapters.coverage import CoverageAdapter
from tach.adapters.django import DjangoAdapter
from tach.adapters.rerunfailures import RerunFailuresAdapter


class Adapter(Protocol):
    """See the module docstring."""

    plugin: str


ADAPTERS: tuple[Any, ...] = (CoverageAdapter(), DjangoAdapter(), RerunFailuresAdapter())


def _active(config: pytest.Config, method: str) -> list[tuple[Any, Any]]:
    manager = config.pluginmanager
    found = []
    for adapter in ADAPTERS:
        plugin = manager.get_plugin(adapter.plugin)
        if plugin is not None and hasattr(adapter, method):
            found.append((adapter, plugin))
    return found


def worker_identity(config: pytest.Config, slot: int, workers: int, run_id: str) -> None:
    """Make a worker look like pytest-xdist's worker ``gw<slot>``: ``config.workerinput``
    (xdist's ``worker_id`` and ``testrun_uid`` fixtures and plugins such as pytest-django read
    it), ``config.workeroutput``, and the ``PYTEST_XDIST_*`` variables that suites read to give
    each worker its own port, database or directory."""
    worker_id = f"gw{slot}"
    config.workerinput = {  # type: ignore[attr-defined]
        "workerid": worker_id,
        "workercount": workers,
        "testrunuid": run_id,
        "mainargv": list(config.invocation_params.args),
    }
    config.workeroutput = {}  # type: ignore[attr-defined]
    os.environ["PYTEST_XDIST_WORKER"] = worker_id
    os.environ["PYTEST_XDIST_WORKER_COUNT"] = str(workers)
    os.environ["PYTEST_XDIST_TESTRUNUID"] = run_id


def before_configure(config: pytest.Config) -> None:
    """In the zygote, before ``pytest_configure``: each active plugin's adapter prepares it."""
    for adapter, plugin in _active(config, "before_configure"):
        adapter.before_configure(plugin, config)


def worker_started(config: pytest.Config) -> None:
    """In a worker just forked: each active plugin's adapter turns it into a worker."""
    for adapter, plugin in _active(config, "worker_started"):
        adapter.worker_started(plugin, config)


def process_ending(config: pytest.Config) -> None:
    """In a test process about to end: each active plugin's adapter saves what it must."""
    for adapter, plugin in _active(config, "process_ending"):
        adapter.process_ending(plugin, config)
