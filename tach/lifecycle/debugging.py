"""Debugger sessions: lending the terminal to a test process stopped in pdb.

When the run has a terminal (``RunSpec.debug``), the supervisor makes the request channel of
:mod:`tach.debugger.wire` before it starts the zygote, and watches it in the event loop. A
``start`` request is queued; the first in the queue gets the terminal: it is put in raw mode and
the supervisor's own output held back (:class:`tach.debugger.relay.Terminal`), and the loop then
relays the terminal's input to the session's stream and the stream to the terminal. A request
that has to wait gets a one-line note naming its test. The test's timeout stands still from its
request until its session ends. The session ends when the test process closes its stream: pdb
let the test go on, or the process died (a crash, a signal, a timeout of its own); then the
terminal is restored, the held output written, and the next request served.

A ``quit`` request (the user quit pdb) stops the run as pytest's ``Exit`` stops pytest's.
Reporters hear of each session (``on_debug``: NDJSON's ``debug_start`` and ``debug_end``).
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import math
import os
import selectors
import signal
import socket
import sys
import time
from typing import Any

from tach._native.memfd import LogBuffer
from tach.debugger.relay import Terminal
from tach.debugger.wire import grant, make_channel, recv_request
from tach.lifecycle.processes import send_signal
from tach.lifecycle.state import RunState, Slot

#: The signal on which every process of a run with a terminal writes its threads' stacks into
#: the run's stacks memfd (``faulthandler``, registered in the zygote), going on after.
STACK_SIGNAL = signal.SIGRTMIN + 7
#: The key that shows what each worker runs now (as SIGQUIT, Ctrl-\, does).
STACKS_KEY = b"s"
#: How long a process is given to write its stacks.
STACKS_WAIT_S = 0.5


@dataclasses.dataclass
class DebugRequest:
    """A test process that asked for the terminal."""

    stream: socket.socket
    pid: int
    slot: int
    test_id: str
    where: str
    how: str
    asked: float = dataclasses.field(default_factory=time.monotonic)
    started: float = 0.0
    #: It stopped its test's timer (which runs again when the session ends).
    paused: bool = False


class DebugSessions(RunState):
    """The request channel, the queue of sessions, and the relay of the one that runs."""

    debug_channel: socket.socket | None = None
    debug_terminal: Terminal | None = None
    debug_active: DebugRequest | None = None

    def _debug_channel_end(self) -> socket.socket | None:
        """The end of the request channel the zygote inherits (None: no terminal to lend).

        Made once per run, and kept for a replacement zygote."""
        if not self.spec.debug:
            return None
        if self.debug_channel is None:
            ours, theirs = make_channel()
            ours.setblocking(False)
            self.debug_channel, self._debug_theirs = ours, theirs
            self.debug_terminal = Terminal()
            self.debug_stacks = LogBuffer("tach-stacks")
            self.debug_waiting: collections.deque[DebugRequest] = collections.deque()
            self.selector.register(ours.fileno(), selectors.EVENT_READ, "debug")
            if self.debug_terminal.watch_keys():
                self.selector.register(self.debug_terminal.in_fd, selectors.EVENT_READ, "debug-key")
        return self._debug_theirs

    def _on_debug(self, what: str) -> None:
        if what == "debug":
            self._on_debug_request()
        elif what == "debug-stream":
            self._on_debug_stream()
        elif what == "debug-stdin":
            self._on_debug_stdin()
        elif what == "debug-key":
            self._on_debug_key()

    def _on_debug_request(self) -> None:
        assert self.debug_channel is not None
        while True:
            try:
                received = recv_request(self.debug_channel)
            except BlockingIOError:
                return
            except (OSError, ValueError) as exc:
                self.internal_errors.append(f"a test process sent a bad debugger request: {exc}")
                return
            if received is None:
                return
            request, stream = received
            try:
                self._debug_request(request, stream)
            except (KeyError, TypeError, ValueError, IndexError) as exc:
                if stream is not None:
                    stream.close()
                self.internal_errors.append(f"a test process sent a bad debugger request: {exc}")

    def _debug_request(self, request: dict[str, Any], stream: socket.socket | None) -> None:
        op = request["op"]
        if op == "quit":
            self._interrupt(str(request.get("reason") or "Quitting debugger"), spare=request["pid"])
            return
        if op != "start" or stream is None:
            raise ValueError(f"unknown request {op!r}")
        waiting = DebugRequest(
            stream,
            int(request["pid"]),
            int(request["slot"]),
            str(request["id"]),
            str(request["where"]),
            str(request["how"]),
        )
        active = self.debug_active
        if active is not None and active.pid == waiting.pid:
            # A process has one session at a time: its last one is over, though its end of
            # stream was not read yet (the next test of the same process stopped at once).
            self._end_debug_session()
        if 0 <= waiting.slot < len(self.slots):
            slot = self.slots[waiting.slot]
            self._drain(slot)  # its TestStart, which arms the timer that now stands still
            timer = slot.timer
            if timer is not None and timer.pid == waiting.pid and timer.deadline != math.inf:
                timer.remaining = max(timer.deadline - time.monotonic(), 0.0)
                timer.deadline = math.inf
                waiting.paused = True
        self.debug_waiting.append(waiting)
        if self.debug_active is not None:
            assert self.debug_terminal is not None
            self.debug_terminal.note(
                f"[tach] {waiting.test_id or 'a test'} stopped in the debugger at "
                f"{waiting.where}; it waits until the session of "
                f"{self.debug_active.test_id or 'another test'} ends"
            )
        else:
            self._next_debug_session()

    def _next_debug_session(self) -> None:
        terminal = self.debug_terminal
        assert terminal is not None
        while self.debug_waiting and self.debug_active is None:
            request = self.debug_waiting.popleft()
            try:
                request.stream.sendall(grant(*terminal.size()))
            except OSError:  # the process died while it waited
                self._debug_ended(request)
                continue
            request.stream.setblocking(False)
            request.started = time.monotonic()
            self.debug_active = request
            terminal.lend()
            self.selector.register(request.stream.fileno(), selectors.EVENT_READ, "debug-stream")
            if terminal.keys:
                self.selector.modify(terminal.in_fd, selectors.EVENT_READ, "debug-stdin")
            else:
                self.selector.register(terminal.in_fd, selectors.EVENT_READ, "debug-stdin")
            self.reporter.on_debug(
                {
                    "event": "debug_start",
                    "id": request.test_id,
                    "slot": request.slot,
                    "pid": request.pid,
                    "where": request.where,
                    "how": request.how,
                }
            )

    def _on_debug_stream(self) -> None:
        request, terminal = self.debug_active, self.debug_terminal
        assert request is not None and terminal is not None
        try:
            data = request.stream.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if data:
            terminal.write(data)
        else:
            self._end_debug_session()

    def _on_debug_stdin(self) -> None:
        request, terminal = self.debug_active, self.debug_terminal
        assert request is not None and terminal is not None
        try:
            data = os.read(terminal.in_fd, 4096)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:  # the terminal is gone: nobody can answer the prompt any more
            self.selector.unregister(terminal.in_fd)
            return
        with contextlib.suppress(OSError):
            request.stream.setblocking(True)
            request.stream.sendall(data)
            request.stream.setblocking(False)

    def _end_debug_session(self) -> None:
        """The active session is over: give the terminal back, serve the next request."""
        request, terminal = self.debug_active, self.debug_terminal
        if request is None or terminal is None:
            return
        self.debug_active = None
        with contextlib.suppress(KeyError, ValueError):
            self.selector.unregister(request.stream.fileno())
        with contextlib.suppress(KeyError, ValueError):
            if terminal.keys:
                self.selector.modify(terminal.in_fd, selectors.EVENT_READ, "debug-key")
            else:
                self.selector.unregister(terminal.in_fd)
        while True:  # what pdb wrote last, still unread
            try:
                data = request.stream.recv(65536)
            except OSError:  # nothing more now (BlockingIOError), or the stream broke
                break
            if not data:
                break
            terminal.write(data)
        terminal.take_back()
        self._debug_ended(request)
        self.reporter.on_debug(
            {
                "event": "debug_end",
                "id": request.test_id,
                "slot": request.slot,
                "pid": request.pid,
                "duration": time.monotonic() - request.started,
            }
        )
        self._next_debug_session()

    def _debug_ended(self, request: DebugRequest) -> None:
        """The test's timeout runs again, for what was left of it."""
        request.stream.close()
        if request.paused and 0 <= request.slot < len(self.slots):
            request.paused = False
            timer = self.slots[request.slot].timer
            if timer is not None and timer.pid == request.pid and timer.deadline == math.inf:
                timer.deadline = time.monotonic() + timer.remaining

    def _on_debug_key(self) -> None:
        terminal = self.debug_terminal
        assert terminal is not None
        try:
            data = os.read(terminal.in_fd, 1024)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:  # end of input: no more keys
            with contextlib.suppress(KeyError, ValueError):
                self.selector.unregister(terminal.in_fd)
            terminal.keys = False
            return
        if STACKS_KEY in data:
            self._show_stacks()

    def _show_stacks(self) -> None:
        """What each worker runs now, with its Python stack (the ``s`` key, SIGQUIT): every
        process writes its threads' stacks (``faulthandler``) and goes on."""
        if self.debug_channel is None:
            return
        lines = ["", "=" * 20 + " what each worker runs now " + "=" * 20]
        for slot in self.slots:
            self._drain(slot)
            current = slot.current
            if slot.done:
                lines.append(f"worker {slot.index}: done\n")
            elif not slot.worker_pid:
                lines.append(f"worker {slot.index}: starting\n")
            elif slot.stopping and (current is None or current.finished):
                lines.append(f"worker {slot.index} (pid {slot.worker_pid}): done, stopping\n")
            else:
                lines.append(self._slot_stacks(slot))
        self.reporter.flush()
        sys.stdout.write("\n".join(lines) + "\n")
        sys.stdout.flush()

    def _slot_stacks(self, slot: Slot) -> str:
        current = slot.current
        if current is not None and not current.finished and current.pid:
            seconds = time.perf_counter() - current.started
            pid, what = current.pid, f"{current.id} (for {seconds:.1f} s)"
        else:
            pid, what = slot.worker_pid, "no test (collecting, setting up or tearing down)"
        head = f"worker {slot.index} (pid {pid}): {what}"
        stacks = self.debug_stacks
        stacks.reset()
        send_signal(pid, STACK_SIGNAL, slot.worker_pid)
        deadline, size = time.monotonic() + STACKS_WAIT_S, -1
        while time.monotonic() < deadline:
            time.sleep(0.01)
            now = stacks.size()
            if now and now == size:
                break
            size = now
        text = stacks.read_all().decode("utf-8", "replace").rstrip()
        return f"{head}\n{text or '(no stack: the process did not answer)'}\n"

    def _close_debug(self) -> None:
        """The run is over: restore the terminal if a session was cut short, close the channel."""
        self._end_debug_session()
        if self.debug_terminal is not None:
            self.debug_terminal.unwatch_keys()
        for request in getattr(self, "debug_waiting", ()):
            request.stream.close()
        if self.debug_channel is not None:
            with contextlib.suppress(KeyError, ValueError):
                self.selector.unregister(self.debug_channel.fileno())
            self.debug_channel.close()
            self._debug_theirs.close()
            self.debug_stacks.close()
            self.debug_channel = None
