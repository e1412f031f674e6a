"""Signals and interrupts: what stops a run before its tests are done.

SIGINT, SIGTERM and SIGHUP once stop scheduling, interrupt the running tests (SIGINT:
``KeyboardInterrupt``, their teardown runs) and wait :data:`INTERRUPT_GRACE_S` for the workers
to finish; a second signal, or the end of the grace period, kills everything.
``--session-timeout`` (:mod:`tach.lifecycle.timers`) ends the run the same way at once. Tests
that did not run to the end are reported as not run, and the exit code is 2.

A handler only notes its signal: ``signal.set_wakeup_fd`` wakes the event loop, which acts on it
between two events.
"""

from __future__ import annotations

import contextlib
import selectors
import signal
import socket
import time
from collections.abc import Callable
from typing import Any

from tach.lifecycle.processes import end_zygote, send_signal
from tach.lifecycle.state import RunState
from tach.protocol import MessageKind

#: How long the workers may take to finish (tear down) after an interrupt.
INTERRUPT_GRACE_S = 5.0
#: Signals that interrupt the run.
INTERRUPT_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Interrupts(RunState):
    """Catching SIGINT, SIGTERM and SIGHUP, interrupting the run, and ending it."""

    def _catch_signals(self) -> Callable[[], None]:
        """Route SIGINT, SIGTERM and SIGHUP into the event loop; return the undo function."""
        reader, writer = socket.socketpair()
        reader.setblocking(False)
        writer.setblocking(False)
        previous = {}
        try:
            old_fd = signal.set_wakeup_fd(writer.fileno(), warn_on_full_buffer=False)
        except ValueError:  # not the main thread: leave signals alone
            reader.close()
            writer.close()
            return lambda: None
        caught = (*INTERRUPT_SIGNALS, signal.SIGQUIT) if self.spec.debug else INTERRUPT_SIGNALS
        for signum in caught:
            previous[signum] = signal.signal(signum, self._note_signal)
        self.selector.register(reader.fileno(), selectors.EVENT_READ, "signal")
        self._signal_reader = reader

        def restore() -> None:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
            signal.set_wakeup_fd(old_fd)
            with contextlib.suppress(KeyError, ValueError):
                self.selector.unregister(reader.fileno())
            reader.close()
            writer.close()

        return restore

    def _note_signal(self, signum: int, frame: Any) -> None:
        self.signals.append(signum)

    def _on_signal(self) -> None:
        with contextlib.suppress(OSError):
            self._signal_reader.recv(4096)
        signals, self.signals = self.signals, []
        for signum in signals:
            if signum == signal.SIGQUIT:  # a terminal's Ctrl-\: what each worker runs now
                self._show_stacks()
                continue
            if self.aborted:
                self._kill_all()  # a second interrupt: end everything now
                return
            name = signal.Signals(signum).name
            self._interrupt("KeyboardInterrupt" if signum == signal.SIGINT else name)

    def _interrupt(self, why: str, spare: int = 0) -> None:
        """Stop scheduling, interrupt the running tests, give the workers time to tear down.

        ``spare``: a test process that stops by itself (it quit the debugger), not interrupted.
        """
        self.interrupted = why
        self.aborted = True
        self.dropped.extend(self.queue.clear())
        self.abort_deadline = time.monotonic() + INTERRUPT_GRACE_S
        for slot in self.slots:
            slot.timer = None
            if slot.done or not slot.ready:
                continue
            self._drain(slot)  # what it runs now, not what it ran
            slot.stopping = True
            with contextlib.suppress(OSError):
                slot.channel.send(MessageKind.StopWorker, {})
            current = slot.current
            if current is None or current.finished:
                continue
            if current.pid == spare:
                continue
            if not self._complete(current) or current.pid != slot.worker_pid:
                # A test process between two tests is interrupted too: it would go on with
                # its batch. A worker between tests finds StopWorker before the next one.
                send_signal(current.pid, signal.SIGINT, slot.worker_pid)

    def _kill_all(self) -> None:
        """End the zygote, its workers and their test processes at once."""
        self.aborted = True
        self.killed = True
        if self.interrupted is None:
            self.interrupted = "KeyboardInterrupt"
        if self.zygote is not None:
            end_zygote(self.zygote)

    def _collect_not_run(self) -> None:
        """The tests an interrupted run never finished: collected ones, and planned ones."""
        seen = set()
        for test_id, result in self.results.items():
            seen.add(test_id)
            if result.status is None or not (self._complete(result) or self._failed(result)):
                result.status = None
                self.not_run.append(test_id)
        for unit in [*self.dropped, *self.queue.clear()]:
            self.not_run.extend(t for t in unit.expected if t not in seen)
