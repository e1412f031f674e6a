"""The NDJSON reporter: the run as a stream of events, one orjson object per line.

Each event is written and flushed as it happens, so a consumer reading the pipe sees a test the
moment it finishes. Every event has an ``event`` field naming it; the fields of each are
specified by the JSON Schema shipped in the package (``tach/reporter/events.schema.json``,
:func:`schema`) and documented in ``docs/outputs.md``:

``run_start``, ``collect_error``, ``unit_start``, ``test_start``, ``test_finished``,
``unit_finished``, ``warning``, ``worker_crash``, ``run_finished``.

Every event of a run carries ``t``: seconds since the run began (the supervisor's start, before
the zygote is forked), so that a consumer can draw the run's timeline (``tach report``,
:mod:`tach.reporter.html`). The same events can go to a function instead of a stream
(``sink``): ``--report-html`` collects them in memory that way.

``test_finished`` carries the merged status (pass, fail, skip, xfail, xpass, error) and the
phase that decided it. A test whose teardown error arrives after it was reported (the teardown
of a fixture the worker held) is reported again with its new status: the last
``test_finished`` of an id is its outcome.

:data:`SCHEMA_VERSION` changes whenever a field is removed or changes meaning; adding a field
does not change it (consumers must ignore fields they do not know).
"""

from __future__ import annotations

import os
import re
import sys
import time
from collections.abc import Callable, Sequence
from importlib import resources
from typing import IO, Any

import orjson

from tach import __version__
from tach.reporter.failure_line import failure_line
from tach.results import Locations, TestResult
from tach.scheduler import RunSummary, Unit

#: Where a reporter with a ``sink`` sends each event (an ``{"event": name, ...}`` object).
Sink = Callable[[dict[str, Any]], None]

SCHEMA_VERSION = 2
#: Longest stdout/stderr text kept per test in an event (its head and its tail are kept).
OUTPUT_LIMIT = 64 * 1024
SCHEMA_FILE = "events.schema.json"


def schema() -> dict[str, Any]:
    """The JSON Schema every event of the stream conforms to."""
    text = resources.files("tach.reporter").joinpath(SCHEMA_FILE).read_bytes()
    return orjson.loads(text)


def bounded(text: str, limit: int = OUTPUT_LIMIT) -> str:
    """``text``, or its head and tail (``limit`` characters in all) around a note of how much
    was dropped: a flood keeps its beginning and its end."""
    if len(text) <= limit:
        return text
    half = limit // 2
    return f"{text[:half]}\n[... {len(text) - 2 * half} characters dropped ...]\n{text[-half:]}"


def captured(report: dict[str, Any] | None, stream: str) -> str:
    """What a test wrote to ``stream`` (stdout or stderr) in all its phases, bounded."""
    if not report:
        return ""
    text = "".join(
        content
        for title, content in report.get("sections", ())
        if title.startswith(f"Captured {stream}")
    )
    return bounded(text)


def skip_reason(report: dict[str, Any]) -> str:
    """Why a test or a module was skipped (the reason alone, as pytest's ``-rs`` shows it)."""
    longrepr = report.get("longrepr")
    if isinstance(longrepr, list | tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr or "")


def short_message(result: TestResult, report: dict[str, Any] | None) -> str:
    """One line or so saying why: the exception's message, the skip or xfail reason."""
    if report is None:
        return ""
    status = result.status
    if status in ("xfail", "xpass"):
        return str(report.get("wasxfail", "")).removeprefix("reason: ")
    if status == "skip":
        return skip_reason(report)
    if status in ("fail", "error"):
        longrepr = report.get("longrepr")
        if isinstance(longrepr, dict):
            crash = longrepr.get("reprcrash")
            if isinstance(crash, dict) and crash.get("message") is not None:
                return str(crash["message"])
        return first_line(str(report.get("longreprtext") or longrepr or ""))
    return ""


def first_line(text: str) -> str:
    """The first line of ``text`` that is not blank ("" when there is none)."""
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


