"""GitHub Actions: failures as workflow-command annotations, and a Markdown job summary.

``tach --format=github`` keeps the terminal report on stdout (the job's log is still read) and,
once the run is over, adds one line per failure that GitHub turns into an annotation on the
file and line of the failure::

    ::error file=tests/test_a.py,line=12,title=tests/test_a.py%3A%3Atest_b::assert 1 == 2%0A...

and, when ``GITHUB_STEP_SUMMARY`` names a file, appends a Markdown summary of the run to it (the
summary line, the exit code, a table of the failures, the slowest tests).

Everything here is built from the NDJSON events of ``tach --format=json``
(:class:`GithubRun` is fed them one by one), so a live run (:class:`GithubReporter`, which
makes the events as :class:`~tach.reporter.json.JsonReporter` does and keeps them instead of
writing them) and ``tach merge --format=github`` (the merged stream of all the shards) give the
same report by the same code.
"""

from __future__ import annotations

import os
import re
import secrets
import sys
from collections.abc import Iterable, Mapping
from pathlib import PurePath
from typing import IO, Any

import orjson

from tach.reporter import EXIT_MEANINGS
from tach.reporter.json import JsonReporter, bounded
from tach.results import Locations, Stats, format_duration, summary_line
from tach.scheduler import RunSummary

#: The longest annotation message: GitHub truncates long ones, and a log of 50 annotations of
#: a whole traceback each would bury the report. The traceback keeps its head and its tail.
MESSAGE_LIMIT = 4096
#: The short message ahead of the traceback (an assertion's diff can be long).
SHORT_LIMIT = 1024
#: Error annotations written at most: GitHub shows 10 per step and 50 per job; the job
#: summary's table and the terminal report name the rest.
ERROR_LIMIT = 50
#: Warning annotations written at most (GitHub shows 10 per step).
WARNING_LIMIT = 10
#: Rows of the job summary's failure table, and of its slowest tests.
SUMMARY_FAILURES = 50
SUMMARY_SLOWEST = 10
#: Tests quicker than this are not among the slowest (pytest's ``--durations`` hides them too).
SLOW_MS = 5.0
#: A table cell's message is its first line, cut to this many characters.
CELL_LIMIT = 200

#: ``run_finished``'s counts -> the categories of pytest's summary line.
_COUNTS = {
    "failed": "failed",
    "passed": "passed",
    "skipped": "skipped",
    "xfailed": "xfailed",
    "xpassed": "xpassed",
    "errors": "error",
    "deselected": "deselected",
}
_OUTCOME = {
    "pass": "passed",
    "fail": "failed",
    "error": "error",
    "skip": "skipped",
    "xfail": "xfailed",
    "xpass": "xpassed",
}


# -- workflow commands ------------------------------------------------------------------------


