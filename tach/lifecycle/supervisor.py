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
import time

from tach.lifecycle.crashes import CrashAttribution
from tach.lifecycle.debugging import DebugSessions
from tach.lifecycle.rings import ResultRings
from tach.lifecycle.signals import Interrupts
from tach.lifecycle.state import RunSpec
from tach.lifecycle.timers import Timers
from tach.lifecycle.zygote_process import ZygoteProcess
from tach.protocol import MessageKind
from tach.scheduler import Reporter, RunSummary, Unit, UnitQueue

#: How soon a ring that just had messages is read again (instead of waiting to be woken). At
#: 2 ms, a suite of 1-2 ms tests woke the supervisor once per test (6,700 wake-ups for 5,400
#: tests of packaging's test_requirements.py); at 20 ms, 220.
HOT_POLL_S = 0.02


class Supervisor(ZygoteProcess, ResultRings, CrashAttribution, DebugSessions, Timers, Interrupts):
    """One run: the zygote, its workers, and the results they send."""

    def start(self) -> None:
        """Start the zygote: pytest starts up in it while the supervisor plans the run."""
        self._start_zygote()

    def resume(self, conftest_dirs: list[str]) -> None:
        """Start the run of a zygote forked ahead (:attr:`ahead`): it checks now whether what
        it imported is still current, the conftests of ``conftest_dirs`` included (``Stale``
        comes back during :meth:`run` when not). :meth:`run` resumes it with its plan's
        directories if this was not called before."""
        assert self.control is not None
        self.resumed = True
        self.started = time.perf_counter()
        self.started_monotonic = time.monotonic()
        with contextlib.suppress(OSError):  # a zygote that already died: seen in the loop
            self.control.send(MessageKind.Resume, {"conftest_dirs": conftest_dirs})

    def abort(self) -> None:
        """Give up before the run started (the plan failed): end the zygote."""
        self._close_control()
        self._stop_zygote()
        self._close()

    def abandoned(self) -> tuple[int, str]:
        """End the zygote of a run that will not start; its exit code and output."""
        self.abort()
        assert self.zygote is not None
        return self.zygote.returncode, self.zygote_output()

    def run(
        self,
        units: list[Unit],
        conftest_dirs: list[str],
        warm_imports: list[str],
        collection_paths: list[str] | None = None,
    ) -> RunSummary:
        """Hand the zygote its plan, run ``units``, and return what happened."""
        self.queue = UnitQueue(units, self.spec.durations)
        self.plan = {
            "conftest_dirs": conftest_dirs,
            "warm_imports": warm_imports,
            "collection_paths": collection_paths or [],
        }
        restore = self._catch_signals()
        try:
            try:
                if self.zygote is None:
                    self._start_zygote()
                elif self.ahead and not self.resumed:
                    self.resume(conftest_dirs)
                assert self.control is not None
                with contextlib.suppress(OSError):  # a zygote that already died: seen in the loop
                    self.control.send(MessageKind.Plan, self.plan)
                self._loop()
            except KeyboardInterrupt:
                self.interrupted = "KeyboardInterrupt"
                self.aborted = True
            finally:
                with contextlib.suppress(OSError):  # shown before the session's teardown
                    self.reporter.flush()
                self._end_session()
            # The outcome is known once the zygote's pytest session ended: the run is reported
            # while the zygote exits. (A zygote that never got ready is reaped first, for its
            # exit code; an aborted run's is ended first.)
            if not self.zygote_ready or self.aborted:
                self._reap_zygote()
            summary = self._summary()
            self.reporter.on_run_finished(summary)
        finally:
            try:
                self._reap_zygote()
            finally:
                restore()
                self._close()
        return summary

    def _summary(self) -> RunSummary:
        """What happened in the run, once its session ended."""
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
            plugin_report=str(self.session_end.get("report") or ""),
            plugin_failures=int(self.session_end.get("failures") or 0),
            plugin_exit_status=self._plugin_exit_status(),
        )
        if self.decide_exit is not None:
            summary.exit_code = self.decide_exit(summary)
        return summary

    def _plugin_exit_status(self) -> int:
        """The exit status a plugin set in the zygote's session finish, if it changed it."""
        end = self.session_end
        final = int(end.get("final_exitstatus") or 0)
        return final if final != int(end.get("exitstatus") or 0) else 0

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
                elif isinstance(key.data, str):
                    self._on_debug(key.data)
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

    def _close(self) -> None:
        self._close_debug()
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