class JsonReporter:
    """Writes the event stream to ``stream`` (stdout by default), or hands each event to
    ``sink``; ``origin`` (a ``time.perf_counter()`` value: the run's start, or a function
    giving it) makes every event carry ``t``, the seconds since then. A function is asked at
    each event, because a ``--watch`` run's supervisor, made ahead of the run, starts its clock
    again when its run begins."""

    def __init__(
        self,
        stream: IO[bytes] | None = None,
        *,
        locations: Locations | None = None,
        expected_tests: int = 0,
        sink: Sink | None = None,
        origin: float | Callable[[], float] | None = None,
    ) -> None:
        self.sink = sink
        self.origin = origin
        self.stream: IO[bytes] | None = None
        if sink is None:
            self.stream = stream if stream is not None else sys.stdout.buffer
        self.locations = locations if locations is not None else Locations()
        #: Tests static discovery found (``run_start``'s ``count``); set once the run is planned.
        self.expected = expected_tests
        #: ``tach --watch``: ``{"cycle": N}`` for ``run_finished``, once ``run_start`` said it.
        self.cycle: dict[str, int] = {}
        #: The run's rootdir (``run_start``), which the files of the events are relative to.
        self.rootdir: str | None = None

    def emit(self, event: str, **fields: Any) -> None:
        origin = self.origin
        if origin is not None:
            start = origin() if callable(origin) else origin
            fields["t"] = round(time.perf_counter() - start, 6)
        if self.sink is not None:
            self.sink({"event": event, **fields})
            return
        stream = self.stream
        if stream is None:
            return
        try:
            stream.write(orjson.dumps({"event": event, **fields}) + b"\n")
            stream.flush()
        except BrokenPipeError:
            # The reader went away (``tach --format=json | head``): the run goes on, and the
            # other reports (JUnit XML, the summary on stderr) are still written.
            self.stream = None
            if stream is sys.stdout.buffer:
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, sys.stdout.fileno())  # nothing left to fail at exit
                os.close(devnull)

    def on_run_start(self, info: dict[str, Any]) -> None:
        # tach --watch: the run's number in the watch session, and what changed; --shard;
        # --changed-since: what changed since the revision, and what that selects
        watch = {
            key: info[key]
            for key in ("cycle", "changed", "warm", "shard", "changed_since")
            if key in info
        }
        self.cycle = {"cycle": watch["cycle"]} if "cycle" in watch else {}
        self.rootdir = info.get("rootdir")
        self.emit(
            "run_start",
            **watch,
            schema_version=SCHEMA_VERSION,
            count=info.get("count", self.expected),
            workers=info.get("workers"),
            isolation=info.get("isolation"),
            rootdir=info.get("rootdir"),
            tach_version=__version__,
            pytest_version=info.get("pytest_version"),
            python=info.get("python"),
            report_header=info.get("report_header") or [],
        )

    def on_collected(
        self, unit: Unit, ids: Sequence[str], errors: Sequence[dict[str, Any]]
    ) -> None:
        for report in errors:
            nodeid = str(report.get("nodeid") or unit.id)
            file = nodeid.split("::")[0]
            if report.get("outcome") == "skipped":  # a module-level pytest.skip(...)
                self.emit(
                    "test_finished",
                    id=nodeid,
                    file=file,
                    line=None,
                    status="skip",
                    when="collect",
                    duration_ms=round((report.get("duration") or 0.0) * 1000, 3),
                    message=skip_reason(report),
                    longrepr="",
                    stdout="",
                    stderr="",
                    worker=report.get("slot", -1),
                    pid=report.get("pid", 0),
                )
                continue
            self.emit(
                "collect_error",
                id=nodeid,
                file=file,
                line=_collect_error_line(report, file),
                message=str(report.get("longreprtext") or report.get("longrepr") or ""),
            )

    def on_unit(self, event: str, unit: Unit, worker: int) -> None:
        """``unit_start`` (a worker was given a unit: it collects, then runs its tests) or
        ``unit_finished`` (the worker is done with it, or died in it)."""
        self.emit(event, unit=unit.id, worker=worker)

    def on_test_start(self, result: TestResult) -> None:
        file, line = self.locations.of(result.id)
        self.emit(
            "test_start", id=result.id, file=file, line=line, worker=result.slot, pid=result.pid
        )

    def on_report(self, result: TestResult, report: dict[str, Any]) -> None:
        crash = report.get("crash")
        if isinstance(crash, dict):
            self.emit(
                "worker_crash",
                id=result.id,
                worker=result.slot,
                pid=crash.get("pid") or result.pid,
                phase=crash.get("phase") or report.get("when"),
                status=crash.get("status"),
                message=first_line(str(crash.get("reason") or report.get("longreprtext") or "")),
            )

    def on_test_finished(self, result: TestResult) -> None:
        deciding = result.deciding_report()
        last = next((r for r in reversed(result.reports) if "sections" in r), deciding)
        file, line = self.locations.of(result.id, deciding)
        failed = result.status in ("fail", "error")
        # only a failure has one; left out of the other tests' events (64,000 a run)
        where = {"failure_line": failure_line(deciding, file, self.rootdir)} if failed else {}
        self.emit(
            "test_finished",
            id=result.id,
            file=file,
            line=line,
            status=result.status,
            when=result.when,
            duration_ms=round(result.duration * 1000, 3),
            message=short_message(result, deciding),
            longrepr=str((deciding or {}).get("longreprtext") or "") if failed else "",
            stdout=captured(last, "stdout"),
            stderr=captured(last, "stderr"),
            worker=result.slot,
            pid=result.pid,
            **where,
        )

    def on_warning(self, warning: dict[str, Any]) -> None:
        self.emit(
            "warning",
            message=str(warning.get("message", "")),
            category=str(warning.get("category", "")),
            filename=warning.get("filename"),
            lineno=warning.get("lineno"),
            when=warning.get("when"),
            nodeid=warning.get("nodeid") or "",
        )

    def on_record(self, record: dict[str, Any]) -> None:
        pass

    def on_terminal_text(self, text: dict[str, Any]) -> None:
        pass  # terminal text, as pytest's: not an event

    def on_debug(self, event: dict[str, Any]) -> None:
        common = {"id": event["id"], "worker": event["slot"], "pid": event["pid"]}
        if event["event"] == "debug_start":
            self.emit("debug_start", **common, where=event["where"], how=event["how"])
        else:
            self.emit("debug_end", **common, duration_ms=round(event["duration"] * 1000, 3))

    def flush(self) -> None:
        pass  # every event is flushed as it is written

    def on_run_finished(self, summary: RunSummary) -> None:
        counts = dict.fromkeys(("pass", "fail", "skip", "xfail", "xpass", "error"), 0)
        for result in summary.results.values():
            if result.status is not None:
                counts[result.status] += 1
        self.emit(
            "run_finished",
            **self.cycle,
            passed=counts["pass"],
            failed=counts["fail"],
            skipped=counts["skip"]
            + sum(1 for r in summary.collect_errors if r.get("outcome") == "skipped"),
            xfailed=counts["xfail"],
            xpassed=counts["xpass"],
            errors=counts["error"]
            + sum(1 for r in summary.collect_errors if r.get("outcome") == "failed"),
            duration_ms=round(summary.duration * 1000, 3),
            exit_code=summary.exit_code,
            not_run=len(summary.not_run),
            deselected=summary.deselected,
            interrupted=summary.interrupted,
            plugin_report=summary.plugin_report,
        )


def _collect_error_line(report: dict[str, Any], file: str) -> int | None:
    """The 1-based line of ``file`` a collection error points at (a syntax error's), if any."""
    text = str(report.get("longreprtext") or report.get("longrepr") or "")
    name = re.escape(file.rsplit("/", 1)[-1])
    found = re.findall(rf'{name}", line (\d+)|{name}:(\d+)', text)
    if not found:
        return None
    quoted, colon = found[-1]
    return int(quoted or colon)
