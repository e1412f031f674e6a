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
* ``run_last(plugin, config, paths)``: in the zygote, once the test modules are imported: those
  of ``paths`` (units' paths) whose units must be handed out after the others (an order the
  plugin gives the whole session).
* ``before_workers(plugin, config)``: in the zygote, once the test modules are imported and
  before the first fork: fill a cache every process would otherwise fill on its own.
* ``before_fork(plugin, config)``: in a worker, before it forks a test process.
* ``rerun_after_crash(plugin, item)``: in a worker whose test process died while running
  ``item``: True to report the crash as a rerun and run the test again in a new process.
* ``prime_also(plugin, item)`` and ``never_prime(plugin, item)``: fixture names a worker sets up
  for ``item`` before forking its test process, beyond the item's own wider fixtures (one the
  plugin requests from inside the test), and names it must leave to the test process (a
  fixture that starts a thread, which a fork does not carry).
* ``worker_ending(plugin, config)``: in a worker, once the plugins' ``pytest_sessionfinish`` ran
  there (the worker's session is over; what it holds is about to be lost).
* ``session_finishing(plugin, config)``: in the zygote, once every worker has ended and before
  the plugins' ``pytest_sessionfinish`` (which writes their reports: a benchmark JSON file, an
  HTML report, the snapshots left unused): take in what the workers handed over.

