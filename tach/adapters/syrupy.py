"""syrupy: snapshots written by the processes that ran their tests, judged once over the run.

syrupy's ``SnapshotSession`` (``config._syrupy``, made by its ``pytest_sessionstart``, so in the
zygote) records what a session collects and selects, which tests ran and how, the snapshot
assertions made and the snapshot writes queued (amber files are written at the session's end);
its ``finish`` writes the queued snapshots and builds the report that counts snapshots and
finds the unused ones, which fail a run or, under ``--snapshot-update``, are deleted. Under
pytest-xdist a worker's ``finish`` writes its snapshots (under a file lock) and publishes its
report on ``config.workeroutput``; the controller merges the reports (``add_worker_report``)
before its own ``finish`` judges unused snapshots.

Tach's workers are xdist workers to syrupy (``PYTEST_XDIST_WORKER``), and their session finish
does what an xdist worker's does; here the worker then hands its report to the zygote. A test
process (``--isolation module`` and ``test``) runs tests but never finishes a session: before it
ends it finishes the snapshot session itself (its queued writes reach the files) and hands its
report over too, trimmed to the tests it ran (the worker's report has every collected and
selected test; a test process's report would repeat them all). The zygote adds the reports to
its session before syrupy's ``pytest_sessionfinish``, with two corrections for Tach:

* xdist's controller keeps the collected tests of the first report, as every xdist worker
  collects the whole suite; a Tach worker collects only its units, so the collected tests of
  every report are merged into the first.
* A selected test no report says ran (its process died, or the run stopped before it) counts as
  skipped: its snapshots are kept, not reported unused or deleted for want of a use.

The lock files the workers' writes leave beside amber files are removed by the zygote (xdist's
controller removes them; the zygote is no xdist controller to syrupy, so it would not). Unused
snapshots fail the run as they fail pytest's: syrupy sets the session's exit status, which the
zygote hands on to the supervisor.
"""

from __future__ import annotations

from typing import Any

import pytest

from tach.adapters import handoff

#: How an item's status says "not run" in syrupy's serialised report (``ItemStatus.NOT_RUN``).
NOT_RUN = False


class SyrupyAdapter:
    """Hands each process's snapshot report to the zygote's session (module docstring)."""

    plugin = "syrupy"

    def process_ending(self, plugin: Any, config: pytest.Config) -> None:
        session = _session(config)
        if session is None:
            return
        selected = session._selected_items
        ran = {nodeid for nodeid, status in selected.items() if status.value is not NOT_RUN}
        if not ran and not session._assertions and not session._queued_snapshot_writes:
            return  # no test of this process got as far as a report
        # The worker's report lists every test it collected and selected.
        session._selected_items = {nodeid: selected[nodeid] for nodeid in ran}
        session._collected_items = {
            nodeid: item for nodeid, item in session._collected_items.items() if nodeid in ran
        }
        session.finish()  # writes the queued snapshots; publishes the report on workeroutput
        _hand_over(config)

    def worker_ending(self, plugin: Any, config: pytest.Config) -> None:
        if _session(config) is not None:
            _hand_over(config)  # syrupy's session finish in the worker published its report

    def session_finishing(self, plugin: Any, config: pytest.Config) -> None:
        session = _session(config)
        if session is None:
            return
        from syrupy.utils import (
            cleanup_snapshot_write_sidecars,
            compress_json,
            decompress_json,
        )

        reports: list[dict[str, Any]] = []
        written: set[str] = set()
        for handed in handoff.taken_over(config, "syrupy"):
            if handed.get("report") is not None:
                reports.append(handed["report"])
            written.update(handed.get("written") or ())
        # Every worker has finished writing: the lock files its writes left can go.
        cleanup_snapshot_write_sidecars(*written)
        if not reports:
            return
        collected: dict[str, dict[str, str]] = {}
        statuses: dict[str, Any] = {}
        for report in reports:
            items = report.pop("collected", None)
            if isinstance(items, bytes):
                items = decompress_json(items)
            for item in items or ():
                collected.setdefault(item["nodeid"], item)
            for nodeid, status in report.get("selected", {}).items():
                if statuses.get(nodeid, NOT_RUN) is NOT_RUN:
                    statuses[nodeid] = status
        reports[0]["collected"] = compress_json(list(collected.values()))
        never_ran = {nodeid for nodeid, status in statuses.items() if status is NOT_RUN}
        reports[0]["selected"] = {
            **reports[0].get("selected", {}),
            **dict.fromkeys(never_ran, "skipped"),
        }
        for report in reports:
            session.add_worker_report(report)


def _session(config: pytest.Config) -> Any:
    """syrupy's session, if this version of syrupy publishes worker reports as 7.0 does."""
    session = getattr(config, "_syrupy", None)
    if session is None or not hasattr(session, "add_worker_report"):
        return None
    for name in ("_selected_items", "_collected_items", "_assertions", "_queued_snapshot_writes"):
        if not hasattr(session, name):
            return None
    return session


def _hand_over(config: pytest.Config) -> None:
    output = getattr(config, "workeroutput", None) or {}
    report = output.pop("syrupy_report", None)
    written = output.pop("syrupy_write_sidecars", None) or []
    if report is not None or written:
        handoff.hand_over(config, "syrupy", {"report": report, "written": list(written)})
