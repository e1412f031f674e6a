"""Crash attribution: what the death of a worker or of the zygote is blamed on.

A worker that dies while a test runs is that test's failure, in the phase its reports reached;
one that dies between tests is blamed on the next test of its unit (in setup) or on the last
test it ran (in teardown), as pytest would blame them. The rest of its unit goes back on the
queue and the slot gets a new worker; a slot whose worker dies :data:`MAX_WORKER_DEATHS` times
in a row without a test to blame is given up. A zygote that dies mid-run takes its workers with
it: each is blamed as above, and a new zygote is started unless the zygote has died
:data:`MAX_ZYGOTE_DEATHS` times in this run.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess

from tach.isolation import Hermetic, death_cause
from tach.lifecycle.layers import LayerError, StaleLayer
from tach.lifecycle.processes import ZYGOTE_EXIT_GRACE_S, kill_group, wait_exit
from tach.lifecycle.state import RunState, Slot
from tach.lifecycle.timers import format_seconds
from tach.protocol import MessageKind, output_excerpt
from tach.results import TestResult
from tach.scheduler import Unit

#: A slot whose worker dies this often in a row, with no test to blame, stops the run.
MAX_WORKER_DEATHS = 3
#: A zygote that dies this often during one run is not started again.
MAX_ZYGOTE_DEATHS = 3


class CrashAttribution(RunState):
    """Blaming deaths on tests, and the failure reports that say so."""

    def _zygote_lost(self) -> None:
        """The zygote died mid-run: blame what each worker ran, and start a new zygote (or,
        after :data:`MAX_ZYGOTE_DEATHS` deaths, stop with an internal error)."""
        assert self.zygote is not None
        kill_group(self.zygote.pid)  # its workers die with it (parent-death signal); be sure
        try:
            status = wait_exit(self.zygote, ZYGOTE_EXIT_GRACE_S)
        except subprocess.TimeoutExpired:
            status = None
        self.zygote_deaths += 1
        why = f"the zygote {self.zygote.pid} died"
        if status is not None:
            why += f" ({describe_returncode(status)})"
        restart = self.zygote_deaths < MAX_ZYGOTE_DEATHS and not self.aborted
        if not restart:
            self.internal_errors.append(
                f"{why}; it died {self.zygote_deaths} times, not started again"
                if self.zygote_deaths >= MAX_ZYGOTE_DEATHS
                else f"{why} while tests were running"
            )
        self.restarting = restart
        for slot in self.slots:
            self._drain(slot)
            if not slot.done:
                self._worker_lost(slot, why, respawn=restart)
        if restart and not all(slot.done for slot in self.slots):
            self.zygote_ready = False
            try:
                self._start_zygote()
            except (StaleLayer, LayerError) as exc:  # a warm session that cannot fork now
                self.internal_errors.append(f"{why}; no new zygote: {exc}")
                self.restarting = False
                for slot in self.slots:
                    if not slot.done:
                        slot.done = True
                for unit in self.queue.clear():
                    self.internal_errors.append(f"not run: {unit.id}")
                return
            assert self.control is not None
            with contextlib.suppress(OSError):
                self.control.send(MessageKind.Plan, self.plan)

    def _worker_lost(self, slot: Slot, why: str, respawn: bool) -> None:
        """The worker of ``slot`` died: blame the test it was running, retry the rest, respawn.

        The blamed test is the one the worker was running (in the phase its reports reached);
        when the worker died between tests (setting up the next test's wider fixtures), the
        next test of the unit, in its setup; when it died holding no unit (tearing down session
        fixtures), the last test it ran, in its teardown — as pytest would blame them.
        """
        timer, slot.timer = slot.timer, None
        timed_out = timer.seconds if timer is not None and timer.stage > 0 else 0.0
        slot.ready = False
        if self.aborted:
            why = f"{why} (the run was interrupted)"
        elif timed_out:
            why = f"Timeout after {format_seconds(timed_out)} s: {why}"
        output = self._slot_output(slot)
        held, slot.held = slot.held, None
        unit = slot.unit
        current = slot.current
        blamed: TestResult | None = None
        if current is not None and not current.finished:
            blamed = current
            if self._complete(current) and not self.aborted:
                upcoming = self._next_test(slot)
                if upcoming is not None:
                    self._finalize(current)
                    blamed = upcoming
        elif unit is not None and slot.unit_ids and not self.aborted:
            blamed = self._next_test(slot)
        elif unit is None and held is not None and not held.finished and not self.aborted:
            # Between units, or tearing down at the end: what the worker holds (session and
            # package fixtures) is torn down against the last test it ran, as in pytest.
            blamed = held
        if held is not None and held is not blamed:
            self._finalize(held)
        if blamed is not None and not self.aborted:
            self._report_lost(blamed, why, output)
        if blamed is not None:
            self._finalize(blamed)
        slot.current = None
        slot.deaths = 0 if blamed is not None and not self.aborted else slot.deaths + 1
        if unit is not None:
            finished = {
                t for t in slot.unit_ids if self.results.get(t) and self.results[t].finished
            }
            remaining = [t for t in slot.unit_ids if t not in finished]
            if self.aborted:
                pass
            elif not slot.unit_ids and unit.attempts < 2 and not timed_out:
                self.queue.push_front(unit)  # died while collecting: try the unit once more
            elif not slot.unit_ids:
                text = why + (f"\n\nOutput of the worker:\n{output}" if output else "")
                self.collect_errors.append(
                    {"nodeid": unit.id, "outcome": "failed", "longreprtext": text}
                )
                self.stats.add("error", {"nodeid": unit.id})
            elif remaining:
                self.queue.push_front(
                    Unit(f"{unit.id} (rest)", remaining, remaining, attempts=unit.attempts)
                )
            self._report_unit("unit_finished", slot)
            slot.unit, slot.unit_ids, slot.collecting = None, [], []
        if slot.stopping or self.aborted or slot.retired:
            slot.done = True
            return
        if respawn and self.restarting:
            return  # the replacement zygote spawns the slot's worker when it is ready
        if not respawn or slot.deaths >= MAX_WORKER_DEATHS or self.control is None:
            if respawn:
                self.internal_errors.append(
                    f"the worker of slot {slot.index} died {slot.deaths} times in a row with "
                    f"no test to blame ({why}); not respawned"
                )
            slot.done = True
            if all(s.done for s in self.slots):
                for unit in self.queue.clear():
                    self.internal_errors.append(f"not run: {unit.id}")
            return
        self.control.send(MessageKind.SpawnWorker, {"slot": slot.index})

    def _next_test(self, slot: Slot) -> TestResult | None:
        """The first test of the slot's unit that has not started yet."""
        for test_id in slot.unit_ids:
            result = self.results.get(test_id)
            if result is not None and not result.finished and not result.reports:
                result.slot = slot.index
                return result
        return None

    def _slot_output(self, slot: Slot) -> str:
        if not self.spec.capture_output or slot.output is None:
            return ""
        try:
            return output_excerpt(slot.output)
        except OSError:
            return ""

    def _report_lost(self, result: TestResult, why: str, output: str = "") -> None:
        """A failure report for a test whose process died, in the phase it had reached."""
        last = result.reports[-1] if result.reports else None
        if last is None:
            when = "setup"
        elif last.get("when") == "setup" and last.get("outcome") == "passed":
            when = "call"
        else:
            when = "teardown"
        text = f"{why}, while running this test ({when})."
        if output:
            text += f"\n\nOutput of the test process:\n{output}"
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
            "lost": True,
        }
        result.add(report)
        self.stats.add(status[0], report)
        self.reporter.on_report(result, report)


def describe_returncode(code: int) -> str:
    """A ``Popen.returncode`` in words."""
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = str(-code)
        return f"killed by signal {-code} ({name})"
    return f"exit status {code}"


def describe_exit(pid: int, status: int, hermetic: Hermetic | None = None) -> str:
    """A worker's end in words (``hermetic``: the limits it may have died of)."""
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        cause = death_cause(hermetic or Hermetic(), sig)
        if cause is not None:
            return f"worker {pid} was {cause}"
        name = signal.Signals(sig).name if sig in signal.Signals._value2member_map_ else str(sig)
        return f"worker {pid} was killed by signal {sig} ({name})"
    return f"worker {pid} exited with status {os.WEXITSTATUS(status)}"
