"""The supervisor: one run from start to summary, and the event loop that drives it.

The supervisor is single-threaded: one ``selectors`` loop watches the control channel (the
zygote's messages; end of stream when it dies) and the eventfd of every result ring. It owns every
channel and ring — it creates them and hands them to the zygote — and every outcome: a test's
result is what its reports say, or, when its process died, what the worker (or, when the worker
died, the supervisor) says about it.

What the loop hands work to are the mixins of :class:`Supervisor`, one module each
(``tach/lifecycle/__init__.py`` lists them).
"""

from __future__ import annotations

import contextlib
import math
import os
import selectors
import shutil
import socket
import subprocess
import time
import uuid
from typing import Any

import orjson

from tach._native.memfd import LogBuffer
from tach._native.ring import Ring
from tach.lifecycle.crashes import CrashAttribution, describe_exit
from tach.lifecycle.processes import ZYGOTE_EXIT_GRACE_S, end_zygote, kill_group, wait_exit
from tach.lifecycle.rings import ResultRings
from tach.lifecycle.signals import Interrupts
from tach.lifecycle.state import BAD_PAYLOAD, RunSpec, Slot
from tach.lifecycle.timers import DUMP_SIGNAL, Timers
from tach.protocol import Channel, MessageKind, ProtocolError
from tach.scheduler import Reporter, RunSummary, Unit, UnitQueue

RING_CAPACITY = 1 << 22
#: How soon a ring that just had messages is read again (instead of waiting to be woken). At
#: 2 ms, a suite of 1-2 ms tests woke the supervisor once per test (6,700 wake-ups for 5,400
#: tests of packaging's test_requirements.py); at 20 ms, 220.
HOT_POLL_S = 0.02


