"""Process ownership: the supervisor starts the zygote, drives the run and ends every process.

The supervisor is single-threaded: one ``selectors`` loop watches the control channel (the
zygote's messages; end of stream when it dies) and the eventfd of every result ring. It owns every
channel and ring — it creates them and hands them to the zygote — and every outcome: a test's
result is what its reports say, or, when its process died, what the worker (or, when the worker
died, the supervisor) says about it.

Tests are finalised (reported as finished) when the next test of their slot starts or their unit
finishes; the last test of a unit waits until its worker has moved on, because the teardown of
what the worker holds (package and session fixtures) is reported against it, as pytest reports it
against the last test of the session.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import selectors
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Callable
from typing import Any

import orjson

from tach._native.memfd import LogBuffer
from tach._native.ring import Ring
from tach.protocol import Channel, Message, MessageKind, ProtocolError, decode_one
from tach.results import Stats, TestResult
from tach.scheduler import Reporter, RunSummary, Unit, UnitQueue

#: A slot whose worker dies this often stops the run instead of being respawned again.
MAX_WORKER_DEATHS = 3
#: How long the zygote may take to exit once told to, before it is killed.
ZYGOTE_EXIT_GRACE_S = 10.0
RING_CAPACITY = 1 << 22
#: How soon a ring that just had messages is read again (instead of waiting to be woken).
HOT_POLL_S = 0.002


@dataclasses.dataclass
class RunSpec:
    """Everything the supervisor needs to run the tests."""

    python: str
    invocation_dir: str
    pytest_args: list[str]
    workers: int
    isolation: str = "module"
    capture_output: bool = True
    collect_only: bool = False
    maxfail: int = 0
    python_path: list[str] = dataclasses.field(default_factory=list)
    env: dict[str, str] | None = None
    durations: dict[str, float] = dataclasses.field(default_factory=dict)
    #: The run writes JUnit XML: test processes forward ``record_testsuite_property`` calls.
    junit_xml: bool = False


@dataclasses.dataclass
class Slot:
    """A worker slot: its channels, and what its current worker is doing."""

    index: int
    channel: Channel
    ring: Ring
    worker_pid: int = 0
    ready: bool = False
    stopping: bool = False
    done: bool = False
    deaths: int = 0
    unit: Unit | None = None
    unit_ids: list[str] = dataclasses.field(default_factory=list)
    #: Ids of the unit being collected, while its ``UnitCollected`` parts arrive.
    collecting: list[str] = dataclasses.field(default_factory=list)
    current: TestResult | None = None
    #: The last test of the previous unit, held until the worker has moved on.
    held: TestResult | None = None


class Supervisor:
    """One run: the zygote, its workers, and the results they send."""

    def __init__(
        self,
        spec: RunSpec,
        reporter: Reporter,
        decide_exit: Callable[[RunSummary], int] | None = None,
    ) -> None:
        self.spec = spec
        self.reporter = reporter
        #: Chooses the exit code the reporters are told about (the command line's rule).
        self.decide_exit = decide_exit
        self.queue = UnitQueue([], spec.durations)
        self.stats = Stats()
        self.results: dict[str, TestResult] = {}
        self.collect_errors: list[dict[str, Any]] = []
        self.warnings: list[dict[str, Any]] = []
        self.usage_errors: list[str] = []
        self.internal_errors: list[str] = []
        self.interrupted: str | None = None
        self.deselected = 0
        self.failures = 0
        self.zygote: subprocess.Popen[bytes] | None = None
        self.zygote_ready = False
        self.zygote_log = LogBuffer("tach-zygote-output")
        self.selector = selectors.DefaultSelector()
        self.slots: list[Slot] = []
        self.control: Channel | None = None
        self.started = time.perf_counter()

    # -- the run ------------------------------------------------------------------------------

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
        finally:
            self._stop_zygote()
            self._close()
        for slot in self.slots:
            self._release_held(slot)
        zygote_code = None
        if not self.zygote_ready and self.zygote is not None:
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
        for index in range(spec.workers):
            parent, child = socket.socketpair()
            children.append(child)
            ring = Ring(RING_CAPACITY, name=f"tach-results-{index}")
            self.slots.append(
                Slot(index, Channel(parent, f"command channel of slot {index}"), ring)
            )
            memfd, eventfd = ring.fds()
            pass_fds += [child.fileno(), memfd, eventfd]
            slot_specs.append(
                {"slot": index, "command_fd": child.fileno(), "ring_fds": [memfd, eventfd]}
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
        """
        hot: set[int] = set()
        while not self._finished():
            events = self.selector.select(HOT_POLL_S if hot else None)
            for key, _ in events:
                if key.data is None:
                    self._on_control()
                else:
                    key.data.ring.clear_wakeup()
                    hot.add(key.data.index)
            for index in sorted(hot):
                slot = self.slots[index]
                if not self._drain(slot) and slot.ring.arm():
                    hot.discard(index)

    def _finished(self) -> bool:
        if self.control is None:  # the zygote is gone
            return True
        return self.zygote_ready and all(slot.done for slot in self.slots)

    # -- control channel ----------------------------------------------------------------------

    def _on_control(self) -> None:
        assert self.control is not None
        try:
            messages = self.control.read_available()
        except ProtocolError as exc:
            self.internal_errors.append(f"the zygote sent a malformed message: {exc}")
            messages = None
        if messages is None:
            self.selector.unregister(self.control.fileno())
            self.control = None
            if self.zygote_ready and not all(slot.done for slot in self.slots):
                self.internal_errors.append("the zygote died while tests were running")
                for slot in self.slots:
                    self._drain(slot)
                    self._worker_lost(slot, "the zygote died", respawn=False)
            return
        for kind, payload in messages:
            if kind is MessageKind.ZygoteReady:
                self.zygote_ready = True
                self.reporter.on_run_start(
                    {**payload, "workers": self.spec.workers, "isolation": self.spec.isolation}
                )
                if payload.get("threads", 1) > 1:
                    self.reporter.on_warning(
                        {
                            "message": f"the zygote has {payload['threads']} threads after its "
                            "warm "
                            "imports; forking it may deadlock. Remove the module that starts "
                            "a thread from warm_imports.",
                            "category": "TachWarning",
                            "when": "config",
                            "nodeid": "",
                        }
                    )
                for slot in self.slots:
                    self.control.send(MessageKind.SpawnWorker, {"slot": slot.index})
            elif kind is MessageKind.WorkerExited:
                slot = self.slots[payload["slot"]]
                self._drain(slot)
                if not slot.done:
                    self._worker_lost(
                        slot, describe_exit(payload["pid"], payload["status"]), respawn=True
                    )

    # -- result rings -------------------------------------------------------------------------

    def _drain(self, slot: Slot) -> int:
        """Handle every message waiting in ``slot``'s ring; return how many there were."""
        handled = 0
        while True:
            batch = slot.ring.pop_many()
            if not batch:
                return handled
            handled += len(batch)
            for data in batch:
                try:
                    message = decode_one(data)
                except ProtocolError as exc:
                    self.internal_errors.append(
                        f"worker slot {slot.index} sent a malformed message: {exc}"
                    )
                    continue
                self._on_result(slot, message)

    def _on_result(self, slot: Slot, message: Message) -> None:
        kind, payload = message
        if kind is MessageKind.TestReport:
            self._on_report(slot, payload["report"])
        elif kind is MessageKind.TestStart:
            self._on_test_start(slot, payload)
        elif kind is MessageKind.Warning:
            self.warnings.append(payload)
            self.stats.add("warnings", payload)
            self.reporter.on_warning(payload)
        elif kind is MessageKind.Record:
            self.reporter.on_record(payload)
        elif kind is MessageKind.UnitCollected:
            self._on_collected(slot, payload)
        elif kind is MessageKind.UnitFinished:
            self._on_unit_finished(slot)
        elif kind is MessageKind.WorkerReady:
            slot.worker_pid = payload["pid"]
            slot.ready = True
            self._dispatch(slot)
        elif kind is MessageKind.WorkerDone:
            self._release_held(slot)
            slot.done = True

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
        for test_id in slot.unit_ids:
            self.results.setdefault(test_id, TestResult(test_id, slot=slot.index))
        self.reporter.on_collected(slot.unit, slot.unit_ids, payload["errors"])
        if self.spec.maxfail and any(r.get("outcome") == "failed" for r in payload["errors"]):
            self._count_failure(len([r for r in payload["errors"] if r.get("outcome") == "failed"]))

    def _on_test_start(self, slot: Slot, payload: dict[str, Any]) -> None:
        if slot.current is not None:
            self._finalize(slot.current)
        result = self.results.setdefault(payload["id"], TestResult(payload["id"]))
        result.slot, result.pid, result.started = slot.index, payload["pid"], time.perf_counter()
        slot.current = result
        self.reporter.on_test_start(result)

    def _on_report(self, slot: Slot, report: dict[str, Any]) -> None:
        test_id = report.get("nodeid", "")
        result = self.results.setdefault(test_id, TestResult(test_id, slot=slot.index))
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
        self.reporter.on_test_finished(result)

    def _dispatch(self, slot: Slot) -> None:
        if slot.stopping or not slot.ready:
            return
        unit = self.queue.pop()
        if unit is None:
            slot.stopping = True
            with contextlib.suppress(OSError):
                slot.channel.send(MessageKind.StopWorker, {})
            return
        unit.attempts += 1
        slot.unit = unit
        slot.channel.send(
            MessageKind.RunUnit,
            {"unit": unit.id, "args": unit.args, "ignore": unit.ignore, "slice": unit.slice},
        )

    # -- failures of processes ----------------------------------------------------------------

    def _worker_lost(self, slot: Slot, why: str, respawn: bool) -> None:
        """The worker of ``slot`` died outside any test process: blame, retry, respawn."""
        slot.ready = False
        slot.deaths += 1
        self._release_held(slot)
        unit = slot.unit
        if slot.current is not None and not slot.current.finished:
            self._report_lost(slot.current, why)
            self._finalize(slot.current)
        slot.current = None
        if unit is not None:
            finished = {
                t for t in slot.unit_ids if self.results.get(t) and self.results[t].finished
            }
            remaining = [t for t in slot.unit_ids if t not in finished]
            if not slot.unit_ids and unit.attempts < 2:
                self.queue.push_front(unit)  # died while collecting: try the unit once more
            elif not slot.unit_ids:
                self.collect_errors.append(
                    {"nodeid": unit.id, "outcome": "failed", "longreprtext": why}
                )
                self.stats.add("error", {"nodeid": unit.id})
            elif remaining:
                self.queue.push_front(
                    Unit(f"{unit.id} (rest)", remaining, remaining, attempts=unit.attempts)
                )
            slot.unit, slot.unit_ids, slot.collecting = None, [], []
        if slot.stopping:
            slot.done = True
            return
        if not respawn or slot.deaths >= MAX_WORKER_DEATHS or self.control is None:
            if respawn:
                self.internal_errors.append(
                    f"the worker of slot {slot.index} died {slot.deaths} times ({why}); "
                    "not respawned"
                )
            slot.done = True
            if all(s.done for s in self.slots):
                for unit in self.queue.clear():
                    self.internal_errors.append(f"not run: {unit.id}")
            return
        self.control.send(MessageKind.SpawnWorker, {"slot": slot.index})

    def _report_lost(self, result: TestResult, why: str) -> None:
        """A failure report for a test whose process died, in the phase it had reached."""
        last = result.reports[-1] if result.reports else None
        if last is None:
            when = "setup"
        elif last.get("when") == "setup" and last.get("outcome") == "passed":
            when = "call"
        else:
            when = "teardown"
        text = f"{why}, while running this test ({when})."
        status = ["failed", "F", "FAILED"] if when == "call" else ["error", "E", "ERROR"]
        report = {
            "$report_type": "TestReport",
            "nodeid": result.id,
            "when": when,
            "outcome": "failed",
            "longrepr": text,
            "longreprtext": text,
            "head_line": result.id.rpartition("::")[2],
            "duration": 0.0,
            "sections": [],
            "teststatus": status,
            "slot": result.slot,
            "pid": result.pid,
            "crash": {"pid": result.pid, "status": None, "phase": when, "reason": why},
        }
        result.add(report)
        self.stats.add(status[0], report)
        self.reporter.on_report(result, report)

    # -- ending -------------------------------------------------------------------------------

    def _stop_zygote(self) -> None:
        zygote = self.zygote
        if zygote is None:
            return
        if self.control is not None:
            with contextlib.suppress(OSError):
                self.control.send(MessageKind.Shutdown, {})
        if self.interrupted == "KeyboardInterrupt":
            kill_group(zygote.pid)
        try:
            zygote.wait(timeout=ZYGOTE_EXIT_GRACE_S)
        except subprocess.TimeoutExpired:
            kill_group(zygote.pid)
            zygote.wait()
        # Workers and test processes are in the zygote's process group: end any straggler.
        kill_group(zygote.pid)

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


def kill_group(pgid: int) -> None:
    """SIGKILL the process group the zygote leads (it was started in a session of its own)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def describe_exit(pid: int, status: int) -> str:
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        name = signal.Signals(sig).name if sig in signal.Signals._value2member_map_ else str(sig)
        return f"worker {pid} was killed by signal {sig} ({name})"
    return f"worker {pid} exited with status {os.WEXITSTATUS(status)}"


def run(
    spec: RunSpec,
    reporter: Reporter,
    units: list[Unit],
    conftest_dirs: list[str],
    warm_imports: list[str],
) -> RunSummary:
    """Run ``units`` as ``spec`` says, reporting to ``reporter`` (start and run in one go)."""
    return Supervisor(spec, reporter).run(units, conftest_dirs, warm_imports)
