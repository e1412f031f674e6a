"""What ``tach report`` and ``--report-html`` show, gathered from the NDJSON events of a run.

:class:`RunModel` takes the events one at a time (:meth:`RunModel.add`), from a file or from a
running :class:`tach.reporter.json.JsonReporter`, and keeps only what the report shows: the
run's ``run_start`` and ``run_finished``, each test's last outcome (compactly: a run may have
64,000 tests), the full events of failures and errors, and the spans of the timeline.

The timeline has one lane per worker slot, and per shard and worker slot in a stream
``tach merge`` wrote (its events carry ``shard``), plus one lane per shard for the run itself:
the serial start-up from ``t`` = 0 (the supervisor's start) until the first worker is given a
unit, and the wind-down after the last unit. Units (``unit_start`` .. ``unit_finished``) and
tests (``test_start``, lasting ``duration_ms``) are spans on their worker's lane. A stream
written before events carried ``t`` has no timeline; the rest of the report is the same.
"""

from __future__ import annotations

import bisect
import dataclasses
import heapq
from typing import Any

#: Statuses from the worst: a unit takes the worst status of its tests.
SEVERITY = ("error", "fail", "xpass", "skip", "xfail", "pass")

#: A lane: (shard, worker slot); worker ``RUN_LANE`` is the run's own lane of its shard.
Lane = tuple[int, int]
RUN_LANE = -1


@dataclasses.dataclass(slots=True)
class Span:
    """One bar of the timeline."""

    lane: Lane
    start: float
    end: float
    #: ``test``, ``unit``, ``startup`` (before the first unit) or ``winddown`` (after the last).
    kind: str
    label: str
    #: A test's status; a unit's, the worst of its tests' (None: it ran none).
    status: str | None = None
    #: A unit's tests, and how many of them failed or had an error.
    tests: int = 0
    failed: int = 0


@dataclasses.dataclass(slots=True)
class TestRow:
    """A test's last outcome, as the slowest-tests table and the counts need it."""

    id: str
    status: str
    duration_ms: float
    file: str
    line: int | None
    worker: int
    shard: int