def escape_data(text: str) -> str:
    """A workflow command's message, escaped as GitHub's runner unescapes it."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    """A workflow command's property value: as a message, and ``:`` and ``,`` too (they
    separate the properties from each other and from the message)."""
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def workflow_command(command: str, message: str, **properties: str | int | None) -> str:
    """``::command key=value,...::message``, properties that are ``None`` left out."""
    given = ",".join(
        f"{key}={escape_property(str(value))}"
        for key, value in properties.items()
        if value is not None
    )
    return f"::{command}{' ' + given if given else ''}::{escape_data(message)}"


# -- Markdown ---------------------------------------------------------------------------------

_PUNCTUATION = re.compile(r"([!-/:-@\[-`{-~])")


def md_text(text: str) -> str:
    """``text`` as literal Markdown on one line: every ASCII punctuation character
    backslash-escaped (which CommonMark allows for all of them), line breaks made spaces."""
    return _PUNCTUATION.sub(r"\\\1", " ".join(text.splitlines()))


def md_code(text: str) -> str:
    """``text`` as an inline code span that can stand in a table cell: one line, ``|``
    escaped (GitHub's tables split cells on it even inside code), a fence longer than any run
    of backticks inside, padded with spaces when the text starts or ends with one."""
    text = " ".join(text.splitlines()).replace("|", "\\|")
    if not text.strip():
        return ""
    runs = re.findall(r"`+", text)
    fence = "`" * (max(map(len, runs), default=0) + 1)
    pad = " " if runs else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _cell(text: str) -> str:
    first = next((line.strip() for line in text.splitlines() if line.strip()), "")
    if len(first) > CELL_LIMIT:
        first = first[: CELL_LIMIT - 3] + "..."
    return md_code(first)


# -- the run ----------------------------------------------------------------------------------


class GithubRun:
    """A run as the GitHub report needs it, built from its NDJSON events (:meth:`feed`)."""

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self.start: dict[str, Any] = {}
        self.finish: dict[str, Any] | None = None
        #: The last ``test_finished`` of each test id (the one that is its outcome).
        self.tests: dict[str, dict[str, Any]] = {}
        self.collect_errors: list[dict[str, Any]] = []
        #: pytest's warnings (Tach's own, ``TachWarning``, are not counted by pytest either).
        self.warnings: list[dict[str, Any]] = []

    @classmethod
    def from_lines(cls, lines: Iterable[bytes | str]) -> GithubRun:
        """The run of an NDJSON stream (blank lines skipped)."""
        run = cls()
        for line in lines:
            if line.strip():
                run.feed(orjson.loads(line))
        return run

    def feed(self, event: Mapping[str, Any]) -> None:
        kind = event.get("event")
        if kind == "run_start":
            self._reset()  # a --watch cycle starts afresh
            self.start = dict(event)
        elif kind == "test_finished":
            self.tests[str(event.get("id"))] = dict(event)
        elif kind == "collect_error":
            self.collect_errors.append(dict(event))
        elif kind == "warning" and event.get("category") != "TachWarning":
            self.warnings.append(dict(event))
        elif kind == "run_finished":
            self.finish = dict(event)

    @property
    def exit_code(self) -> int | None:
        code = (self.finish or {}).get("exit_code")
        return code if isinstance(code, int) else None

    def failures(self) -> list[dict[str, Any]]:
        """The failed and errored tests, in the order of their files and lines."""
        failed = [e for e in self.tests.values() if e.get("status") in ("fail", "error")]
        return sorted(
            failed, key=lambda e: (str(e.get("file") or ""), e.get("line") or 0, str(e["id"]))
        )

    def path(self, file: str, workspace: str | None) -> str | None:
        """``file`` (relative to the rootdir, or absolute) relative to ``workspace`` (the
        repository's root, ``GITHUB_WORKSPACE``), else to the rootdir; ``None`` when it lies
        outside both (a warning from an installed package)."""
        rootdir = self.start.get("rootdir")
        full = os.path.normpath(os.path.join(rootdir or os.getcwd(), file))
        for base in (workspace, rootdir):
            if not base:
                continue
            try:
                relative = os.path.relpath(full, base)
            except ValueError:  # another drive
                continue
            if relative != os.pardir and not relative.startswith(os.pardir + os.sep):
                return PurePath(relative).as_posix()
        return None

    # -- annotations

    def annotations(self, workspace: str | None = None) -> list[str]:
        """The workflow commands of the run: an ``error`` per collection error and per failed
        or errored test (at the line of the failure in its file, else of its ``def``), a
        ``warning`` per distinct warning, an ``error`` when the run ended on an internal or
        usage error or an interruption; each kind capped, with a plain line saying how many
        more there were."""
        errors = [self._collect_error(e, workspace) for e in self.collect_errors]
        errors += [self._failure(e, workspace) for e in self.failures()]
        code = self.exit_code
        if code in (2, 3, 4):
            reason = (self.finish or {}).get("interrupted")
            said = f": {reason}" if reason else ""
            errors.append(
                workflow_command(
                    "error",
                    f"tach exited with code {code} ({EXIT_MEANINGS[code]}){said}; see the log",
                    title="tach",
                )
            )
        lines = _capped(errors, ERROR_LIMIT, "errors")
        seen: set[tuple[Any, ...]] = set()
        warnings = []
        for warning in self.warnings:
            key = tuple(warning.get(k) for k in ("category", "message", "filename", "lineno"))
            if key not in seen:
                seen.add(key)
                warnings.append(self._warning(warning, workspace))
        return lines + _capped(warnings, WARNING_LIMIT, "warnings")

    def _failure(self, event: dict[str, Any], workspace: str | None) -> str:
        file = str(event.get("file") or "")
        short = bounded(str(event.get("message") or "").strip(), SHORT_LIMIT)
        if event.get("status") == "error":
            phase = f"error at {event.get('when') or 'setup'}"
            short = f"{phase}: {short}" if short else phase
        report = str(event.get("longrepr") or "").rstrip().lstrip("\n")
        if report.strip() == str(event.get("message") or "").strip():
            report = ""  # a crash's report is its message: once is enough
        message = short + (f"\n\n{bounded(report, MESSAGE_LIMIT)}" if report else "")
        line = event.get("failure_line") or event.get("line")
        return workflow_command(
            "error",
            message or str(event.get("status")),
            file=(self.path(file, workspace) or file) if file else None,
            line=line,
            title=str(event["id"]),
        )

    def _collect_error(self, event: dict[str, Any], workspace: str | None) -> str:
        file = str(event.get("file") or "")
        report = str(event.get("message") or "").rstrip()
        short = collect_error_message(report)
        message = f"collection error: {short}" if short else "collection error"
        return workflow_command(
            "error",
            message + (f"\n\n{bounded(report, MESSAGE_LIMIT)}" if report else ""),
            file=(self.path(file, workspace) or file) if file else None,
            line=event.get("line"),
            title=str(event.get("id") or file),
        )

    def _warning(self, event: dict[str, Any], workspace: str | None) -> str:
        filename = str(event.get("filename") or "")
        path = self.path(filename, workspace) if filename else None
        message = bounded(str(event.get("message") or ""), MESSAGE_LIMIT)
        if filename and path is None:  # not in the repository: say where, unlinked
            message += f"\n\n{filename}:{event.get('lineno')}"
        if event.get("nodeid"):
            message += f"\n\n{event['nodeid']}"
        return workflow_command(
            "warning",
            message,
            file=path,
            line=event.get("lineno") if path else None,
            title=str(event.get("category") or "warning"),
        )

    # -- job summary

    def stats(self) -> Stats:
        finish = self.finish or {}
        stats = Stats()
        for key, category in _COUNTS.items():
            stats.counts[category] = int(finish.get(key) or 0)
        stats.counts["warnings"] = len(self.warnings)
        return stats

    def summary(self, workspace: str | None = None) -> str:
        """The job summary: a Markdown document ending with a newline."""
        finish = self.finish or {}
        seconds = float(finish.get("duration_ms") or 0.0) / 1000
        out = [f"### Tests: {summary_line(self.stats(), seconds)}", ""]
        facts = []
        code = self.exit_code
        if code is not None:
            facts.append(f"exit code {code} ({EXIT_MEANINGS.get(code, 'unknown')})")
        shard = self.start.get("shard")
        if isinstance(shard, dict):
            facts.append(f"shard {shard.get('index')}/{shard.get('total')}")
        if self.start.get("merged"):
            facts.append(f"{self.start['merged']} shards merged")
        if finish.get("interrupted"):
            facts.append(f"interrupted: {md_text(str(finish['interrupted']))}")
        if finish.get("not_run"):
            facts.append(f"{finish['not_run']} not run")
        if facts:
            text = "; ".join(facts)
            out += [text[0].upper() + text[1:], ""]
        rows = self._failure_rows(workspace)
        if rows:
            out += ["| Outcome | Test | Location | Message |", "| --- | --- | --- | --- |"]
            out += rows[:SUMMARY_FAILURES]
            if len(rows) > SUMMARY_FAILURES:
                out.append(f"\nand {len(rows) - SUMMARY_FAILURES} more")
            out.append("")
        slowest = sorted(
            (e for e in self.tests.values() if float(e.get("duration_ms") or 0) >= SLOW_MS),
            key=lambda e: (-float(e.get("duration_ms") or 0), str(e["id"])),
        )[:SUMMARY_SLOWEST]
        if slowest:
            out += [
                f"**Slowest {len(slowest)} test{'s' if len(slowest) > 1 else ''}**",
                "",
                "| Duration | Test | Outcome |",
                "| ---: | --- | --- |",
            ]
            for event in slowest:
                duration = format_duration(float(event["duration_ms"]) / 1000)
                outcome = _OUTCOME.get(str(event.get("status")), str(event.get("status")))
                out.append(f"| {duration} | {md_code(str(event['id']))} | {outcome} |")
            out.append("")
        return "\n".join(out)

    def _failure_rows(self, workspace: str | None) -> list[str]:
        rows = []
        for event in self.collect_errors:
            file = str(event.get("file") or "")
            where = self._where(file, event.get("line"), workspace)
            report = collect_error_message(str(event.get("message") or ""))
            rows.append(
                f"| collection error | {md_code(str(event.get('id')))} | {where} | "
                f"{_cell(report)} |"
            )
        for event in self.failures():
            file = str(event.get("file") or "")
            where = self._where(file, event.get("failure_line") or event.get("line"), workspace)
            outcome = _OUTCOME[str(event["status"])]
            rows.append(
                f"| {outcome} | {md_code(str(event['id']))} | {where} | "
                f"{_cell(str(event.get('message') or ''))} |"
            )
        return rows

    def _where(self, file: str, line: Any, workspace: str | None) -> str:
        if not file:
            return ""
        path = self.path(file, workspace) or file
        return md_code(f"{path}:{line}" if line else path)


def collect_error_message(report: str) -> str:
    """The short text of a collection error's report: its last ``E`` line (the exception, as
    pytest shows it), else its last line."""
    lines = [line for line in report.splitlines() if line.strip()]
    errors = [line[1:].strip() for line in lines if line.startswith("E ")]
    return errors[-1] if errors else (lines[-1].strip() if lines else "")


def _capped(lines: list[str], limit: int, what: str) -> list[str]:
    if len(lines) <= limit:
        return lines
    more = len(lines) - limit
    return [*lines[:limit], f"tach: {more} more {what} not annotated (see the report above)"]


# -- writing ----------------------------------------------------------------------------------


def publish(
    run: GithubRun,
    out: IO[str],
    environ: Mapping[str, str] | None = None,
    err: IO[str] | None = None,
    summary: bool = True,
) -> None:
    """Write the run's annotations to ``out`` and append its job summary (unless not
    ``summary``) to the file ``GITHUB_STEP_SUMMARY`` names, if it names one. A summary that
    cannot be written is said on ``err`` and does not change the run's exit code: the tests'
    outcome is what counts."""
    environ = environ if environ is not None else os.environ
    workspace = environ.get("GITHUB_WORKSPACE") or None
    lines = run.annotations(workspace)
    if lines:
        out.write("\n".join(lines) + "\n")
        out.flush()
    target = environ.get("GITHUB_STEP_SUMMARY")
    if target and summary:
        try:
            append_summary(target, run.summary(workspace))
        except OSError as exc:
            (err or sys.stderr).write(
                f"tach: cannot write the job summary to {target}: {exc.strerror or exc}\n"
            )


def append_summary(path: str, markdown: str) -> None:
    """Append ``markdown`` to the file at ``path``, after what other steps wrote there (never
    truncated), a blank line between."""
    with open(path, "a+b") as file:
        size = file.seek(0, os.SEEK_END)
        if size:
            file.seek(size - 1)
            markdown = ("\n" if file.read(1) == b"\n" else "\n\n") + markdown
        file.write(markdown.encode("utf-8"))  # in append mode: at the end, wherever we read


class GithubReporter(JsonReporter):
    """``--format=github``: the events of :class:`JsonReporter`, kept in a
    :class:`GithubRun` instead of written, and published when the run finishes (the terminal
    report, a reporter of its own, is over by then: the commands stand on lines of their own)."""

    def __init__(
        self,
        out: IO[str] | None = None,
        *,
        locations: Locations | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(locations=locations)
        self.stream = None  # nothing is written as NDJSON
        self.out = out if out is not None else sys.stdout
        self.environ = environ
        self.run = GithubRun()
        # The terminal report shows what tests print: a line of a test's output that looks
        # like a workflow command (``::error ...``, ``::add-mask::``) must not be one. The
        # runner reads no command until the token, written just before the annotations.
        self.token = secrets.token_hex(16)
        self.out.write(f"::stop-commands::{self.token}\n")
        self.out.flush()

    def emit(self, event: str, **fields: Any) -> None:
        self.run.feed({"event": event, **fields})

    def on_run_finished(self, summary: RunSummary) -> None:
        super().on_run_finished(summary)
        self.out.write(f"::{self.token}::\n")  # workflow commands again
        # --co runs no test: its collection errors are annotated, but there is no run to sum up
        publish(self.run, self.out, self.environ, summary=not summary.collect_only)
