"""The NDJSON reporter: one orjson object per line, flushed per event.

Events: ``run_start``, ``collect_error``, ``test_start``, ``test_finished``, ``warning``,
``run_finished``. ``test_finished`` carries the merged status (pass, fail, skip, xfail, xpass,
error) and the phase that decided it. A test whose teardown error arrives after it was reported
(the teardown of a fixture the worker held) is reported again with its new status.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import IO, Any

import orjson

from tach import __version__
from tach.results import TestResult
from tach.scheduler import RunSummary, Unit

SCHEMA_VERSION = 1
#: Longest stdout/stderr text kept per test in an event.
OUTPUT_LIMIT = 64 * 1024


def _captured(report: dict[str, Any] | None, stream: str) -> str:
    if not report:
        return ""
    text = "".join(
        content
        for title, content in report.get("sections", ())
        if title.startswith(f"Captured {stream}")
    )
    if len(text) <= OUTPUT_LIMIT:
        return text
    half = OUTPUT_LIMIT // 2  # a flood keeps its head and its tail, and says what was dropped
    return f"{text[:half]}\n[... {len(text) - 2 * half} characters dropped ...]\n{text[-half:]}"


def skip_reason(report: dict[str, Any]) -> str:
    longrepr = report.get("longrepr")
    if isinstance(longrepr, list | tuple) and len(longrepr) == 3:
        return str(longrepr[2])
    return str(longrepr or "")


class JsonReporter:
    """Writes the event stream to ``stream`` (stdout by default)."""

    def __init__(self, stream: IO[bytes] | None = None) -> None:
        self.stream = stream if stream is not None else sys.stdout.buffer

    def emit(self, event: str, **fields: Any) -> None:
        self.stream.write(orjson.dumps({"event": event, **fields}) + b"\n")
        self.stream.flush()

    def on_run_start(self, info: dict[str, Any]) -> None:
        self.emit(
            "run_start",
            schema_version=SCHEMA_VERSION,
            workers=info.get("workers"),
            isolation=info.get("isolation"),
            rootdir=info.get("rootdir"),
            tach_version=__version__,
            pytest_version=info.get("pytest_version"),
            python=info.get("python"),
        )

    def on_collected(
        self, unit: Unit, ids: Sequence[str], errors: Sequence[dict[str, Any]]
    ) -> None:
        for report in errors:
            if report.get("outcome") == "skipped":  # a module-level pytest.skip(...)
                self.emit(
                    "test_finished",
                    id=report.get("nodeid"),
                    file=report.get("nodeid", "").split("::")[0],
                    line=None,
                    status="skip",
                    when="collect",
                    duration_ms=0.0,
                    message=skip_reason(report),
                )
                continue
            self.emit(
                "collect_error",
                id=report.get("nodeid"),
                file=report.get("nodeid", "").split("::")[0],
                message=report.get("longreprtext") or str(report.get("longrepr") or ""),
            )

    def on_test_start(self, result: TestResult) -> None:
        self.emit("test_start", id=result.id, worker=result.slot, pid=result.pid)

    def on_report(self, result: TestResult, report: dict[str, Any]) -> None:
        pass

    def on_test_finished(self, result: TestResult) -> None:
        deciding = result.deciding_report()
        call = next((r for r in result.reports if r.get("when") == "call"), deciding)
        location = (deciding or {}).get("location") or [None, None, None]
        self.emit(
            "test_finished",
            id=result.id,
            file=location[0],
            line=location[1] + 1 if isinstance(location[1], int) else None,
            status=result.status,
            when=result.when,
            duration_ms=round(result.duration * 1000, 3),
            message=(deciding or {}).get("longreprtext", "")
            if result.status in ("fail", "error")
            else "",
            stdout=_captured(call, "stdout"),
            stderr=_captured(call, "stderr"),
            worker=result.slot,
            pid=result.pid,
        )

    def on_warning(self, warning: dict[str, Any]) -> None:
        self.emit("warning", **warning)

    def on_run_finished(self, summary: RunSummary) -> None:
        counts = {status: 0 for status in ("pass", "fail", "skip", "xfail", "xpass", "error")}
        for result in summary.results.values():
            if result.status is not None:
                counts[result.status] += 1
        self.emit(
            "run_finished",
            passed=counts["pass"],
            failed=counts["fail"],
            skipped=counts["skip"]
            + sum(1 for r in summary.collect_errors if r.get("outcome") == "skipped"),
            xfailed=counts["xfail"],
            xpassed=counts["xpass"],
            errors=counts["error"]
            + sum(1 for r in summary.collect_errors if r.get("outcome") == "failed"),
            duration_ms=round(summary.duration * 1000, 3),
            not_run=len(summary.not_run),
            interrupted=summary.interrupted,
        )