The last two are called from a hook wrapper around ``pytest_sessionfinish`` that
:func:`before_configure` registers when an active adapter has either. What a worker or a test
process holds reaches the zygote as files (xdist's ``workeroutput`` has no channel here): the
zygote makes a *hand-over directory* before it forks (:func:`handoff_directory`), a process
writes into it with :func:`hand_over` (each call its own file, renamed into place whole, or
:func:`hand_over_stream` for records appended as they come), and the zygote reads them back with
:func:`taken_over` before the plugins' session finish; it removes the directory at its end.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest

from tach.adapters.benchmark import BenchmarkAdapter
from tach.adapters.coverage import CoverageAdapter
from tach.adapters.django import DjangoAdapter
from tach.adapters.handoff import HANDOFF_KEY
from tach.adapters.html import HtmlAdapter
from tach.adapters.pytester import PytesterAdapter
from tach.adapters.rerunfailures import RerunFailuresAdapter
from tach.adapters.syrupy import SyrupyAdapter

ADAPTERS: tuple[Any, ...] = (
    BenchmarkAdapter(),
    CoverageAdapter(),
    DjangoAdapter(),
    HtmlAdapter(),
    PytesterAdapter(),
    RerunFailuresAdapter(),
    SyrupyAdapter(),
)


#: The active adapters with a method, per method (plugins are all registered by the time a
#: worker asks: from the zygote's ``pytest_configure`` on).
_ACTIVE_KEY = pytest.StashKey[dict[str, list[tuple[Any, Any]]]]()


def _active(config: pytest.Config, method: str) -> list[tuple[Any, Any]]:
    manager = config.pluginmanager
    found = []
    for adapter in ADAPTERS:
        plugin = manager.get_plugin(adapter.plugin)
        if plugin is not None and hasattr(adapter, method):
            found.append((adapter, plugin))
    return found


def _active_in_worker(config: pytest.Config, method: str) -> list[tuple[Any, Any]]:
    """:func:`_active`, remembered: asked for every test (or test process). Only from a worker
    on: the zygote still loads conftests, which may register plugins."""
    cache = config.stash.setdefault(_ACTIVE_KEY, {})
    if method not in cache:
        cache[method] = _active(config, method)
    return cache[method]


def before_fork(config: pytest.Config) -> None:
    """In a worker about to fork a test process: each active plugin's adapter prepares."""
    for adapter, plugin in _active_in_worker(config, "before_fork"):
        adapter.before_fork(plugin, config)


def rerun_after_crash(config: pytest.Config, item: pytest.Item) -> bool:
    """In a worker whose test process died running ``item``: whether a plugin reruns it."""
    return any(
        adapter.rerun_after_crash(plugin, item)
        for adapter, plugin in _active_in_worker(config, "rerun_after_crash")
    )


def priming(config: pytest.Config, item: pytest.Item) -> tuple[list[str], set[str]]:
    """The fixtures a worker also sets up for ``item`` before the fork, and those it must not
    (see the module docstring)."""
    also: list[str] = []
    never: set[str] = set()
    for adapter, plugin in _active_in_worker(config, "prime_also"):
        also.extend(adapter.prime_also(plugin, item))
    for adapter, plugin in _active_in_worker(config, "never_prime"):
        never.update(adapter.never_prime(plugin, item))
    return also, never


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
    """In the zygote, before ``pytest_configure``: each active plugin's adapter prepares it;
    the hand-over directory and the session-end hooks, if an active adapter uses them."""
    for adapter, plugin in _active(config, "before_configure"):
        adapter.before_configure(plugin, config)
    if _active(config, "session_finishing") or _active(config, "worker_ending"):
        directory = Path(tempfile.mkdtemp(prefix="tach-handoff-"))
        atexit.register(shutil.rmtree, directory, True)  # a run that ends before its session
        config.stash[HANDOFF_KEY] = directory
        config.pluginmanager.register(SessionEnd(directory), "tach-adapters-session-end")


def run_zygote_started(config: pytest.Config) -> None:
    """In a run zygote just forked from a session layer: this process is the zygote of the
    run. It gets a hand-over directory of its own (it removes it as its session ends, and the
    session layer's next run needs one too), and the session-end hooks take it for the zygote."""
    end = config.pluginmanager.get_plugin("tach-adapters-session-end")
    if not isinstance(end, SessionEnd):
        return
    shutil.rmtree(end.directory, ignore_errors=True)  # the session layer's: no run uses it
    directory = Path(tempfile.mkdtemp(prefix="tach-handoff-"))
    atexit.register(shutil.rmtree, directory, True)
    config.stash[HANDOFF_KEY] = directory
    end.directory = directory
    end.zygote_pid = os.getpid()


def run_last(config: pytest.Config, paths: list[str]) -> list[str]:
    """In the zygote: the units' paths that active adapters want handed out last."""
    later: list[str] = []
    for adapter, plugin in _active(config, "run_last"):
        later.extend(p for p in adapter.run_last(plugin, config, paths) if p not in later)
    return later


def before_workers(config: pytest.Config) -> None:
    """In the zygote before the first fork: each active plugin's adapter fills its caches."""
    for adapter, plugin in _active(config, "before_workers"):
        adapter.before_workers(plugin, config)


def worker_started(config: pytest.Config) -> None:
    """In a worker just forked: each active plugin's adapter turns it into a worker."""
    for adapter, plugin in _active(config, "worker_started"):
        adapter.worker_started(plugin, config)


def process_ending(config: pytest.Config) -> None:
    """In a test process about to end: each active plugin's adapter saves what it must."""
    for adapter, plugin in _active_in_worker(config, "process_ending"):
        adapter.process_ending(plugin, config)


def worker_ending(config: pytest.Config) -> None:
    """In a worker whose session has finished: each active plugin's adapter hands over."""
    for adapter, plugin in _active(config, "worker_ending"):
        adapter.worker_ending(plugin, config)


def session_finishing(config: pytest.Config) -> None:
    """In the zygote, before the plugins' session finish: each adapter takes over."""
    for adapter, plugin in _active(config, "session_finishing"):
        adapter.session_finishing(plugin, config)


class SessionEnd:
    """Calls ``session_finishing`` before the plugins' ``pytest_sessionfinish`` in the zygote,
    and ``worker_ending`` after it in a worker; removes the hand-over directory at the end."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.zygote_pid = os.getpid()

    @pytest.hookimpl(wrapper=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> Any:
        config = session.config
        in_zygote = os.getpid() == self.zygote_pid
        if in_zygote:
            session_finishing(config)
        try:
            return (yield)
        finally:
            if in_zygote:
                shutil.rmtree(self.directory, ignore_errors=True)
            elif hasattr(config, "workerinput"):
                worker_ending(config)
