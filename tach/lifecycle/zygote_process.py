"""The zygote process: starting it, its control channel, and stopping it.

The supervisor creates the control channel and each slot's command channel, result ring and
output memfd, and hands them to the zygote as inherited file descriptors. The zygote's messages
(ready, a worker exited, warnings) come over the control channel, whose end of stream is the
zygote's death. Slots outlive a zygote: a replacement started after a death gets the same rings
and output buffers.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import shutil
import socket
import subprocess
import uuid
from typing import Any

import orjson

from tach._native.memfd import LogBuffer
from tach._native.ring import Ring
from tach.isolation import Hermetic
from tach.lifecycle.crashes import describe_exit
from tach.lifecycle.debugging import STACK_SIGNAL
from tach.lifecycle.layers import StaleLayer
from tach.lifecycle.processes import ZYGOTE_EXIT_GRACE_S, end_zygote, kill_group, wait_exit
from tach.lifecycle.state import BAD_PAYLOAD, RunState, Slot
from tach.lifecycle.timers import DUMP_SIGNAL
from tach.protocol import Channel, MessageKind, ProtocolError

RING_CAPACITY = 1 << 22


class ZygoteProcess(RunState):
    """Starting and stopping the zygote, and serving its control channel."""

    def zygote_output(self) -> str:
        return self.zygote_log.read_all().decode("utf-8", "replace")

    def wait_configured(self) -> dict[str, Any] | None:
        """Wait for pytest's reading of the command line (``Configured``); None when pytest
        stopped first (a usage error: ``Supervisor.abandoned`` then tells its exit code and
        output).

        pytest's options decide how the run is carried out: whether output is captured, whether
        it only collects, after how many failures it stops, whether it writes JUnit XML."""
        assert self.control is not None
        configured = self.control.expect(MessageKind.Configured)
        if configured is None:
            return None
        options = configured["options"]
        spec = self.spec
        spec.capture_output = options.get("capture") != "no"
        spec.collect_only = bool(options.get("collectonly"))
        spec.maxfail = int(options.get("maxfail") or 0)
        spec.junit_xml = spec.junit_xml or bool(options.get("xmlpath"))
        return configured

    def _start_zygote(self) -> None:
        """Start the zygote: ``python -m tach.zygote``, or, with a warm session layer
        (:attr:`layer`), a run zygote forked from it (:class:`StaleLayer` when it refuses)."""
        spec = self.spec
        control_parent, control_child = socket.socketpair()
        # Copies of this process's fds 1 and 2 (the child's own 1 and 2 are its log).
        terminal_out, terminal_err = os.dup(1), os.dup(2)
        fds = [control_child.fileno(), terminal_out, terminal_err]
        slot_specs = []
        children: list[socket.socket] = [control_child]
        first = not self.slots
        channels: list[Channel] = []
        for index in range(spec.workers):
            parent, child = socket.socketpair()
            children.append(child)
            channel = Channel(parent, f"command channel of slot {index}")
            channels.append(channel)
            if first:
                ring = Ring(RING_CAPACITY, name=f"tach-results-{index}")
                output = LogBuffer(f"tach-output-{index}")
                self.slots.append(Slot(index, channel, ring, output))
            else:  # a replacement zygote: the slots keep their rings and output buffers
                slot = self.slots[index]
                ring, output = slot.ring, slot.output
                assert output is not None
            memfd, eventfd = ring.fds()
            fds += [child.fileno(), memfd, eventfd, output.fileno()]
            base = len(fds) - 4
            slot_specs.append(
                {
                    "slot": index,
                    "command_fd": base,
                    "ring_fds": [base + 1, base + 2],
                    "output_fd": base + 3,
                }
            )
        debug_end = self._debug_channel_end()
        if debug_end is not None:
            fds += [debug_end.fileno(), self.debug_stacks.fileno()]
        run_spec = {
            "control_fd": 0,
            "slots": slot_specs,
            "isolation": spec.isolation,
            # -s: the zygote puts these on its fds 1 and 2 once pytest has parsed the options.
            "terminal_fds": [1, 2],
            "run_id": uuid.uuid4().hex,
            "dump_signal": int(DUMP_SIGNAL),
            "hermetic": spec.hermetic,
        }
        if debug_end is not None:
            run_spec["debug_fd"] = fds.index(debug_end.fileno())
            run_spec["stacks_fd"] = fds.index(self.debug_stacks.fileno())
            run_spec["stacks_signal"] = int(STACK_SIGNAL)
        try:
            if self.layer is not None:
                fds.append(self.zygote_log.fileno())
                run_spec["log_fd"] = len(fds) - 1
                run_spec["ahead"] = self.ahead and first
                self.zygote = self.layer.fork_run(
                    run_spec, fds, list(self.plan.get("conftest_dirs", []))
                )
            else:
                self.zygote = self._exec_zygote(run_spec, fds)
        except BaseException:
            control_parent.close()
            for channel in channels:
                channel.close()
            if first:
                for slot in self.slots:
                    slot.ring.close()
                    if slot.output is not None:
                        slot.output.close()
                self.slots.clear()
            raise
        finally:
            for sock in children:
                sock.close()
            os.close(terminal_out)
            os.close(terminal_err)
        if not first:
            for slot, channel in zip(self.slots, channels, strict=True):
                slot.channel.close()
                slot.channel = channel
        self.control = Channel(control_parent, "control channel")
        self.selector.register(self.control.fileno(), selectors.EVENT_READ, None)
        if first:
            for slot in self.slots:
                slot.ring.arm()
                self.selector.register(slot.ring.fileno(), selectors.EVENT_READ, slot)

    def _exec_zygote(self, run_spec: dict[str, Any], fds: list[int]) -> subprocess.Popen[bytes]:
        """``python -m tach.zygote``, inheriting ``fds`` (``run_spec`` names them by index)."""
        spec = self.spec

        def fd(index: int) -> int:
            return fds[index]

        zygote_spec = {
            **run_spec,
            "pytest_args": spec.pytest_args,
            "control_fd": fd(run_spec["control_fd"]),
            "terminal_fds": [fd(index) for index in run_spec["terminal_fds"]],
            "slots": [
                {
                    "slot": slot["slot"],
                    "command_fd": fd(slot["command_fd"]),
                    "ring_fds": [fd(index) for index in slot["ring_fds"]],
                    "output_fd": fd(slot["output_fd"]),
                }
                for slot in run_spec["slots"]
            ],
            "supervisor_pid": os.getpid(),
            "debug_fd": fd(run_spec["debug_fd"]) if "debug_fd" in run_spec else None,
            "stacks_fd": fd(run_spec["stacks_fd"]) if "stacks_fd" in run_spec else None,
            "cwd_on_path": spec.cwd_on_path,
            "python_path": spec.python_path,
            "junit_xml": spec.junit_xml,
        }
        output = self.zygote_log.fileno()
        env = dict(os.environ if spec.env is None else spec.env)
        # pytest sizes separators and tracebacks to the terminal; the zygote has none.
        env.setdefault("COLUMNS", str(shutil.get_terminal_size((80, 24)).columns))
        return subprocess.Popen(
            [spec.python, "-m", "tach.zygote", orjson.dumps(zygote_spec).decode()],
            cwd=spec.invocation_dir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=output,
            pass_fds=fds,
            start_new_session=True,  # Ctrl-C reaches the supervisor alone; it decides
        )

    def _on_control(self) -> None:
        assert self.control is not None
        try:
            messages = self.control.read_available()
        except ProtocolError as exc:
            self.internal_errors.append(f"the zygote sent a malformed message: {exc}")
            messages = None
        if messages is None:
            self.selector.unregister(self.control.fileno())
            self.control.close()
            self.control = None
            if self.zygote_ready and not all(slot.done for slot in self.slots):
                self._zygote_lost()
            return
        for kind, payload in messages:
            try:
                self._on_control_message(kind, payload)
            except BAD_PAYLOAD as exc:
                self.internal_errors.append(
                    f"the zygote sent a message Tach cannot use ({type(exc).__name__}: {exc})"
                )

    def _on_control_message(self, kind: MessageKind, payload: dict[str, Any]) -> None:
        assert self.control is not None
        if kind is MessageKind.ZygoteReady:
            self.zygote_ready = True
            self.zygote_timeout = float(payload.get("default_timeout") or 0.0)
            if self.restarting:  # a replacement zygote: respawn the workers of live slots
                self.restarting = False
                for slot in self.slots:
                    if not slot.done:
                        self.control.send(MessageKind.SpawnWorker, {"slot": slot.index})
                return
            self.queue.drop(payload.get("left_out") or ())
            self.queue.run_last(payload.get("run_last") or ())
            self.reporter.on_run_start(
                {
                    **payload,
                    "workers": self.spec.workers,
                    "isolation": self.spec.isolation,
                    "count": self.queue.expected_tests(payload.get("conftest_errors") or ()),
                    **self.spec.run_info,
                }
            )
            threads = payload.get("python_threads") or []
            if threads:
                self.reporter.on_warning(
                    {
                        "message": "Python threads run in the zygote after its conftests and "
                        f"warm imports: {', '.join(threads)}. Workers are forked from it: "
                        "they have none of these threads, and a lock such a thread held at "
                        "the fork stays held in them. Start the thread in a fixture instead "
                        "of at import (a conftest, or a module the test files import), or "
                        "drop that module from [tool.tach] warm_imports.",
                        "category": "TachWarning",
                        "when": "config",
                        "nodeid": "",
                    }
                )
            for slot in self.slots:
                if slot.index < self.spec.workers:
                    self.control.send(MessageKind.SpawnWorker, {"slot": slot.index})
                else:  # made before the run knew how many it needs (a zygote forked ahead)
                    slot.done = True
        elif kind is MessageKind.Stale:  # a run zygote forked ahead: its layer went stale
            raise StaleLayer(list(payload.get("paths") or []))
        elif kind is MessageKind.Warning:  # what a dead worker left behind, and the like
            self.warnings.append(payload)
            self.stats.add("warnings", payload)
            self.reporter.on_warning(payload)
        elif kind is MessageKind.SessionFinished:
            self.session_end = payload
            if payload.get("internal_error"):
                self.internal_errors.append("a plugin's terminal summary failed (shown above)")
        elif kind is MessageKind.WorkerExited:
            slot = self.slots[payload["slot"]]
            self._drain(slot)
            if not slot.done:
                hermetic = Hermetic.from_spec(self.spec.hermetic)
                why = describe_exit(payload["pid"], payload["status"], hermetic)
                self._worker_lost(slot, why, respawn=True)

    def _stop_zygote(self) -> None:
        self._end_session()
        self._reap_zygote()

    def _end_session(self) -> None:
        """Tell the zygote the run is over (``Shutdown``) and wait for its pytest session to
        end (``SessionFinished``, or the channel's end), unless the run was aborted."""
        if self.zygote is not None and self.control is not None:
            with contextlib.suppress(OSError):
                self.control.send(MessageKind.Shutdown, self._session_outcome())
            if not self.aborted:
                self._serve_session_end()

    def _reap_zygote(self) -> None:
        """Wait for the zygote to exit (ending it after a grace period, or at once when the
        run was aborted), then end whatever is left in its process group."""
        zygote = self.zygote
        if zygote is None:
            return
        if self.aborted and zygote.poll() is None:
            end_zygote(zygote)
        try:
            wait_exit(zygote, ZYGOTE_EXIT_GRACE_S)
        except subprocess.TimeoutExpired:
            end_zygote(zygote)
            zygote.wait()
        # Workers and test processes are in the zygote's process group: end any straggler.
        kill_group(zygote.pid)

    def _serve_session_end(self) -> None:
        """Read the control channel until ``SessionFinished`` or its end.

        The zygote's pytest session ends after the workers': the plugins' session-finish hooks
        run there (coverage combines every process's data and writes its reports, which can
        take a while on a large project) and it sends ``SessionFinished``. What the zygote does
        after that (pytest's unconfigure hooks, its exit) changes nothing in the run's outcome,
        which is reported before the zygote is reaped. A signal meanwhile interrupts the run
        as it would have before.
        """
        selector = selectors.DefaultSelector()
        assert self.control is not None
        selector.register(self.control.fileno(), selectors.EVENT_READ, None)
        signal_reader = getattr(self, "_signal_reader", None)
        if signal_reader is not None:
            selector.register(signal_reader.fileno(), selectors.EVENT_READ, "signal")
        try:
            while self.control is not None and not self.aborted and not self.session_end:
                for key, _ in selector.select():
                    if key.data == "signal":
                        self._on_signal()
                    elif self.control is not None:
                        self._on_control()
        finally:
            selector.close()

    def _session_outcome(self) -> dict[str, int]:
        """What the zygote's pytest session counts, as a serial run would have counted it.

        pytest's session-finish hooks run in the zygote with the run's exit status: the
        temporary-directory plugin, for one, removes the shared base directory only when every
        test passed (``tmp_path_retention_policy = failed``)."""
        stats = self.stats
        failed = stats.count("failed") + stats.count("error") + len(self.collect_errors)
        ran = sum(1 for result in self.results.values() if result.status)
        return {"testsfailed": failed, "testscollected": max(ran, stats.collected)}

    def _close_control(self) -> None:
        if self.control is not None:
            self.selector.unregister(self.control.fileno())
            self.control.close()
            self.control = None
