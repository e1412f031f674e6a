"""pytest-benchmark: every process's benchmarks in the zygote's one table and JSON file.

pytest-benchmark keeps the run's results in the ``BenchmarkSession`` its ``pytest_configure``
puts on ``config._benchmarksession``: the ``benchmark`` fixture appends each test's statistics
to its ``benchmarks`` list, and at the end of the session ``finish`` writes ``--benchmark-json``
and ``--benchmark-save``/``--benchmark-autosave`` from that list and groups it for the table
its ``pytest_terminal_summary`` prints. Under pytest-xdist it disables benchmarks altogether.
Tach's zygote made the session as pytest's own process would (so benchmarks run), but its
tests run in workers (``--isolation none``) or in the test processes they fork: the zygote's
list stays empty, and a worker's session finish would write a JSON file of its own share.

So a worker does not finish the benchmark session (no file written, no table), and each
process that ran tests hands its results over to the zygote (a test process before it ends, a
worker when its session ends); the zygote puts them in its list before pytest-benchmark's
session finish, which then writes the files and the table over the whole run, once. A result
travels as the plugin's ``Metadata`` less what belongs to the process (the fixture, reduced to
whether it failed; a cProfile result, reduced to its table). What the plugin's logger says as
the zygote finishes (``Wrote benchmark data in: FILE``) goes to the terminal reporter, whose
text the supervisor prints, instead of the zygote's stderr.
"""

from __future__ import annotations

import json
import pickle
import types
from typing import Any

import pytest

from tach.adapters import handoff


class BenchmarkAdapter:
    """Hands each process's benchmarks to the zygote's session (module docstring)."""

    plugin = "benchmark"

    def worker_started(self, plugin: Any, config: pytest.Config) -> None:
        session = getattr(config, "_benchmarksession", None)
        if session is not None:
            # The zygote writes the files and the table, over every process's results.
            session.finish = _nothing

    def process_ending(self, plugin: Any, config: pytest.Config) -> None:
        _hand_over(config)

    def worker_ending(self, plugin: Any, config: pytest.Config) -> None:
        _hand_over(config)

    def session_finishing(self, plugin: Any, config: pytest.Config) -> None:
        session = getattr(config, "_benchmarksession", None)
        if session is None:
            return
        for benchmarks in handoff.taken_over(config, "benchmark"):
            session.benchmarks.extend(benchmarks)
        # What the plugin says as it finishes ("Wrote benchmark data in: FILE") goes to the
        # zygote's stderr, which no one reads: to the terminal reporter, which the supervisor
        # prints at the end, where pytest's stderr would have shown it.
        reporter = config.pluginmanager.get_plugin("terminalreporter")
        writer = getattr(reporter, "_tw", None)
        logger = getattr(session, "logger", None)
        if writer is not None and hasattr(logger, "term"):
            logger.term = writer


def _nothing() -> None:
    return None


def _hand_over(config: pytest.Config) -> None:
    session = getattr(config, "_benchmarksession", None)
    if session is None or not session.benchmarks:
        return
    handoff.hand_over(config, "benchmark", [portable(bench) for bench in session.benchmarks])
    session.benchmarks.clear()


def portable(bench: Any) -> Any:
    """A copy of a ``Metadata`` that pickles: its fixture reduced to ``has_error`` (all the
    session reads of it), a cProfile result to its ``stats`` table, and parameters or extra
    information that do not pickle to what the JSON file would hold of them."""
    copy = object.__new__(type(bench))
    copy.__dict__.update(bench.__dict__)
    copy.fixture = types.SimpleNamespace(has_error=bool(getattr(bench, "has_error", False)))
    profile = getattr(bench, "cprofile_stats", None)
    if profile is not None:
        copy.cprofile_stats = types.SimpleNamespace(stats=dict(getattr(profile, "stats", {})))
    for name in ("params", "extra_info", "options"):
        value = getattr(copy, name, None)
        try:
            pickle.dumps(value)
        except Exception:
            setattr(copy, name, _as_json(value))
    return copy


def _as_json(value: Any) -> Any:
    """``value`` as pytest-benchmark's JSON encoder writes it (``repr`` of what JSON cannot
    hold)."""
    try:
        from pytest_benchmark.utils import safe_dumps
    except ImportError:  # another version: plain JSON, with the same fallback
        return json.loads(json.dumps(value, default=repr))
    return json.loads(safe_dumps(value))
