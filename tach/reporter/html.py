"""The run as one self-contained HTML page, made from its NDJSON event stream.

``tach report RUN.ndjson -o report.html`` reads a stream (a run's, or one ``tach merge``
wrote); ``tach --report-html PATH`` (:class:`HtmlReporter`) collects the same events in memory
while the run goes on — the JSON reporter's events, handed to a :class:`RunModel` instead of
being written — and writes the page when the run ends, also when tests failed or the run was
interrupted. One mechanism: the page is always :func:`render` of a :class:`RunModel` of events.

The page has the summary (pytest's closing line, the exit code, the run's settings), each
failure and error as a ``<details>`` holding its report and captured output, the slowest tests,
and the timeline (:mod:`tach.reporter.timeline`) as inline SVG. Nothing in it loads anything:
its CSS and script are inline and a Content-Security-Policy allows only those two (by hash),
so text from the tests (escaped everywhere) can never run or fetch.
"""

from __future__ import annotations

import base64
import hashlib
import html
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import orjson

from tach import __version__
from tach.reporter import EXIT_MEANINGS
from tach.reporter.html_assets import SCRIPT, STYLE
from tach.reporter.json import JsonReporter, bounded
from tach.reporter.timeline import RUN_LANE, Lane, RunModel, Span
from tach.results import Locations, Stats, summary_line
from tach.scheduler import RunSummary, write_atomically

#: Tests drawn as bars of their own at most; beyond, the timeline draws units only (a run of
#: 64,000 tests as 64,000 SVG elements made a page of tens of megabytes that a browser
#: struggles to draw, where one bar per unit shows the balance of the workers as well).
MAX_TEST_BARS = 5000
#: Failures shown with their whole report; beyond, the rest are listed by id and message.
MAX_DETAILED_FAILURES = 200
#: Characters of a failure's report kept (its head and its tail).
LONGREPR_LIMIT = 64 * 1024
SLOWEST = 20

#: Status -> the word pytest's summary uses.
STATUS_WORDS = {
    "pass": "PASSED",
    "fail": "FAILED",
    "error": "ERROR",
    "skip": "SKIPPED",
    "xfail": "XFAIL",
    "xpass": "XPASS",
}

# The timeline's geometry, in SVG user units (the SVG scales to the page's width).
LABEL_WIDTH = 170
CHART_WIDTH = 1000
LANE_HEIGHT = 22
AXIS_HEIGHT = 24


class ReportError(Exception):
    """A stream cannot be made into a report; ``code`` is the exit code to give."""

    def __init__(self, message: str, code: int = 4) -> None:
        super().__init__(message)
        self.code = code


def esc(value: Any) -> str:
    """``value`` as HTML text (attribute-safe: quotes escaped too)."""
    return html.escape(str(value), quote=True)


# -- reading a stream -------------------------------------------------------------------------


