"""The terminal reporter: pytest's output, made from the reports the workers send.

Progress is a stream of letters (``.`` ``F`` ``E`` ``s`` ``x`` ``X``, as pytest's
``pytest_report_teststatus`` gave them) with a percentage at the end of each line; with ``-v``
one line per test naming its worker and the line of its ``def``. After the run come pytest's
sections in pytest's order — errors, failures, warnings summary, slowest durations, short test
summary — and pytest's exact final line.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Sequence
from typing import IO, Any

from tach import __version__
from tach.results import Locations, Stats, TestResult, format_duration, pluralize
from tach.scheduler import RunSummary, Unit

#: How many tests an interrupted run lists by name as not run.
NOT_RUN_SHOWN = 50
_COLORS = {"red": 31, "green": 32, "yellow": 33, "bold": 1}


def use_color(stream: IO[str], choice: str = "auto") -> bool:
    """pytest's ``--color``: yes, no, or auto (a terminal, unless NO_COLOR is set)."""
    if choice == "yes" or os.environ.get("PY_COLORS") == "1" or os.environ.get("FORCE_COLOR"):
        return True
    if choice == "no" or os.environ.get("PY_COLORS") == "0" or os.environ.get("NO_COLOR"):
        return False
    return stream.isatty() and os.environ.get("TERM") != "dumb"


