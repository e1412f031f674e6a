"""``tach merge``: the NDJSON streams of a run's shards (``--shard K/N``) made into one run.

Each shard of a CI matrix writes its stream (``tach --shard K/N --format=json``); a last job
reads them all and writes what one unsharded run would have given: one NDJSON stream (a
single ``run_start`` and ``run_finished``, every other event of every shard, in shard order),
one JUnit XML file, pytest's short test summary and closing line, and the exit code of the
whole run by pytest's rules.

The shards must make a whole run, or the merge fails (exit code 3) naming what is wrong, and
writes nothing: a stream that is missing (``run_start`` says N shards, and not every K of 1..N
was given), given twice, truncated (no ``run_finished``: a job killed, a file cut short), one
that failed to start (no ``run_start``: pytest refused its command line, a conftest did not
import), streams of different N, and a test that ran in two shards (shards planned from
different inputs). A silently smaller total would pass a CI job whose tests never ran.

``tach durations --export FILE [STREAM...]`` (:func:`export_durations`) writes the durations
shards are balanced by: ``.tach/durations.json`` of this checkout, updated with those of the
streams given (a merged run's, or the shards').
"""

from __future__ import annotations

import dataclasses
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import IO, Any

import orjson

from tach.reporter.junit import (
    SHORTENED_SINCE,
    bin_xml_escape,
    mangle_test_address,
    shorten_message,
    version_tuple,
)
from tach.results import Stats, format_duration
from tach.runner import (
    EXIT_INTERNAL_ERROR,
    EXIT_INTERRUPTED,
    EXIT_NO_TESTS,
    EXIT_OK,
    EXIT_TESTS_FAILED,
    EXIT_USAGE_ERROR,
)
from tach.scheduler import write_atomically

#: A test's status -> the category of pytest's summary line.
CATEGORY = {
    "pass": "passed",
    "fail": "failed",
    "skip": "skipped",
    "xfail": "xfailed",
    "xpass": "xpassed",
    "error": "error",
}


class MergeError(Exception):
    """The streams do not make a whole run; the message says which and why."""


class InputError(Exception):
    """A stream named on the command line cannot be read."""


@dataclasses.dataclass
class ShardStream:
    """One shard's stream, read."""

    path: str
    start: dict[str, Any] | None = None
    finish: dict[str, Any] | None = None
    #: Every line but ``run_start`` and ``run_finished``, as written (passed on unchanged).
    lines: list[bytes] = dataclasses.field(default_factory=list)
    #: The last ``test_finished`` of each test id, and the failed collectors.
    tests: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    collect_errors: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    warnings: int = 0

    @property
    def shard(self) -> tuple[int, int] | None:
        shard = (self.start or {}).get("shard")
        if isinstance(shard, dict):
            return int(shard.get("index", 0)), int(shard.get("total", 0))
        return None

    def name(self) -> str:
        shard = self.shard
        return f"{self.path} (shard {shard[0]}/{shard[1]})" if shard else self.path