def read_events(path: str) -> Iterator[dict[str, Any]]:
    """The events of the NDJSON file at ``path``; :class:`ReportError` naming the file when it
    cannot be read, and the line when one is not an event of ``tach --format=json``."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise ReportError(f"{path}: no such file") from None
    except OSError as exc:
        raise ReportError(f"{path}: {exc.strerror or exc}") from None
    return events_of(data, path)


def events_of(data: bytes, name: str) -> Iterator[dict[str, Any]]:
    """The events of NDJSON ``data`` (``name``: what error messages call it)."""
    for number, line in enumerate(data.splitlines(), 1):
        if not line.strip():
            continue
        try:
            event = orjson.loads(line)
        except orjson.JSONDecodeError:
            event = None
        if not isinstance(event, dict) or not isinstance(event.get("event"), str):
            shown = line[:80].decode("utf-8", "replace")
            raise ReportError(
                f"{name}:{number}: not an event of tach --format=json (a JSON object with an "
                f"'event' field): {shown!r}"
            )
        yield event


def model_of(events: Iterable[dict[str, Any]]) -> RunModel:
    model = RunModel()
    for event in events:
        model.add(event)
    return model


def run_report(
    paths: Sequence[str],
    output: str,
    combine: Callable[[Sequence[str]], bytes] | None = None,
    err: Any = None,
) -> int:
    """``tach report``: the page of the stream at ``paths[0]``, or of the shards' streams
    ``paths`` put together by ``combine`` (``tach merge``'s merge), written to ``output``;
    0 once written, else :class:`ReportError`'s exit code with its message."""
    import sys

    err = err if err is not None else sys.stderr
    try:
        if len(paths) > 1:
            if combine is None:
                raise ReportError("several streams given, and no way to merge them")
            events = events_of(combine(paths), "the merged stream")
        else:
            events = read_events(paths[0])
        model = model_of(events)
        if model.start is None and model.finish is None:
            raise ReportError(f"{paths[0]}: no run_start nor run_finished: not a run's stream")
        page = render(model).encode("utf-8")
    except ReportError as exc:
        err.write(f"ERROR: tach report: {exc}\n")
        return exc.code
    try:
        write_atomically(Path(output), page)
    except OSError as exc:
        err.write(f"ERROR: tach report: cannot write {output}: {exc.strerror or exc}\n")
        return 4
    err.write(f"tach: report written to {output} ({len(page):,} bytes)\n")
    return 0


# -- during a run -----------------------------------------------------------------------------


class HtmlReporter(JsonReporter):
    """``--report-html PATH``: the JSON reporter's events, collected in a :class:`RunModel`
    rather than written, and the page written when the run ends."""

    def __init__(
        self,
        path: str,
        *,
        locations: Locations | None = None,
        origin: float | Callable[[], float] | None = None,
    ) -> None:
        self.model = RunModel()
        self.path = Path(path)
        super().__init__(locations=locations, sink=self.model.add, origin=origin)

    def on_run_finished(self, summary: RunSummary) -> None:
        super().on_run_finished(summary)
        if summary.zygote_exit_code is not None:
            return  # pytest stopped before its session began: no run to show (as JUnit XML)
        write_atomically(self.path, render(self.model).encode("utf-8"))


# -- the page ---------------------------------------------------------------------------------


def _csp_hash(text: str) -> str:
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return "'sha256-" + base64.b64encode(digest).decode("ascii") + "'"


def render(model: RunModel) -> str:
    """The whole page."""
    title = f"Tach report: {summary_text(model)}"
    policy = (
        f"default-src 'none'; style-src {_csp_hash(STYLE)}; script-src {_csp_hash(SCRIPT)}; "
        "img-src data:"
    )
    failures = len(model.failures) + len(model.collect_errors)
    parts = [
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n',
        f'<meta http-equiv="Content-Security-Policy" content="{esc(policy)}">\n',
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n',
        f"<title>{esc(title)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n",
        header(model),
        f'<nav><a href="#failures">Failures and errors ({failures})</a> · '
        '<a href="#slowest">Slowest tests</a> · <a href="#timeline">Timeline</a></nav>\n',
        failures_section(model),
        slowest_section(model),
        timeline_section(model),
        f"<footer>tach {esc(__version__)}</footer>\n<script>{SCRIPT}</script>\n</body>\n</html>\n",
    ]
    return "".join(parts)


def summary_text(model: RunModel) -> str:
    """pytest's closing line of the run: ``1 failed, 3 passed in 0.52s``."""
    stats = Stats()
    finish = model.finish
    if finish is not None:
        keys = ("passed", "failed", "skipped", "xfailed", "xpassed")
        for key in keys:
            stats.counts[key] = int(finish.get(key) or 0)
        stats.counts["error"] = int(finish.get("errors") or 0)
        stats.counts["deselected"] = int(finish.get("deselected") or 0)
    else:
        counts = model.counts()
        for status, key in (
            ("pass", "passed"),
            ("fail", "failed"),
            ("skip", "skipped"),
            ("xfail", "xfailed"),
            ("xpass", "xpassed"),
            ("error", "error"),
        ):
            stats.counts[key] = counts[status]
        stats.counts["error"] += len(model.collect_errors)
    stats.counts["warnings"] = model.warnings
    return summary_line(stats, model.duration)


def header(model: RunModel) -> str:
    start, finish = model.start or {}, model.finish
    failed = finish is None or finish.get("exit_code") not in (0, 5, None)
    rows: list[tuple[str, str]] = []
    if finish is None:
        rows.append(("run", "the stream has no run_finished: the run did not finish"))
    else:
        code = finish.get("exit_code")
        rows.append(("exit code", f"{code} ({EXIT_MEANINGS.get(code, 'unknown')})"))
        if finish.get("interrupted"):
            rows.append(("interrupted", str(finish["interrupted"])))
        if finish.get("not_run"):
            rows.append(("not run", f"{finish['not_run']} tests"))
    rows.append(("duration", f"{model.duration:.2f} s"))
    shard = start.get("shard")
    if isinstance(shard, dict):
        rows.append(("shard", f"{shard.get('index')} of {shard.get('total')}"))
    if start.get("merged"):
        rows.append(("merged", f"{start['merged']} shards (tach merge)"))
    for key, name in (
        ("workers", "workers"),
        ("isolation", "isolation"),
        ("count", "tests expected"),
        ("rootdir", "rootdir"),
        ("python", "python"),
        ("pytest_version", "pytest"),
        ("tach_version", "tach"),
    ):
        if start.get(key) is not None:
            rows.append((name, str(start[key])))
    if start.get("cycle"):
        rows.append(("watch cycle", str(start["cycle"])))
    table = "".join(f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in rows)
    extra = "".join(f"<li>{esc(line)}</li>" for line in start.get("report_header") or [])
    plugin = (finish or {}).get("plugin_report") or ""
    return (
        "<header>\n<h1>Tach report</h1>\n"
        f'<p class="summary {"bad" if failed else "good"}">{esc(summary_text(model))}</p>\n'
        f'<table class="facts">{table}</table>\n'
        + (f'<ul class="plugin-header">{extra}</ul>\n' if extra else "")
        + (
            f"<details><summary>Plugins' report</summary><pre>{esc(plugin)}</pre></details>\n"
            if plugin
            else ""
        )
        + "</header>\n"
    )


def failures_section(model: RunModel) -> str:
    items: list[str] = []
    number = 0
    for error in model.collect_errors:
        number += 1
        where = error.get("file") or ""
        if error.get("line"):
            where += f":{error['line']}"
        items.append(
            _details(
                number,
                "ERROR collecting",
                str(error.get("id", "")),
                where,
                "",
                [("Report", str(error.get("message") or ""))],
            )
        )
    listed: list[str] = []
    for test_id, event in model.failures.items():
        number += 1
        status = str(event.get("status"))
        word = STATUS_WORDS.get(status, status.upper())
        if number > MAX_DETAILED_FAILURES:
            listed.append(
                f'<li><span class="badge s-{esc(status)}">{esc(word)}</span> '
                f"<code>{esc(test_id)}</code> {esc(event.get('message') or '')}</li>"
            )
            continue
        where = f"{event.get('file') or ''}:{event.get('line')}" if event.get("line") else ""
        phase = event.get("when")
        if status == "error" and phase in ("setup", "teardown"):
            word = f"ERROR at {phase}"
        blocks = [("Traceback", bounded(str(event.get("longrepr") or ""), LONGREPR_LIMIT))]
        crash = model.crashes.get(test_id)
        if crash is not None:
            blocks.insert(0, ("Process died", str(crash.get("message") or "")))
        blocks += [("Captured stdout", str(event.get("stdout") or ""))]
        blocks += [("Captured stderr", str(event.get("stderr") or ""))]
        items.append(
            _details(number, word, test_id, where, str(event.get("message") or ""), blocks)
        )
    if not items:
        body = '<p class="none">No failures and no errors.</p>\n'
    else:
        body = (
            '<p><button type="button" data-toggle="open">Expand all</button> '
            '<button type="button" data-toggle="close">Collapse all</button></p>\n' + "".join(items)
        )
    if listed:
        body += (
            f"<p>{len(listed)} more, without their reports (the first "
            f"{MAX_DETAILED_FAILURES} are shown in full):</p>\n<ul>" + "".join(listed) + "</ul>\n"
        )
    count = len(model.failures) + len(model.collect_errors)
    return f'<section id="failures">\n<h2>Failures and errors ({count})</h2>\n{body}</section>\n'


def _details(
    number: int,
    word: str,
    test_id: str,
    where: str,
    message: str,
    blocks: list[tuple[str, str]],
) -> str:
    status = "error" if word.startswith("ERROR") else "fail"
    shown = "".join(
        f'<h3>{esc(title)}</h3>\n<pre class="{"longrepr" if title == "Traceback" else "output"}">'
        f"{esc(text)}</pre>\n"
        for title, text in blocks
        if text
    )
    first = message.strip().splitlines()[0] if message.strip() else ""
    return (
        f'<details class="failure" id="f-{number}" data-test="{esc(test_id)}">'
        f'<summary><span class="badge s-{status}">{esc(word)}</span> '
        f"<code>{esc(test_id)}</code>"
        + (f' <span class="where">{esc(where)}</span>' if where else "")
        + (f' <span class="message">{esc(first)}</span>' if first else "")
        + f"</summary>\n{shown}</details>\n"
    )


def slowest_section(model: RunModel) -> str:
    rows = model.slowest(SLOWEST)
    if not rows:
        none = '<p class="none">No tests ran.</p>\n'
        return f'<section id="slowest">\n<h2>Slowest tests</h2>\n{none}</section>\n'
    sharded = any(row.shard for row in rows)
    head = "<tr><th>seconds</th><th>status</th><th>test</th><th>where</th><th>worker</th>"
    head += "<th>shard</th></tr>" if sharded else "</tr>"
    body = []
    for row in rows:
        where = f"{row.file}:{row.line}" if row.line else row.file
        cells = (
            f'<td class="num">{row.duration_ms / 1000:.3f}</td>'
            f'<td><span class="badge s-{esc(row.status)}">'
            f"{esc(STATUS_WORDS.get(row.status, row.status))}</span></td>"
            f"<td><code>{esc(row.id)}</code></td><td>{esc(where)}</td>"
            f'<td class="num">{row.worker}</td>'
        )
        if sharded:
            cells += f'<td class="num">{row.shard}</td>'
        body.append(f"<tr>{cells}</tr>")
    return (
        f'<section id="slowest">\n<h2>Slowest tests ({len(rows)} of {len(model.tests)})</h2>\n'
        f'<table class="slowest">{head}{"".join(body)}</table>\n</section>\n'
    )


# -- the timeline -----------------------------------------------------------------------------


def timeline_section(model: RunModel) -> str:
    intro = (
        "<p>One lane per worker"
        + (" of each shard" if any(lane[0] for lane in model.lanes()) else "")
        + ", and the run's own lane: its serial start-up from the start of the run until the "
        "first worker is given a unit, and its wind-down after the last. Each unit (a test "
        "module: its collection, its tests and its fixtures' teardown) is a pale bar, each test "
        "a bar inside it, coloured by outcome; hover for the name and duration, click a "
        "failure to see its report.</p>\n"
    )
    if not model.has_timeline:
        note = (
            '<p class="none">This stream carries no times (it was written by an older version '
            "of Tach): no timeline.</p>\n"
        )
        return f'<section id="timeline">\n<h2>Timeline</h2>\n{note}</section>\n'
    tests = model.test_spans()
    note = ""
    if len(tests) > MAX_TEST_BARS:
        grouped = group_tests(tests, max(model.duration, 1e-3) / CHART_WIDTH)
        note = (
            f'<p class="note">{len(tests):,} tests: the tests of a worker that ran one after '
            "the other with the same outcome, less than a pixel apart, are drawn as one bar "
            f"({len(grouped):,} bars).</p>\n"
        )
        tests = grouped
        if len(grouped) > MAX_TEST_BARS:
            note = (
                f'<p class="note">{len(tests):,} tests: drawn as their units only (tests get '
                f"bars up to {MAX_TEST_BARS:,}); a unit's colour is its worst outcome.</p>\n"
            )
            tests = []
    legend = "".join(
        f'<span class="key s-{status}"></span>{word.lower()} '
        for status, word in STATUS_WORDS.items()
    )
    legend += '<span class="key startup"></span>start-up, wind-down'
    return (
        f'<section id="timeline">\n<h2>Timeline</h2>\n{intro}{note}'
        f'<p class="legend">{legend}</p>\n<div class="chart" id="timeline-chart">'
        f"{timeline_svg(model, tests)}</div>\n</section>\n"
    )


def group_tests(tests: list[Span], pixel: float) -> list[Span]:
    """``tests`` with each run of consecutive tests of a lane that have the same status and
    less than ``pixel`` seconds between them made one span (``kind`` ``tests``): a run of
    64,000 tests is drawn with a few bars per pixel of its lanes, its gaps (a unit's
    collection, a slow fixture) and its failures still where they were."""
    grouped: list[Span] = []
    last: Span | None = None
    for span in sorted(tests, key=lambda s: (s.lane, s.start)):
        if (
            last is not None
            and span.lane == last.lane
            and span.status == last.status
            and span.start - last.end < pixel
        ):
            last.end = max(last.end, span.end)
            last.tests += 1
            last.label = f"{last.label.split(' … ')[0]} … {span.label}"
            continue
        last = Span(span.lane, span.start, span.end, "tests", span.label, span.status, tests=1)
        grouped.append(last)
    for span in grouped:
        if span.tests == 1:
            span.kind = "test"
    return grouped


def timeline_svg(model: RunModel, tests: list[Span]) -> str:
    """The timeline as inline SVG: the axis, the lanes' labels and every span."""
    lanes = model.lanes()
    row = {lane: index for index, lane in enumerate(lanes)}
    total = max(model.duration, 1e-3)  # run_finished's: the same in every page of the run
    scale = CHART_WIDTH / total
    height = AXIS_HEIGHT + LANE_HEIGHT * len(lanes) + 4
    width = LABEL_WIDTH + CHART_WIDTH + 10
    out = [
        f'<svg class="timeline" viewBox="0 0 {width} {height}" width="{width}" '
        f'height="{height}" role="img" aria-label="timeline of the run">'
    ]
    sharded = any(lane[0] for lane in lanes)
    for lane, index in row.items():
        y = AXIS_HEIGHT + index * LANE_HEIGHT
        if index % 2:
            out.append(
                f'<rect class="stripe" x="0" y="{y}" width="{width}" height="{LANE_HEIGHT}"/>'
            )
        out.append(
            f'<text class="lane" x="{LABEL_WIDTH - 6}" y="{y + LANE_HEIGHT - 7}">'
            f"{esc(_lane_name(lane, sharded))}</text>"
        )
    out.append(_axis(total, scale, height))
    anchors = {
        test_id: n for n, test_id in enumerate(model.failures, len(model.collect_errors) + 1)
    }
    for span in model.run_spans():
        out.append(_bar(span, row, scale, 2, LANE_HEIGHT - 4, span.kind, _span_title(span)))
    units_only = not tests
    for span in model.unit_spans():
        kind = f"unit s-{span.status}" if span.status else "unit"
        if not units_only:
            kind += " pale"
        out.append(_bar(span, row, scale, 2, LANE_HEIGHT - 4, kind, _span_title(span)))
    for span in tests:
        bar = _bar(
            span, row, scale, 6, LANE_HEIGHT - 12, f"test s-{span.status}", _span_title(span)
        )
        number = anchors.get(span.label)
        if number is not None and number <= MAX_DETAILED_FAILURES:
            bar = f'<a href="#f-{number}">{bar}</a>'
        out.append(bar)
    out.append("</svg>")
    return "".join(out)


def _lane_name(lane: Lane, sharded: bool) -> str:
    shard, worker = lane
    name = "run" if worker == RUN_LANE else f"worker {worker}"
    return f"shard {shard} · {name}" if sharded else name


def _bar(
    span: Span, row: dict[Lane, int], scale: float, inset: int, height: int, kind: str, title: str
) -> str:
    x = LABEL_WIDTH + span.start * scale
    w = max((span.end - span.start) * scale, 0.6)
    y = AXIS_HEIGHT + row[span.lane] * LANE_HEIGHT + inset
    return (
        f'<rect class="{esc(kind)}" x="{x:.2f}" y="{y}" width="{w:.2f}" height="{height}">'
        f"<title>{esc(title)}</title></rect>"
    )


def _span_title(span: Span) -> str:
    seconds = f"{span.end - span.start:.3f} s"
    if span.kind == "test":
        return f"{span.label}\n{STATUS_WORDS.get(span.status or '', span.status)} in {seconds}"
    if span.kind == "tests":
        word = STATUS_WORDS.get(span.status or "", span.status)
        return f"{span.tests} tests: {span.label}\n{word}, {seconds} (from {span.start:.3f} s)"
    if span.kind == "unit":
        failed = f", {span.failed} failed" if span.failed else ""
        return f"{span.label}\n{seconds}, {span.tests} tests{failed} (from {span.start:.3f} s)"
    return f"{span.label}\n{seconds} (from {span.start:.3f} s)"


def _axis(total: float, scale: float, height: int) -> str:
    step = _tick_step(total)
    ticks = []
    count = int(total / step) + 1
    for n in range(count + 1):
        t = n * step
        if t > total + 1e-9:
            break
        x = LABEL_WIDTH + t * scale
        label = f"{t:g} s" if step >= 1 else f"{t:.{_decimals(step)}f} s"
        ticks.append(
            f'<line class="tick" x1="{x:.2f}" y1="{AXIS_HEIGHT - 4}" x2="{x:.2f}" y2="{height}"/>'
            f'<text class="axis" x="{x:.2f}" y="{AXIS_HEIGHT - 8}">{esc(label)}</text>'
        )
    return "".join(ticks)


def _tick_step(total: float) -> float:
    """A round step (1, 2 or 5 times a power of ten) giving 5 to 10 ticks over ``total``."""
    import math

    raw = total / 8
    power = 10 ** math.floor(math.log10(raw))
    for factor in (1, 2, 5, 10):
        if raw <= factor * power:
            return factor * power
    return 10 * power


def _decimals(step: float) -> int:
    import math

    return max(0, -math.floor(math.log10(step)))