class Supervisor(ResultRings, CrashAttribution, Timers, Interrupts):
    """One run: the zygote, its workers, and the results they send."""

    def start(self) -> None:
        """Start the zygote: pytest starts up in it while the supervisor plans the run."""
        self._start_zygote()

    def abort(self) -> None:
        """Give up before the run started (the plan failed): end the zygote."""
        self._close_control()
        self._stop_zygote()
        self._close()

    def run(
        self, units: list[Unit], conftest_dirs: list[str], warm_imports: list[str]
    ) -> RunSummary:
        """Hand the zygote its plan, run ``units``, and return what happened."""
        self.queue = UnitQueue(units, self.spec.durations)
        self.plan = {"conftest_dirs": conftest_dirs, "warm_imports": warm_imports}
        restore = self._catch_signals()
        try:
            if self.zygote is None:
                self._start_zygote()
            assert self.control is not None
            with contextlib.suppress(OSError):  # a zygote that already died is seen in the loop
                self.control.send(
                    MessageKind.Plan, {"conftest_dirs": conftest_dirs, "warm_imports": warm_imports}
                )
            self._loop()
        except KeyboardInterrupt:
            self.interrupted = "KeyboardInterrupt"
            self.aborted = True
        finally:
            try:
                with contextlib.suppress(OSError):  # shown before the session's teardown
                    self.reporter.flush()
                self._stop_zygote()
            finally:
                restore()
                self._close()
        for slot in self.slots:
            self._release_held(slot)
        if self.aborted:
            self._collect_not_run()
        zygote_code = None
        if not self.zygote_ready and self.zygote is not None and not self.aborted:
            zygote_code = self.zygote.returncode
        summary = RunSummary(
            stats=self.stats,
            results=self.results,
            collect_errors=self.collect_errors,
            warnings=self.warnings,
            duration=time.perf_counter() - self.started,
            collect_only=self.spec.collect_only,
            usage_errors=self.usage_errors,
            internal_errors=self.internal_errors,
            interrupted=self.interrupted,
            zygote_exit_code=zygote_code,
            zygote_output=self.zygote_output() if zygote_code is not None else "",
            deselected=self.deselected,
            aborted=self.aborted,
            not_run=self.not_run,
        )
        if self.decide_exit is not None:
            summary.exit_code = self.decide_exit(summary)
        self.reporter.on_run_finished(summary)
        return summary

    def zygote_output(self) -> str:
        return self.zygote_log.read_all().decode("utf-8", "replace")

    def _start_zygote(self) -> None:
        spec = self.spec
        control_parent, control_child = socket.socketpair()
        self.control = Channel(control_parent, "control channel")
        pass_fds = [control_child.fileno()]
        slot_specs = []
        children: list[socket.socket] = [control_child]
        first = not self.slots
        for index in range(spec.workers):
            parent, child = socket.socketpair()
            children.append(child)
            channel = Channel(parent, f"command channel of slot {index}")
            if first:
                ring = Ring(RING_CAPACITY, name=f"tach-results-{index}")
                output = LogBuffer(f"tach-output-{index}")
                self.slots.append(Slot(index, channel, ring, output))
            else:  # a replacement zygote: the slots keep their rings and output buffers
                slot = self.slots[index]
                slot.channel.close()
                slot.channel = channel
                ring, output = slot.ring, slot.output
                assert output is not None
            memfd, eventfd = ring.fds()
            pass_fds += [child.fileno(), memfd, eventfd, output.fileno()]
            slot_specs.append(
                {
                    "slot": index,
                    "command_fd": child.fileno(),
                    "ring_fds": [memfd, eventfd],
                    "output_fd": output.fileno(),
                }
            )
        zygote_spec = {
            "pytest_args": spec.pytest_args,
            "control_fd": control_child.fileno(),
            "slots": slot_specs,
            "supervisor_pid": os.getpid(),
            "isolation": spec.isolation,
            "capture_output": spec.capture_output,
            "collect_only": spec.collect_only,
            "python_path": spec.python_path,
            "junit_xml": spec.junit_xml,
            "run_id": uuid.uuid4().hex,
            "dump_signal": int(DUMP_SIGNAL),
            "max_memory": spec.max_memory,
        }
        output = None if not spec.capture_output else self.zygote_log.fileno()
        env = dict(os.environ if spec.env is None else spec.env)
        # pytest sizes separators and tracebacks to the terminal; the zygote has none.
        env.setdefault("COLUMNS", str(shutil.get_terminal_size((80, 24)).columns))
        self.zygote = subprocess.Popen(
            [spec.python, "-m", "tach.zygote", orjson.dumps(zygote_spec).decode()],
            cwd=spec.invocation_dir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=output,
            pass_fds=pass_fds,
            start_new_session=True,  # Ctrl-C reaches the supervisor alone; it decides
        )
        for sock in children:
            sock.close()
        self.selector.register(self.control.fileno(), selectors.EVENT_READ, None)
        if first:
            for slot in self.slots:
                slot.ring.arm()
                self.selector.register(slot.ring.fileno(), selectors.EVENT_READ, slot)

    def _loop(self) -> None:
        """Serve the control channel and the rings until every worker is done.

        A ring that had messages stays *hot*: it is read again after :data:`HOT_POLL_S`
        instead of being armed, so while tests stream their results, producers push with plain
        memory writes and nobody is woken per message (a wake-up is a context switch, which on
        a machine with as many busy processes as cores costs a test process its time slice).
        A ring found empty is armed, and its eventfd wakes the loop when the next message comes.
        What the loop must act on at once (a worker ready for a unit or done with one, a
        failure) wakes it even while its ring is hot (``tach.plugin.URGENT_KINDS``), so the
        period only delays what nobody waits for: progress, reports of passes, warnings.
        """
        hot: set[int] = set()
        while not self._finished():
            wait = self._next_deadline() - time.monotonic()
            if hot:
                wait = min(wait, HOT_POLL_S)
            self.reporter.flush()
            events = self.selector.select(None if wait == math.inf else max(wait, 0.0))
            for key, _ in events:
                if key.data is None:
                    self._on_control()
                elif key.data == "signal":
                    self._on_signal()
                else:
                    key.data.ring.clear_wakeup()
                    hot.add(key.data.index)
            for index in sorted(hot):
                slot = self.slots[index]
                if not self._drain(slot) and slot.ring.arm():
                    hot.discard(index)
            self._check_deadlines()

    def _finished(self) -> bool:
        if self.control is None or self.killed:  # the zygote is gone
            return True
        return self.zygote_ready and all(slot.done for slot in self.slots)

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
            self.reporter.on_run_start(
                {**payload, "workers": self.spec.workers, "isolation": self.spec.isolation}
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
                self.control.send(MessageKind.SpawnWorker, {"slot": slot.index})
        elif kind is MessageKind.Warning:  # what a dead worker left behind, and the like
            self.warnings.append(payload)
            self.stats.add("warnings", payload)
            self.reporter.on_warning(payload)
        elif kind is MessageKind.WorkerExited:
            slot = self.slots[payload["slot"]]
            self._drain(slot)
            if not slot.done:
                self._worker_lost(
                    slot, describe_exit(payload["pid"], payload["status"]), respawn=True
                )

    def _stop_zygote(self) -> None:
        zygote = self.zygote
        if zygote is None:
            return
        if self.control is not None:
            with contextlib.suppress(OSError):
                self.control.send(MessageKind.Shutdown, self._session_outcome())
        if self.aborted and zygote.poll() is None:
            end_zygote(zygote)
        try:
            wait_exit(zygote, ZYGOTE_EXIT_GRACE_S)
        except subprocess.TimeoutExpired:
            end_zygote(zygote)
            zygote.wait()
        # Workers and test processes are in the zygote's process group: end any straggler.
        kill_group(zygote.pid)

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

    def _close(self) -> None:
        self.selector.close()
        if self.control is not None:
            self.control.close()
        for slot in self.slots:
            slot.channel.close()
            slot.ring.close()
            if slot.output is not None:
                slot.output.close()


def run(
    spec: RunSpec,
    reporter: Reporter,
    units: list[Unit],
    conftest_dirs: list[str],
    warm_imports: list[str],
) -> RunSummary:
    """Run ``units`` as ``spec`` says, reporting to ``reporter`` (start and run in one go)."""
    return Supervisor(spec, reporter).run(units, conftest_dirs, warm_imports)