def read_stream(path: str) -> ShardStream:
    """A shard's NDJSON stream: :class:`InputError` if the file cannot be read,
    :class:`MergeError` if a line is not a JSON event (a stream cut short mid-line)."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: {exc.strerror or exc}") from None
    stream = ShardStream(path)
    tests = stream.tests
    loads = orjson.loads
    for number, line in enumerate(data.splitlines(), 1):
        if not line.strip():
            continue
        try:
            event = loads(line)
            kind = event["event"]
        except (orjson.JSONDecodeError, TypeError, KeyError):
            raise MergeError(
                f"{path}:{number}: not an event of tach --format=json (a stream cut short?)"
            ) from None
        if kind == "test_finished":
            tests[event["id"]] = event
            stream.lines.append(line)
        elif kind == "test_start":
            stream.lines.append(line)
        elif kind == "run_start":
            if stream.start is not None:
                raise MergeError(f"{path}:{number}: a second run_start (two runs in one file?)")
            stream.start = event
        elif kind == "run_finished":
            stream.finish = event
        else:
            if kind == "collect_error":
                stream.collect_errors.append(event)
            elif kind == "warning" and event.get("category") != "TachWarning":
                stream.warnings += 1
            stream.lines.append(line)
    return stream


def check_whole(streams: Sequence[ShardStream]) -> int:
    """The number of shards, once the streams are checked to make a whole run."""
    problems: list[str] = []
    for stream in streams:
        code = (stream.finish or {}).get("exit_code")
        if stream.start is None:
            said = f" (its run_finished says exit code {code})" if stream.finish else ""
            problems.append(f"{stream.path}: no run_start: the shard failed to start{said}")
        elif stream.shard is None:
            problems.append(
                f"{stream.path}: its run_start has no shard: not a run of tach --shard K/N"
            )
        elif stream.finish is None:
            problems.append(
                f"{stream.name()}: no run_finished: the run did not finish (a job killed, "
                "a stream cut short)"
            )
    if problems:
        raise MergeError("\n".join(problems))
    totals = {stream.shard[1] for stream in streams if stream.shard}
    if len(totals) > 1:
        listed = ", ".join(stream.name() for stream in streams)
        raise MergeError(f"the streams are shards of different runs: {listed}")
    total = totals.pop()
    seen: dict[int, ShardStream] = {}
    for stream in streams:
        assert stream.shard is not None
        index = stream.shard[0]
        if index in seen:
            problems.append(
                f"shard {index}/{total} given twice: {seen[index].path} and {stream.path}"
            )
        seen[index] = stream
    missing = [f"{k}/{total}" for k in range(1, total + 1) if k not in seen]
    if missing:
        problems.append(
            f"shard{'s' if len(missing) > 1 else ''} {', '.join(missing)} missing: "
            f"{len(seen)} of {total} streams given"
        )
    if problems:
        raise MergeError("\n".join(problems))
    plans: dict[str, list[ShardStream]] = {}
    for stream in sorted(streams, key=lambda s: s.shard or (0, 0)):
        plan = ((stream.start or {}).get("shard") or {}).get("plan")
        if plan:  # absent from streams of older versions
            plans.setdefault(plan, []).append(stream)
    if len(plans) > 1:
        cuts = "; ".join(", ".join(s.name() for s in group) for group in plans.values())
        raise MergeError(
            f"the shards cut the run differently ({cuts}): a module may have run in no shard. "
            "Plan every shard from the same inputs: the same checkout and arguments, and the "
            "same durations (a committed --durations-file, or one .tach/ restored in every "
            "job)"
        )
    owner: dict[str, ShardStream] = {}
    for stream in streams:
        for test_id in stream.tests:
            other = owner.setdefault(test_id, stream)
            if other is not stream:
                raise MergeError(
                    f"{test_id} ran in {other.name()} and in {stream.name()}: the shards were "
                    "not planned from the same inputs (give every shard the same "
                    "--durations-file, arguments and checkout)"
                )
    return total


@dataclasses.dataclass
class Merged:
    """The whole run the shards make."""

    streams: list[ShardStream]
    stats: Stats
    counts: dict[str, int]
    duration: float
    exit_code: int


def merge(streams: Sequence[ShardStream]) -> Merged:
    """Check the shards' streams and add them up (:class:`MergeError` if they are not a
    whole run). The run's duration is its longest shard's: the shards ran side by side."""
    check_whole(streams)
    ordered = sorted(streams, key=lambda s: s.shard or (0, 0))
    counts = dict.fromkeys(CATEGORY, 0)
    for stream in ordered:
        for event in stream.tests.values():
            status = event.get("status")
            if status in counts:
                counts[status] += 1
    stats = Stats()
    for status, category in CATEGORY.items():
        stats.counts[category] = counts[status]
    collect_failed = sum(len(s.collect_errors) for s in ordered)
    stats.counts["error"] += collect_failed
    stats.counts["warnings"] = sum(s.warnings for s in ordered)
    stats.counts["deselected"] = sum(int((s.finish or {}).get("deselected") or 0) for s in ordered)
    finishes = [s.finish or {} for s in ordered]
    duration = max(float(f.get("duration_ms") or 0.0) for f in finishes) / 1000
    # --changed-since that selected nothing: an empty run is no failure, as unsharded
    selection = (ordered[0].start or {}).get("changed_since") or {}
    nothing_selected = selection.get("modules") == 0 and not selection.get("everything")
    code = whole_exit_code(finishes, stats)
    if code == EXIT_NO_TESTS and nothing_selected:
        code = EXIT_OK
    return Merged(ordered, stats, counts, duration, code)


def whole_exit_code(finishes: Sequence[dict[str, Any]], stats: Stats) -> int:
    """pytest's exit code of the whole run: a shard's usage error (4), internal error (3) or
    interruption (2) first, in that order; then 1 if a test failed or a shard did (a plugin's
    ``--cov-fail-under``); 5 if no shard ran a test; else 0 (also when ``--changed-since``
    selected no test, as :func:`merge` decides)."""
    codes = {f.get("exit_code") for f in finishes}
    if any(f.get("interrupted") for f in finishes):
        codes.add(EXIT_INTERRUPTED)
    for code in (EXIT_USAGE_ERROR, EXIT_INTERNAL_ERROR, EXIT_INTERRUPTED, EXIT_TESTS_FAILED):
        if code in codes:
            return code
    if stats.count("failed") or stats.count("error"):
        return EXIT_TESTS_FAILED
    ran = sum(stats.count(c) for c in CATEGORY.values())
    return EXIT_OK if ran else EXIT_NO_TESTS


# -- outputs ----------------------------------------------------------------------------------


def write_ndjson(merged: Merged, out: IO[bytes]) -> None:
    """One stream: the first shard's ``run_start`` (without ``shard``; ``count`` and
    ``workers`` summed, ``merged``: the number of shards), every shard's other events in
    shard order, each with ``shard``: its shard's K (a merged run's timeline draws each
    shard's workers apart), and one ``run_finished``."""
    streams = merged.streams
    start = dict(streams[0].start or {})
    start.pop("shard", None)
    start["count"] = sum(int((s.start or {}).get("count") or 0) for s in streams)
    start["workers"] = sum(int((s.start or {}).get("workers") or 1) for s in streams)
    start["merged"] = len(streams)
    out.write(orjson.dumps(start) + b"\n")
    for stream in streams:
        if stream.lines:
            field = b',"shard":%d}' % (stream.shard or (0, 0))[0]
            # each line is a JSON object (read_stream parsed it): the field goes in before its
            # closing brace, without parsing and writing again every event of 64,000 tests
            out.write(b"\n".join(line.rstrip()[:-1] + field for line in stream.lines) + b"\n")
    finishes = [s.finish or {} for s in streams]
    stats, counts = merged.stats, merged.counts
    reports = [str(f.get("plugin_report") or "") for f in finishes]
    finish = {
        "event": "run_finished",
        "passed": counts["pass"],
        "failed": counts["fail"],
        "skipped": counts["skip"],
        "xfailed": counts["xfail"],
        "xpassed": counts["xpass"],
        "errors": stats.count("error"),
        "duration_ms": round(merged.duration * 1000, 3),
        "exit_code": merged.exit_code,
        "not_run": sum(int(f.get("not_run") or 0) for f in finishes),
        "interrupted": next((f["interrupted"] for f in finishes if f.get("interrupted")), None),
        "plugin_report": "".join(r if r.endswith("\n") else r + "\n" for r in reports if r),
        "deselected": stats.count("deselected"),
    }
    out.write(orjson.dumps(finish) + b"\n")


