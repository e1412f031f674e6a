"""Timers: each slot's timeout, and the deadlines of the run as a whole.

Timeouts are the supervisor's. Each slot has at most one :class:`Timer`: armed by a
``TestStart`` for the test process (the test's ``timeout`` mark, else ``--timeout``), and,
with ``--timeout``, for the worker itself between tests (collection, priming of wider
fixtures, their teardown). When it expires the process is asked for its threads' stacks
(``faulthandler`` registered on :data:`DUMP_SIGNAL`, writing into the slot's output memfd),
then sent SIGTERM, then SIGKILL; the death is reported like a crash, as "Timeout after N s".

The run has two deadlines of its own: ``--session-timeout``, and the end of the workers' grace
period after an interrupt (:mod:`tach.lifecycle.signals`). The event loop sleeps until the
nearest of all of them (:meth:`Timers._next_deadline`), then checks them
(:meth:`Timers._check_deadlines`).
"""

from __future__ import annotations

import dataclasses
import math
import signal
import time
from typing import Any

from tach.lifecycle.processes import ZYGOTE_EXIT_GRACE_S, send_signal
from tach.lifecycle.state import RunState, Slot
from tach.results import TestResult

#: The signal on which test processes write every thread's stack (faulthandler).
DUMP_SIGNAL = signal.SIGRTMIN + 6
#: After the stack dump of a timed-out process: SIGTERM; after SIGTERM: SIGKILL.
DUMP_GRACE_S = 0.1
TERM_GRACE_S = 0.5


@dataclasses.dataclass
class Timer:
    """A deadline for the process a slot is waiting on, and how far ending it has gone."""

    deadline: float
    seconds: float
    #: The process to end: a test process, or the worker itself.
    pid: int
    #: The test it runs (``None``: the worker, between tests).
    result: TestResult | None
    #: 0 armed, 1 stacks requested, 2 SIGTERM sent, 3 SIGKILL sent, 4 worker killed.
    stage: int = 0
    #: While the test is in the debugger (``deadline`` is infinite): the seconds it had left.
    remaining: float = 0.0


class Timers(RunState):
    """Arming and checking deadlines, and ending the processes that overrun them."""

    @property
    def default_timeout(self) -> float:
        """``--timeout``, else pytest-timeout's own setting (read in the zygote)."""
        return self.spec.timeout or self.zygote_timeout

    def _arm(self, slot: Slot, seconds: float, pid: int, result: TestResult | None) -> None:
        """Give ``slot`` a deadline for ``pid`` (``seconds`` 0: none)."""
        if not seconds or seconds <= 0 or not pid:
            slot.timer = None
            return
        slot.timer = Timer(time.monotonic() + seconds, seconds, pid, result)

    def _next_deadline(self) -> float:
        deadlines = [slot.timer.deadline for slot in self.slots if slot.timer is not None]
        if self.spec.session_timeout and not self.aborted:
            deadlines.append(self.started_monotonic + self.spec.session_timeout)
        if self.abort_deadline is not None:
            deadlines.append(self.abort_deadline)
        return min(deadlines, default=math.inf)

    def _check_deadlines(self) -> None:
        now = time.monotonic()
        if self.abort_deadline is not None and now >= self.abort_deadline:
            self._kill_all()
            return
        if (
            self.spec.session_timeout
            and not self.aborted
            and now >= self.started_monotonic + self.spec.session_timeout
        ):
            self.interrupted = (
                f"Session timeout after {format_seconds(self.spec.session_timeout)} s"
            )
            self.aborted = True
            self.dropped.extend(self.queue.clear())
            self._kill_all()
            return
        for slot in self.slots:
            if slot.timer is not None and now >= slot.timer.deadline:
                self._drain(slot)  # the test may have finished in the meantime
                timer = slot.timer
                if timer is not None and time.monotonic() >= timer.deadline:
                    self._on_timer(slot, timer)

    def _on_timer(self, slot: Slot, timer: Timer) -> None:
        """One step of ending a process that overran: stacks, SIGTERM, SIGKILL."""
        pid = timer.pid
        if timer.stage == 0:
            if timer.result is not None:
                timer.result.timed_out = timer.seconds
            send_signal(pid, DUMP_SIGNAL, slot.worker_pid)
            timer.stage, timer.deadline = 1, time.monotonic() + DUMP_GRACE_S
        elif timer.stage == 1:
            send_signal(pid, signal.SIGTERM, slot.worker_pid)
            timer.stage, timer.deadline = 2, time.monotonic() + TERM_GRACE_S
        elif timer.stage == 2:
            send_signal(pid, signal.SIGKILL, slot.worker_pid)
            timer.stage, timer.deadline = 3, time.monotonic() + ZYGOTE_EXIT_GRACE_S
        elif timer.stage == 3 and pid != slot.worker_pid and slot.worker_pid:
            # The worker did not report its test process's death: it is stuck itself.
            send_signal(slot.worker_pid, signal.SIGKILL, slot.worker_pid)
            timer.stage, timer.deadline = 4, time.monotonic() + ZYGOTE_EXIT_GRACE_S
        else:
            slot.timer = None

    @staticmethod
    def _mark_timeout(report: dict[str, Any], seconds: float, when: str) -> None:
        """Turn a crash report of a process the supervisor ended into a timeout report."""
        head = f"Timeout after {format_seconds(seconds)} s (during {when})."
        for key in ("longrepr", "longreprtext", "longrepr_terminal"):
            if isinstance(report.get(key), str):
                report[key] = f"{head}\n{report[key]}"
        report["timeout"] = seconds


def format_seconds(seconds: float) -> str:
    """``2`` for 2.0, ``0.5`` for 0.5: how a timeout is quoted."""
    return f"{seconds:g}"
