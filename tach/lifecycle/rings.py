"""What the workers send through their result rings, and handing them units.

Each slot has a ring in shared memory that its worker and test processes write (collected units,
test starts, reports, warnings); the event loop drains it (:meth:`ResultRings._drain`), and each
message updates the run's results, counts and timers. A slot whose worker is free gets the next
unit of the queue (:meth:`ResultRings._dispatch`).

Tests are finalised (reported as finished) when the next test of their slot starts or their unit
finishes; the last test of a unit waits until its worker has moved on, because the teardown of
what the worker holds (package and session fixtures) is reported against it, as pytest reports it
against the last test of the session.
"""

from __future__ import annotations

import contextlib
import signal
import time
from typing import Any

from tach._native.ring import RingCorrupt
from tach.lifecycle.processes import send_signal
from tach.lifecycle.state import BAD_PAYLOAD, RunState, Slot
from tach.protocol import Message, MessageKind, ProtocolError, decode_one
from tach.results import TestResult, passed_phase_report


class ResultRings(RunState):
    """Handling what workers report, and finalising their tests."""

    def _drain(self, slot: Slot) -> int:
        """Handle every message waiting in ``slot``'s ring; return how many there were."""
        handled = 0
        while not slot.retired:
            try:
                batch = slot.ring.pop_many()
            except RingCorrupt as exc:
                worker = self._worker_name(slot)
                self._retire(slot, f"the result ring of {worker} is corrupt: {exc}")
                return handled
            if not batch:
                return handled
            handled += len(batch)
            for data in batch:
                try:
                    self._on_result(slot, decode_one(data))
                except ProtocolError as exc:
                    self.internal_errors.append(
                        f"{self._worker_name(slot)} sent a malformed message: {exc}"
                    )
                except BAD_PAYLOAD as exc:
                    self.internal_errors.append(
                        f"{self._worker_name(slot)} sent a message Tach cannot use "
                        f"({type(exc).__name__}: {exc})"
                    )
        return handled

    @staticmethod
    def _worker_name(slot: Slot) -> str:
        return f"worker {slot.worker_pid or '?'} (slot {slot.index})"

    def _retire(self, slot: Slot, why: str) -> None:
        """Give up on a slot whose channel cannot be trusted: end its worker, stop using it."""
        self.internal_errors.append(why)
        slot.retired = True
        with contextlib.suppress(KeyError, ValueError):
            self.selector.unregister(slot.ring.fileno())
        if slot.worker_pid:
            send_signal(slot.worker_pid, signal.SIGKILL, slot.worker_pid)
        slot.stopping = True

    def _on_result(self, slot: Slot, message: Message) -> None:
        kind, payload = message
        if kind is MessageKind.PhasePassed:
            self._on_report(slot, passed_phase_report(payload, slot.index))
        elif kind is MessageKind.TestReport:
            self._on_report(slot, payload["report"])
        elif kind is MessageKind.TestStart:
            self._on_test_start(slot, payload)
        elif kind is MessageKind.Warning:
            self.warnings.append(payload)
            self.stats.add("warnings", payload)
            self.reporter.on_warning(payload)
        elif kind is MessageKind.Record:
            self.reporter.on_record(payload)
        elif kind is MessageKind.TerminalText:
            self.reporter.on_terminal_text(payload)
        elif kind is MessageKind.UnitCollected:
            self._on_collected(slot, payload)
        elif kind is MessageKind.UnitFinished:
            self._on_unit_finished(slot)
        elif kind is MessageKind.WorkerReady:
            slot.worker_pid = checked_pid(payload["pid"])
            slot.ready = True
            self._dispatch(slot)
        elif kind is MessageKind.WorkerDone:
            self._release_held(slot)
            slot.done = True
            slot.timer = None

    def _on_collected(self, slot: Slot, payload: dict[str, Any]) -> None:
        assert slot.unit is not None
        slot.collecting.extend(payload["ids"])
        if not payload.get("final", True):
            return
        if payload.get("usage_error") and payload["usage_error"] not in self.usage_errors:
            self.usage_errors.append(payload["usage_error"])
        slot.unit_ids, slot.collecting = slot.collecting, []
        self.deselected += payload.get("deselected", 0)
        self.stats.collected += len(slot.unit_ids) + payload.get("deselected", 0)
        for _ in range(payload.get("deselected", 0)):
            self.stats.add("deselected", {})
        for report in payload["errors"]:
            self.collect_errors.append(report)
            category = "error" if report.get("outcome") == "failed" else "skipped"
            self.stats.add(category, report)
        results = self.results
        for test_id in slot.unit_ids:
            if test_id not in results:
                results[test_id] = TestResult(test_id, slot=slot.index)
        self.reporter.on_collected(slot.unit, slot.unit_ids, payload["errors"])
        if self.spec.maxfail and any(r.get("outcome") == "failed" for r in payload["errors"]):
            self._count_failure(len([r for r in payload["errors"] if r.get("outcome") == "failed"]))

    def _on_test_start(self, slot: Slot, payload: dict[str, Any]) -> None:
        checked_pid(payload["pid"])
        if not isinstance(payload["id"], str):
            raise TypeError(f"a test id must be a string, not {type(payload['id']).__name__}")
        marked = payload.get("timeout")
        if marked is not None and (isinstance(marked, bool) or not isinstance(marked, int | float)):
            raise TypeError(f"a timeout must be a number, not {type(marked).__name__}")
        if slot.current is not None:
            self._finalize(slot.current)
        result = self.results.get(payload["id"])
        if result is None:  # a test its unit's collection did not announce
            result = self.results[payload["id"]] = TestResult(payload["id"])
        result.slot, result.pid, result.started = slot.index, payload["pid"], time.perf_counter()
        slot.current = result
        slot.deaths = 0  # the worker reached a test: it is making progress
        self._arm(slot, self.default_timeout if marked is None else marked, result.pid, result)
        self.reporter.on_test_start(result)

    def _on_report(self, slot: Slot, report: dict[str, Any]) -> None:
        test_id = report.get("nodeid", "")
        result = self.results.get(test_id)
        if result is None:
            result = self.results[test_id] = TestResult(test_id, slot=slot.index)
        crash = report.get("crash")
        if crash and self.aborted:
            return  # a test process ended by the interrupt: the test did not run to the end
        if crash and result.timed_out:
            self._mark_timeout(report, result.timed_out, crash.get("phase", "call"))
        if result is slot.current and (crash or report.get("when") == "teardown"):
            # The test process is done with this test: the worker is on its own again.
            self._arm(slot, self.spec.timeout, slot.worker_pid, None)
        result.add(report)
        category = (report.get("teststatus") or [""])[0]
        self.stats.add(category, report)
        if report.get("outcome") == "failed":
            self._count_failure(1)
        self.reporter.on_report(result, report)
        if result.finished:  # a late teardown error of a test that was already reported
            self.reporter.on_test_finished(result)

    def _count_failure(self, count: int) -> None:
        self.failures += count
        if self.spec.maxfail and self.failures >= self.spec.maxfail and self.interrupted is None:
            self.interrupted = f"stopping after {self.failures} failures"
            self.queue.clear()
            for slot in self.slots:
                if slot.ready and slot.unit is None:
                    self._dispatch(slot)

    def _on_unit_finished(self, slot: Slot) -> None:
        self._release_held(slot)
        if slot.current is not None:
            slot.held = slot.current
            slot.current = None
        for test_id in slot.unit_ids:
            result = self.results.get(test_id)
            if result is not None and result is not slot.held and not result.finished:
                self._finalize(result)
        self._report_unit("unit_finished", slot)
        slot.unit, slot.unit_ids = None, []
        self._dispatch(slot)

    def _release_held(self, slot: Slot) -> None:
        if slot.held is not None:
            self._finalize(slot.held)
            slot.held = None

    def _finalize(self, result: TestResult) -> None:
        if result.finished:
            return
        result.finished = True
        if result.status is None:
            return  # collected but never started (deselected by -x, or its unit was dropped)
        if self.aborted and not self._complete(result) and not self._failed(result):
            result.status = None  # cut short by the interrupt: reported as not run
            return
        self.reporter.on_test_finished(result)

    @staticmethod
    def _failed(result: TestResult) -> bool:
        """Whether a test cut short by an interrupt had already failed: it was reported so
        (pytest's ``--pdb`` and a quit debugger, a Ctrl-C during its teardown), and keeps it."""
        return result.status in ("fail", "error")

    @staticmethod
    def _complete(result: TestResult) -> bool:
        """Whether a test ran to its end: a teardown report, or a report of its death."""
        return any(
            r.get("when") == "teardown" or r.get("crash") or r.get("lost") for r in result.reports
        )

    def _dispatch(self, slot: Slot) -> None:
        if slot.stopping or not slot.ready:
            return
        unit = self.queue.pop()
        if unit is None:
            slot.stopping = True
            # The worker tears down what it holds: bounded by the timeout too.
            self._arm(slot, self.spec.timeout, slot.worker_pid, None)
            with contextlib.suppress(OSError):
                slot.channel.send(MessageKind.StopWorker, {})
            return
        unit.attempts += 1
        slot.unit = unit
        self._arm(slot, self.spec.timeout, slot.worker_pid, None)
        slot.channel.send(
            MessageKind.RunUnit,
            {"unit": unit.id, "args": unit.args, "ignore": unit.ignore, "slice": unit.slice},
        )
        self._report_unit("unit_start", slot)


def checked_pid(pid: Any) -> int:
    """``pid`` if it is a process id (a positive int); ValueError otherwise."""
    if isinstance(pid, bool) or not isinstance(pid, int) or pid <= 0:
        raise ValueError(f"not a process id: {pid!r}")
    return pid