def render_junit(merged: Merged, suite_name: str = "pytest") -> bytes:
    """A JUnit XML document of the whole run, as pytest's ``--junitxml`` names and counts
    tests, from what the streams carry: each test's status, phase, message, report and
    duration (no properties, captured output or ``xunit1`` attributes: the streams do not
    carry them; ``tach merge`` of JUnit inputs is not supported)."""
    version = version_tuple(str((merged.streams[0].start or {}).get("pytest_version") or ""))
    shorten = shorten_message if version >= SHORTENED_SINCE else (lambda message: message)
    stats = dict.fromkeys(("error", "failure", "skipped", "passed"), 0)
    cases: list[ET.Element] = []
    for stream in merged.streams:
        for error in stream.collect_errors:
            case = _case(str(error.get("id") or ""), 0.0)
            node = ET.SubElement(case, "error", message="collection failure")
            node.text = bin_xml_escape(error.get("message") or "")
            stats["error"] += 1
            cases.append(case)
        for test_id, event in stream.tests.items():
            case = _case(test_id, float(event.get("duration_ms") or 0.0) / 1000)
            status = event.get("status")
            message = str(event.get("message") or "")
            if status == "fail":
                node = ET.SubElement(case, "failure", message=bin_xml_escape(shorten(message)))
                node.text = bin_xml_escape(event.get("longrepr") or "")
                stats["failure"] += 1
            elif status == "error":
                phase = "teardown" if event.get("when") == "teardown" else "setup"
                text = shorten(f'failed on {phase} with "{message}"')
                node = ET.SubElement(case, "error", message=bin_xml_escape(text))
                node.text = bin_xml_escape(event.get("longrepr") or "")
                stats["error"] += 1
            elif status == "skip":
                node = ET.SubElement(
                    case, "skipped", type="pytest.skip", message=bin_xml_escape(message)
                )
                node.text = bin_xml_escape(f"{event.get('file')}:{event.get('line')}: {message}")
                stats["skipped"] += 1
            elif status == "xfail":
                ET.SubElement(case, "skipped", type="pytest.xfail", message=bin_xml_escape(message))
                stats["skipped"] += 1
            else:
                stats["passed"] += 1
            cases.append(case)
    suite = ET.Element(
        "testsuite",
        name=suite_name,
        errors=str(stats["error"]),
        failures=str(stats["failure"]),
        skipped=str(stats["skipped"]),
        tests=str(sum(stats.values())),
        time=f"{merged.duration:.3f}",
    )
    suite.extend(cases)
    testsuites = ET.Element("testsuites", name="pytest tests")
    testsuites.append(suite)
    text = '<?xml version="1.0" encoding="utf-8"?>' + ET.tostring(testsuites, encoding="unicode")
    return text.encode("utf-8")