class HumanReporter:
    """pytest-like terminal output."""

    def __init__(
        self,
        stream: IO[str] | None = None,
        *,
        verbosity: int = 0,
        reportchars: str = "fE",
        durations: int | None = None,
        color: str = "auto",
        showcapture: str = "all",
        expected_tests: int = 0,
        tbstyle: str = "auto",
        locations: Locations | None = None,
    ) -> None:
        self.stream = stream if stream is not None else sys.stdout
        self.verbosity = verbosity
        self.reportchars = expand_reportchars(reportchars)
        self.durations = durations
        self.color = use_color(self.stream, color)
        self.showcapture = showcapture
        self.tbstyle = tbstyle
        self.expected = expected_tests
        self.locations = locations if locations is not None else Locations()
        self.width = shutil.get_terminal_size((80, 24)).columns
        self.column = 0
        self.done = 0
        self.collected = 0

    # -- writing ------------------------------------------------------------------------------

    def markup(self, text: str, *colors: str) -> str:
        if not self.color or not colors:
            return text
        codes = ";".join(str(_COLORS[c]) for c in colors if c in _COLORS)
        return f"\x1b[{codes}m{text}\x1b[0m"

    def write(self, text: str) -> None:
        # Not flushed here: a flush per progress letter is a system call per test in the
        # supervisor. The run flushes before it waits for the next event, and after its last.
        self.stream.write(text)

    def flush(self) -> None:
        self.stream.flush()

    def line(self, text: str = "") -> None:
        if self.column:
            self.write("\n")
            self.column = 0
        self.write(text + "\n")

    def sep(self, char: str, title: str = "", *colors: str) -> None:
        """A separator line as pytest's ``TerminalWriter.sep`` draws it."""
        width = self.width
        if title:
            fill = char * max((width - len(title) - 2) // (2 * len(char)), 1)
            text = f"{fill} {title} {fill}"
        else:
            text = char * (width // len(char))
        if len(text) + len(char.rstrip()) <= width:
            text += char.rstrip()
        self.line(self.markup(text, *colors))

    # -- events -------------------------------------------------------------------------------

    def on_run_start(self, info: dict[str, Any]) -> None:
        if self.verbosity < 0:
            return
        self.sep("=", "test session starts", "bold")
        self.line(
            f"platform {sys.platform} -- Python {info.get('python')}, "
            f"pytest-{info.get('pytest_version')}, tach-{__version__}"
        )
        for line in info.get("report_header") or ():
            self.line(line)
        self.line(f"rootdir: {info.get('rootdir')}")
        if info.get("inifile"):
            self.line(f"configfile: {os.path.relpath(info['inifile'], info.get('rootdir', '.'))}")
        if info.get("plugins"):
            self.line(f"plugins: {', '.join(info['plugins'])}")
        found = (
            f", {self.expected} {pluralize(self.expected, 'test')} found" if self.expected else ""
        )
        workers = info.get("workers")
        plural = "" if workers == 1 else "s"
        shard = info.get("shard")
        of = f", shard {shard['index']}/{shard['total']}" if shard else ""
        self.line(f"tach: {workers} worker{plural}, isolation {info.get('isolation')}{found}{of}")
        if info.get("changed_since"):
            self.changed_since(info["changed_since"])
        self.line()

    def changed_since(self, selection: dict[str, Any]) -> None:
        """``--changed-since``: what changed, and which tests that selects (each file's reason
        with ``-v``, and always the files that make every test run)."""
        base = selection["base"][:12]
        since = f"{selection['ref']} ({'merge base ' if selection['merge_base'] else ''}{base})"
        changed = selection["changed"]
        files = f"{len(changed)} changed file{'' if len(changed) == 1 else 's'}"
        if selection["everything"]:
            path, why = next(iter(selection["everything"].items()))
            more = len(selection["everything"]) - 1
            also = f" (and {more} more)" if more else ""
            self.line(f"tach: changed since {since}: {files}; every test runs: {path}{also}: {why}")
        else:
            self.line(
                f"tach: changed since {since}: {files} select {selection['tests']} of "
                f"{selection['of_tests']} tests, in {selection['modules']} of "
                f"{selection['of_modules']} test files"
            )
        if self.verbosity > 0:
            for path, why in changed.items():
                self.line(f"  {path}: {why}")

    def on_collected(
        self, unit: Unit, ids: Sequence[str], errors: Sequence[dict[str, Any]]
    ) -> None:
        self.collected += len(ids)
        # pytest's count of the unit's tests replaces static discovery's (a dynamic test is
        # many items; a file an ignore rule leaves out is none), so progress ends at 100%.
        self.expected += len(ids) - len(unit.expected)
        for report in errors:
            if report.get("outcome") == "failed":
                self.progress("E", "red")
            elif report.get("outcome") == "skipped":
                self.progress("s", "yellow")

    def on_test_start(self, result: TestResult) -> None:
        pass

    def on_report(self, result: TestResult, report: dict[str, Any]) -> None:
        if self.verbosity > 0:
            return  # -v prints one line per test when it finishes
        category, letter, _ = (report.get("teststatus") or ["", "", ""])[:3]
        if letter:
            self.progress(letter, color_of(category))

    def on_test_finished(self, result: TestResult) -> None:
        self.done += 1
        if self.verbosity <= 0:
            return
        report = result.deciding_report() or {}
        category, _, word = (report.get("teststatus") or ["", "", result.status or ""])[:3]
        word = word or (result.status or "").upper()
        _, line = self.locations.of(result.id, report)
        where = f" (line {line})" if line is not None else ""
        self.line(
            f"[w{result.slot}] {result.id} {self.markup(word, color_of(category))}{where} "
            f"{self.percent()}"
        )

    def on_record(self, record: dict[str, Any]) -> None:
        pass

    def on_debug(self, event: dict[str, Any]) -> None:
        """The session itself was on the terminal; after it, progress starts on a new line."""
        if event.get("event") == "debug_end":
            self.column = 0

    def on_terminal_text(self, text: dict[str, Any]) -> None:
        """Written where pytest writes it: between the progress letters (``--setup-show``'s
        ``SETUP``/``TEARDOWN`` lines and its test line, which the letter then ends)."""
        body = str(text.get("text") or "")
        if self.column == 0 and body.startswith("\n"):
            body = body[1:]  # pytest's writer starts a new line: this one is new already
        if not body:
            return
        if self.verbosity > 0 and not body.endswith("\n"):
            body += "\n"  # -v's own line per test follows
        self.write(body)
        # The progress letter that follows ends the line, as pytest's does: a column of one
        # keeps it from wrapping the line first, and still ends it before the next line.
        if body.endswith("\n"):
            self.column = 0
        else:
            self.column = 1 if "\n" in body else self.column + len(body)

    def on_warning(self, warning: dict[str, Any]) -> None:
        if warning.get("category") == "TachWarning":
            self.line(self.markup(f"tach: warning: {warning['message']}", "yellow"))

    def progress(self, letter: str, color: str) -> None:
        if self.verbosity < -1:
            return
        room = self.width - 7
        if self.column >= room:
            self.write(f" {self.percent()}\n")
            self.column = 0
        self.write(self.markup(letter, color))
        self.column += 1

    def percent(self) -> str:
        total = max(self.expected, self.collected, 1)
        return f"[{min(100, self.done * 100 // total):3d}%]"

    # -- the end ------------------------------------------------------------------------------

    def on_run_finished(self, summary: RunSummary) -> None:
        try:
            self._finish(summary)
        finally:
            self.flush()

    def _finish(self, summary: RunSummary) -> None:
        if summary.zygote_exit_code is not None:
            if self.column:
                self.line()
            self.write(summary.zygote_output)
            return
        if self.column:
            self.done = max(self.done, self.collected)
            self.write(f" {self.percent()}\n")
            self.column = 0
        if summary.collect_only:
            self.collect_only(summary)
        else:
            self.errors(summary)
            self.failures(summary)
        self.warnings_summary(summary.warnings)
        if not summary.collect_only:
            self.passes(summary, "passed", "PASSES", "P")
            self.passes(summary, "xpassed", "XPASSES", "X")
        if self.durations is not None and not summary.collect_only:
            self.slowest(summary)
        if summary.plugin_report:
            self.write(summary.plugin_report)
            if not summary.plugin_report.endswith("\n"):
                self.line()
        self.short_summary(summary)
        for message in summary.usage_errors:
            self.line(self.markup(f"ERROR: {message}", "red"))
        for message in summary.internal_errors:
            self.line(self.markup(f"INTERNALERROR> {message}", "red"))
        if summary.not_run:
            shown = summary.not_run[:NOT_RUN_SHOWN]
            for test_id in shown:
                self.line(f"NOT RUN {test_id}")
            if len(summary.not_run) > len(shown):
                self.line(f"... and {len(summary.not_run) - len(shown)} more")
        if summary.interrupted:
            text = summary.interrupted
            if summary.aborted:
                text += f": {len(summary.not_run)} not run"
            self.sep("!", text, "red")
        self.final_line(summary.stats, summary.duration, summary.collect_only)

    def collect_only(self, summary: RunSummary) -> None:
        for test_id in sorted(summary.results):
            self.line(test_id)
        self.errors(summary)

    def errors(self, summary: RunSummary) -> None:
        entries: list[tuple[str, dict[str, Any]]] = []
        for report in summary.collect_errors:
            if report.get("outcome") == "failed":
                entries.append((f"ERROR collecting {report.get('nodeid')}", report))
        for result in summary.results.values():
            if not result.failed_report:
                continue
            for report in result.reports:
                if (
                    report.get("when") in ("setup", "teardown")
                    and report.get("outcome") == "failed"
                ):
                    name = report.get("head_line") or result.id
                    entries.append((f"ERROR at {report['when']} of {name}", report))
        if not entries:
            return
        self.sep("=", "ERRORS")
        for title, report in entries:
            self.sep("_", title, "red", "bold")
            self.report_body(report)

    def failures(self, summary: RunSummary) -> None:
        failed = [
            report
            for result in summary.results.values()
            if result.failed_report
            for report in result.reports
            if report.get("when") == "call" and report.get("outcome") == "failed"
        ]
        if not failed or self.tbstyle == "no":
            return
        self.sep("=", "FAILURES")
        if self.tbstyle == "line":  # pytest prints only where each test crashed
            for report in failed:
                self.line(crash_line(report))
            return
        for report in failed:
            self.sep("_", report.get("head_line") or report.get("nodeid", ""), "red", "bold")
            self.report_body(report)

    def report_body(self, report: dict[str, Any]) -> None:
        text = report.get("longrepr_terminal") or report.get("longreprtext") or ""
        if text:
            self.line(text.rstrip("\n"))
        self.capture_sections(report)

    def capture_sections(self, report: dict[str, Any], only: str = "") -> None:
        """The report's captured output (``--show-capture``), its sections named ``only``."""
        if self.showcapture == "no":
            return
        for title, content in report.get("sections", ()):
            if self.showcapture != "all" and self.showcapture not in title:
                continue
            if only not in title:
                continue
            self.sep("-", title)
            self.line(content[:-1] if content.endswith("\n") else content)

    def passes(self, summary: RunSummary, category: str, title: str, char: str) -> None:
        """pytest's ``PASSES`` (``-rP``) and ``XPASSES`` (``-rX``): the captured output of each
        test of ``category``, with its teardown's."""
        if self.tbstyle == "no" or char not in self.reportchars:
            return
        shown = [
            (result, report)
            for result in summary.results.values()
            for report in result.reports
            if (report.get("teststatus") or [""])[0] == category
        ]
        if not shown:
            return
        self.sep("=", title)
        for result, report in shown:
            if report.get("sections"):
                self.sep("_", report.get("head_line") or result.id, "green", "bold")
                self.capture_sections(report)
            for teardown in result.reports:
                if teardown.get("when") == "teardown":
                    self.capture_sections(teardown, only="teardown")

    def warnings_summary(self, warnings: Sequence[dict[str, Any]]) -> None:
        shown = [w for w in warnings if w.get("category") != "TachWarning"]
        if not shown or self.verbosity < -1:
            return
        self.sep("=", "warnings summary", "yellow")
        grouped: dict[str, list[str]] = {}
        for warning in shown:
            where = f"{warning.get('filename')}:{warning.get('lineno')}"
            text = f"{where}: {warning.get('category')}: {warning.get('message')}"
            grouped.setdefault(text, []).append(warning.get("nodeid") or "")
        for text, nodeids in grouped.items():
            names = [n for n in dict.fromkeys(nodeids) if n]
            for name in names[:10]:
                self.line(name)
            if len(names) > 10:
                self.line(f"  ... and {len(names) - 10} more")
            self.line("  " + text.replace("\n", "\n  "))
            self.line()
        self.line("-- Docs: https://docs.pytest.org/en/stable/how-to/capture-warnings.html")

    def slowest(self, summary: RunSummary) -> None:
        rows = [
            (report.get("duration", 0.0), report.get("when", ""), result.id)
            for result in summary.results.values()
            for report in result.reports
            if report.get("when") in ("setup", "call", "teardown")
        ]
        rows.sort(reverse=True)
        count = self.durations or len(rows)
        title = "slowest durations" if not self.durations else f"slowest {count} durations"
        self.sep("=", title)
        shown = [row for row in rows[:count] if row[0] >= 0.005 or self.verbosity >= 2]
        for seconds, when, test_id in shown:
            self.line(f"{seconds:.2f}s {when:<8} {test_id}")
        if len(shown) < min(count, len(rows)):
            self.line()
            hidden = min(count, len(rows)) - len(shown)
            self.line(f"({hidden} durations < 0.005s hidden.  Use -vv to show these durations.)")

    def short_summary(self, summary: RunSummary) -> None:
        """pytest's "short test summary info", in the order of the ``-r`` characters."""
        lines: list[str] = []
        results = list(summary.results.values())
        for char in self.reportchars:
            if char == "E":
                lines += [
                    f"{self.markup('ERROR', 'red')} {rep.get('nodeid')}"
                    for rep in summary.collect_errors
                    if rep.get("outcome") == "failed"
                ]
            if char == "s":
                lines += skipped_lines(results, summary.collect_errors, self)
            elif char in SHORT_SUMMARY:
                word, color, status, detail = SHORT_SUMMARY[char]
                lines += [
                    f"{self.markup(word, color)} {r.id}{detail(r)}"
                    for r in results
                    if r.status == status
                ]
        if lines:
            self.sep("=", "short test summary info", "bold")
            for text in lines:
                self.line(text)

    def final_line(self, stats: Stats, seconds: float, collect_only: bool) -> None:
        """pytest's closing line, framed with ``=`` as ``TerminalWriter.sep`` frames it."""
        if self.verbosity < -1:
            return
        parts, main = stats.summary_parts(collect_only)
        duration = f" in {format_duration(seconds)}"
        plain = ", ".join(text for text, _ in parts) + duration
        colored = ", ".join(
            self.markup(text, color, *(("bold",) if color == main else ())) for text, color in parts
        ) + self.markup(duration, main)
        if self.verbosity < 0:
            self.line(colored)
            return
        fill = "=" * max((self.width - len(plain) - 2) // 2, 1)
        tail = fill + ("=" if 2 * len(fill) + len(plain) + 3 <= self.width else "")
        self.line(self.markup(fill + " ", main) + colored + self.markup(" " + tail, main))


def _nothing(result: TestResult) -> str:
    return ""


def expand_reportchars(chars: str) -> str:
    """pytest's ``-r``: ``a`` is ``sxXEf``, ``A`` adds ``p``, ``N`` clears; default ``fE``."""
    result = ""
    for char in chars:
        if char == "a":
            result += "sxXEf"
        elif char == "A":
            result += "PpsxXEf"
        elif char == "N":
            result = ""
        elif char == "w":
            continue
        elif char not in result:
            result += char
    return "".join(dict.fromkeys(result))


def color_of(category: str) -> str:
    if category in ("failed", "error", "subtests failed"):
        return "red"
    if category in ("passed", "subtests passed"):
        return "green"
    return "yellow"


def crash_line(report: dict[str, Any]) -> str:
    """pytest's ``_getcrashline``: ``path:line: message`` of where the test failed."""
    longrepr = report.get("longrepr")
    crash = longrepr.get("reprcrash") if isinstance(longrepr, dict) else None
    if crash:
        return f"{crash.get('path')}:{crash.get('lineno')}: {crash.get('message')}"
    return str(report.get("longreprtext") or longrepr or "")


def crash_message(result: TestResult) -> str:
    report = result.deciding_report() or {}
    longrepr = report.get("longrepr")
    message = None
    if isinstance(longrepr, dict):
        message = (longrepr.get("reprcrash") or {}).get("message")
    elif isinstance(longrepr, str):
        message = longrepr
    if not message:
        return ""
    return " - " + message.splitlines()[0] if message.strip() else ""


def reason(result: TestResult) -> str:
    report = result.deciding_report() or {}
    why = str(report.get("wasxfail", "")).removeprefix("reason: ")
    return f" - {why}" if why else ""


def skipped_lines(
    results: Sequence[TestResult], collect: Sequence[dict[str, Any]], rep: HumanReporter
) -> list[str]:
    """``SKIPPED [N] file:line: reason``, folded as pytest folds them."""
    folded: dict[tuple[str, Any, str], int] = {}
    reports = [r.deciding_report() for r in results if r.status == "skip"]
    reports += [c for c in collect if c.get("outcome") == "skipped"]
    for report in reports:
        longrepr = (report or {}).get("longrepr")
        if isinstance(longrepr, list | tuple) and len(longrepr) == 3:
            path, lineno, text = longrepr
            text = text.removeprefix("Skipped: ")
            key = (str(path), lineno, text)
            folded[key] = folded.get(key, 0) + 1
    lines = []
    for (path, lineno, text), count in folded.items():
        path = os.path.relpath(path) if os.path.isabs(path) else path
        where = f"{path}:{lineno}" if isinstance(lineno, int) else path
        lines.append(f"{rep.markup('SKIPPED', 'yellow')} [{count}] {where}: {text}")
    return lines


#: ``-r`` character -> the word, its colour, the status it lists and what follows the id.
SHORT_SUMMARY = {
    "f": ("FAILED", "red", "fail", crash_message),
    "E": ("ERROR", "red", "error", crash_message),
    "x": ("XFAIL", "yellow", "xfail", reason),
    "X": ("XPASS", "yellow", "xpass", reason),
    "p": ("PASSED", "green", "pass", _nothing),
}