class RunModel:
    """A run's events, reduced to what its report shows."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Forget every event taken (a ``--watch`` stream's next run begins)."""
        self.start: dict[str, Any] | None = None
        self.finish: dict[str, Any] | None = None
        self.tests: dict[str, TestRow] = {}
        #: The last ``test_finished`` of each failed or errored test, by id (in failing order).
        self.failures: dict[str, dict[str, Any]] = {}
        self.collect_errors: list[dict[str, Any]] = []
        #: ``worker_crash`` events by test id: what the failure's process died of.
        self.crashes: dict[str, dict[str, Any]] = {}
        self.warnings = 0
        self.events = 0
        #: Each test's ``(lane, t)`` of its ``test_start`` (by shard and id) and its span.
        self._started: dict[tuple[int, str], tuple[Lane, float]] = {}
        self._test_spans: dict[tuple[int, str], Span] = {}
        self._open_units: dict[Lane, tuple[str, float]] = {}
        self.units: list[Span] = []
        #: The first time a worker was given work, the last time one finished, per shard.
        self._first_work: dict[int, float] = {}
        self._last_work: dict[int, float] = {}
        self.last_t = 0.0

    # -- taking events ------------------------------------------------------------------------

    def add(self, event: dict[str, Any]) -> None:
        """Take the next event of the stream (unknown events and fields are ignored)."""
        # called twice per test of a run (64,000 tests: 128,000 calls): exact type checks
        # (a bool is no time nor shard) rather than isinstance and helpers
        self.events += 1
        kind = event.get("event")
        t = event.get("t")
        if t.__class__ is float or t.__class__ is int:
            if t > self.last_t:
                self.last_t = t
        else:
            t = None
        shard = event.get("shard", 0)
        if shard.__class__ is not int:
            shard = 0
        if kind == "test_finished":
            self._test_finished(event, shard)
        elif kind == "test_start":
            if t is not None:
                lane = (shard, _int(event.get("worker"), 0))
                self._started[shard, str(event.get("id"))] = (lane, t)
                self._work(shard, t)
        elif kind == "unit_start" and t is not None:
            lane = (shard, _int(event.get("worker"), 0))
            self._close_unit(lane, t)
            self._open_units[lane] = (str(event.get("unit", "")), t)
            self._work(shard, t)
        elif kind == "unit_finished" and t is not None:
            lane = (shard, _int(event.get("worker"), 0))
            self._close_unit(lane, t)
            self._last_work[shard] = max(self._last_work.get(shard, t), t)
        elif kind == "run_start":
            if self.start is not None and event.get("cycle"):
                self.reset()  # a --watch stream: its last run is the one shown
                self.events = 1
            self.start = self.start or event
        elif kind == "run_finished":
            self.finish = event
        elif kind == "collect_error":
            self.collect_errors.append(event)
        elif kind == "worker_crash":
            self.crashes[str(event.get("id"))] = event
            span = self._test_spans.get((shard, str(event.get("id"))))
            if span is not None and t is not None:
                span.end = max(span.end, t)
        elif kind == "warning" and event.get("category") != "TachWarning":
            self.warnings += 1

    def _work(self, shard: int, t: float) -> None:
        if t < self._first_work.get(shard, float("inf")):
            self._first_work[shard] = t

    def _close_unit(self, lane: Lane, t: float) -> None:
        opened = self._open_units.pop(lane, None)
        if opened is not None:
            unit, start = opened
            self.units.append(Span(lane, start, max(t, start), "unit", unit))

    def _test_finished(self, event: dict[str, Any], shard: int) -> None:
        test_id = str(event.get("id", ""))
        status = str(event.get("status", ""))
        duration_ms = float(event.get("duration_ms") or 0.0)
        line = event.get("line")
        self.tests[test_id] = TestRow(
            test_id,
            status,
            duration_ms,
            str(event.get("file") or ""),
            line if line.__class__ is int else None,
            _int(event.get("worker"), -1),
            shard,
        )
        if status in ("fail", "error"):
            self.failures.pop(test_id, None)  # a late teardown error: it moves to the end
            self.failures[test_id] = event
        else:
            self.failures.pop(test_id, None)
        key = (shard, test_id)
        span = self._test_spans.get(key)
        if span is not None:  # reported again (a teardown error that came late)
            span.status = status
            span.end = max(span.end, span.start + duration_ms / 1000)
            return
        started = self._started.pop(key, None)
        if started is None:
            return  # no test_start with a time: a module skipped at import, an older stream
        lane, start = started
        end = start + duration_ms / 1000
        crash = self.crashes.get(test_id)
        if crash is not None and isinstance(crash.get("t"), int | float):
            end = max(end, float(crash["t"]))  # a test whose process died ran until it died
        span = Span(lane, start, end, "test", test_id, status)
        self._test_spans[key] = span
        self._last_work[shard] = max(self._last_work.get(shard, end), end)

    # -- what the report shows ----------------------------------------------------------------

    @property
    def has_timeline(self) -> bool:
        """Whether the events carried times (streams of older versions do not)."""
        return bool(self._first_work)

    @property
    def duration(self) -> float:
        """The run's seconds: ``run_finished``'s, else the last time an event carried."""
        if self.finish is not None and self.finish.get("duration_ms") is not None:
            return float(self.finish["duration_ms"]) / 1000
        return self.last_t

    def test_spans(self) -> list[Span]:
        """Each test's span; those of a lane never overlap.

        A ``test_start``'s ``t`` is when the supervisor read it from its worker's ring, which
        can be a little after the test began (messages are read in batches), while
        ``duration_ms`` is measured in the test process: a span drawn from the late ``t`` could
        reach into the next test's. A test ended before the next one of its worker began, and
        that one's ``t`` is no earlier than its true start: so a span that would overlap the
        next is moved back to end where the next begins.
        """
        by_lane: dict[Lane, list[Span]] = {}
        for span in self._test_spans.values():
            by_lane.setdefault(span.lane, []).append(span)
        laid: list[Span] = []
        for spans in by_lane.values():
            spans.sort(key=lambda s: s.start)
            following = float("inf")
            for span in reversed(spans):
                if span.end > following:
                    length = span.end - span.start
                    span = dataclasses.replace(span, start=following - length, end=following)
                laid.append(span)
                following = span.start
        return laid

    def unit_spans(self) -> list[Span]:
        """Every unit's span, those still open at the end closed there, each with its tests'
        count and worst status."""
        end = self.duration
        spans = list(self.units)
        spans += [
            Span(lane, start, max(end, start), "unit", unit)
            for lane, (unit, start) in self._open_units.items()
        ]
        by_lane: dict[Lane, list[Span]] = {}
        for test in self.test_spans():
            by_lane.setdefault(test.lane, []).append(test)
        starts: dict[Lane, list[float]] = {}
        for lane, tests in by_lane.items():
            tests.sort(key=lambda s: s.start)
            starts[lane] = [s.start for s in tests]
        spans.sort(key=lambda s: (s.lane, s.start))
        for unit in spans:
            tests, times = by_lane.get(unit.lane, []), starts.get(unit.lane, [])
            inside = tests[
                bisect.bisect_left(times, unit.start) : bisect.bisect_right(times, unit.end)
            ]
            unit.tests = len(inside)
            unit.failed = sum(1 for s in inside if s.status in ("fail", "error"))
            statuses = {s.status for s in inside}
            unit.status = next((s for s in SEVERITY if s in statuses), None)
        return spans

    def run_spans(self) -> list[Span]:
        """Each shard's start-up (from 0 until a worker is first given work) and wind-down
        (after the last unit until the run ends)."""
        spans = []
        end = self.duration
        for shard, first in sorted(self._first_work.items()):
            lane = (shard, RUN_LANE)
            started = (self.start or {}).get("t") if not shard else None
            label = "start-up: the zygote starts pytest (plugins, conftests, configure) while "
            label += "discovery plans the run, then the workers are forked"
            if isinstance(started, int | float) and 0 < started < first:
                label += f" (pytest configured at {started:.3f} s)"
            spans.append(Span(lane, 0.0, first, "startup", label))
            last = self._last_work.get(shard, first)
            if end > last:
                label = "wind-down: the workers' and the session's teardown, the summary"
                spans.append(Span(lane, last, end, "winddown", label))
        return spans

    def lanes(self) -> list[Lane]:
        """Every lane, in drawing order: by shard, the run's lane, then the workers."""
        lanes = {(shard, RUN_LANE) for shard in self._first_work}
        lanes.update(span.lane for span in self.units)
        lanes.update(self._open_units)
        lanes.update(span.lane for span in self._test_spans.values())
        return sorted(lanes)

    def slowest(self, count: int) -> list[TestRow]:
        return heapq.nlargest(count, self.tests.values(), key=lambda row: row.duration_ms)

    def counts(self) -> dict[str, int]:
        """The tests by status (the last outcome of each)."""
        counts = dict.fromkeys(SEVERITY, 0)
        for row in self.tests.values():
            if row.status in counts:
                counts[row.status] += 1
        return counts


def _int(value: Any, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default