def _case(test_id: str, seconds: float) -> ET.Element:
    names = mangle_test_address(test_id)
    return ET.Element(
        "testcase",
        classname=".".join(names[:-1]),
        name=bin_xml_escape(names[-1]),
        time=f"{seconds:.3f}",
    )


def summary_lines(merged: Merged) -> list[str]:
    """pytest's short test summary (``-rfE``: failures and errors) and its closing line."""
    lines: list[str] = []
    for stream in merged.streams:
        lines += [f"ERROR {e.get('id')}" for e in stream.collect_errors]
        for test_id, event in stream.tests.items():
            status = event.get("status")
            if status in ("fail", "error"):
                word = "FAILED" if status == "fail" else "ERROR"
                message = str(event.get("message") or "").strip()
                first = message.splitlines()[0] if message else ""
                lines.append(f"{word} {test_id}" + (f" - {first}" if first else ""))
    if lines:
        lines.insert(0, " short test summary info ".center(80, "="))
    parts, _ = merged.stats.summary_parts()
    closing = ", ".join(text for text, _ in parts) + f" in {format_duration(merged.duration)}"
    fill = "=" * max((80 - len(closing) - 2) // 2, 1)
    tail = fill + ("=" if 2 * len(fill) + len(closing) + 3 <= 80 else "")
    lines.append(f"{fill} {closing} {tail}")
    return lines


def run_merge(
    paths: Sequence[str],
    junit_xml: str | None = None,
    json_out: str | None = None,
    quiet: bool = False,
    out: IO[str] | None = None,
    err: IO[str] | None = None,
    fmt: str = "human",
) -> int:
    """``tach merge``: read, check and merge the shards' streams; write the outputs asked
    for; the whole run's exit code (3 when the shards are not a whole run, 4 when a stream
    cannot be read). ``fmt="github"``: the whole run's GitHub Actions annotations and job
    summary too (:mod:`tach.reporter.github`)."""
    out = out if out is not None else sys.stdout
    err = err if err is not None else sys.stderr
    if fmt == "github" and json_out == "-":
        err.write("ERROR: tach merge: --format=github writes to stdout: give --json a file\n")
        return EXIT_USAGE_ERROR
    try:
        streams = [read_stream(path) for path in paths]
        merged = merge(streams)
    except InputError as exc:
        err.write(f"ERROR: tach merge: {exc}\n")
        return EXIT_USAGE_ERROR
    except MergeError as exc:
        err.write(f"ERROR: tach merge: the shards do not make a whole run:\n{exc}\n")
        return EXIT_INTERNAL_ERROR
    if json_out == "-":
        write_ndjson(merged, sys.stdout.buffer)
        sys.stdout.buffer.flush()
        out = err  # stdout carries the stream alone
    target = ""
    try:
        if json_out is not None and json_out != "-":
            import io

            target = json_out
            buffer = io.BytesIO()
            write_ndjson(merged, buffer)
            write_atomically(Path(json_out), buffer.getvalue())
        if junit_xml is not None:
            target = junit_xml
            write_atomically(Path(junit_xml), render_junit(merged))
    except OSError as exc:
        err.write(f"ERROR: tach merge: cannot write {target}: {exc.strerror or exc}\n")
        return EXIT_USAGE_ERROR
    if not quiet:
        out.write("\n".join(summary_lines(merged)) + "\n")
    if fmt == "github":
        publish_github(merged, out, err)
    return merged.exit_code


def publish_github(merged: Merged, out: IO[str], err: IO[str]) -> None:
    """The annotations and job summary of the whole run, from its merged stream: the same
    code as a live ``tach --format=github`` run's."""
    import io

    from tach.reporter.github import GithubRun, publish

    buffer = io.BytesIO()
    write_ndjson(merged, buffer)
    publish(GithubRun.from_lines(buffer.getvalue().splitlines()), out, err=err)


def export_durations(
    target: Path, rootdir: Path, streams: Iterable[str], err: IO[str] | None = None
) -> int:
    """``tach durations --export FILE [STREAM...]``: the durations recorded under
    ``rootdir/.tach``, updated with the ``test_finished`` durations of the NDJSON
    ``streams``, written to ``target`` sorted by test id (a file to commit, for
    ``--durations-file``)."""
    from tach.scheduler import load_durations

    err = err if err is not None else sys.stderr
    durations = load_durations(rootdir / ".tach")
    for path in streams:
        try:
            stream = read_stream(path)
        except (InputError, MergeError) as exc:
            err.write(f"ERROR: tach durations: {exc}\n")
            return EXIT_USAGE_ERROR
        for test_id, event in stream.tests.items():
            durations[test_id] = float(event.get("duration_ms") or 0.0) / 1000
    if not durations:
        err.write(
            f"ERROR: tach durations: no durations recorded in {rootdir / '.tach'} nor given: "
            "run the tests with tach first, or name the NDJSON streams of a run\n"
        )
        return EXIT_USAGE_ERROR
    data = orjson.dumps(durations, option=orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2)
    write_atomically(target, data + b"\n")
    err.write(f"tach: {len(durations)} durations written to {target}\n")
    return EXIT_OK
