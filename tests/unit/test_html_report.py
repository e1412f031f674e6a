"""The HTML report (``tach report``, ``--report-html``): built from NDJSON events, escaped,
self-contained, with one timeline lane per worker (per shard and worker after a merge)."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import re

import jsonschema
import pytest

from tach.cli import main
from tach.merge import merge, read_stream, write_ndjson
from tach.reporter import html as report
from tach.reporter.html_assets import SCRIPT, STYLE
from tach.reporter.json import JsonReporter, schema
from tach.reporter.timeline import RUN_LANE
from tach.results import TestResult
from tach.scheduler import Unit

HOSTILE = "<script>alert(1)</script>"


def run_events(
    tests: list[tuple[str, int, float, float, str]],
    *,
    units: list[tuple[str, int, float, float]] = (),
    shard: tuple[int, int] | None = None,
    output: str = "",
    timed: bool = True,
) -> list[dict]:
    """A run's events: ``tests`` as (id, worker, start, seconds, status), ``units`` as
    (unit, worker, start, end); ``timed``: with ``t`` (else as older versions wrote them)."""
    events: list[dict] = [
        {
            "event": "run_start",
            "schema_version": 2,
            "count": len(tests),
            "workers": 2,
            "isolation": "module",
            "rootdir": "/p",
            "tach_version": "0",
            "pytest_version": "9.2.0",
            "python": "3.12",
            "t": 0.3,
        }
    ]
    if shard is not None:
        events[0]["shard"] = {"index": shard[0], "total": shard[1]}
    timed_events = []
    for unit, worker, start, end in units:
        timed_events.append({"event": "unit_start", "unit": unit, "worker": worker, "t": start})
        timed_events.append({"event": "unit_finished", "unit": unit, "worker": worker, "t": end})
    for test_id, worker, start, seconds, status in tests:
        common = {"id": test_id, "file": test_id.split("::")[0], "line": 3, "worker": worker}
        timed_events.append({"event": "test_start", **common, "pid": 7, "t": start})
        failed = status in ("fail", "error")
        timed_events.append(
            {
                "event": "test_finished",
                **common,
                "status": status,
                "when": "call",
                "duration_ms": seconds * 1000,
                "message": "assert 1 == 2" if failed else "",
                "longrepr": f"def {test_id}():\n>   assert 1 == 2\nE   assert 1 == 2"
                if failed
                else "",
                "stdout": output,
                "stderr": "",
                "pid": 7,
                "t": start + seconds,
            }
        )
    timed_events.sort(key=lambda e: e["t"])
    events += timed_events
    counts = {s: sum(1 for t in tests if t[4] == s) for s in ("pass", "fail", "skip", "error")}
    end = max([e["t"] for e in events] + [0.0]) + 0.2
    events.append(
        {
            "event": "run_finished",
            "passed": counts["pass"],
            "failed": counts["fail"],
            "skipped": counts["skip"],
            "xfailed": 0,
            "xpassed": 0,
            "errors": counts["error"],
            "duration_ms": end * 1000,
            "exit_code": 1 if counts["fail"] or counts["error"] else 0,
            "interrupted": None,
            "not_run": 0,
            "deselected": 0,
            "plugin_report": "",
            "t": end,
        }
    )
    if not timed:
        for event in events:
            event.pop("t", None)
    return events


def page(events: list[dict]) -> str:
    return report.render(report.model_of(events))


SMALL = run_events(
    [
        ("a.py::test_ok", 0, 1.0, 0.5, "pass"),
        ("a.py::test_bad", 0, 1.6, 0.2, "fail"),
        ("b.py::test_skip", 1, 1.1, 0.01, "skip"),
    ],
    units=[("a.py", 0, 0.9, 2.0), ("b.py", 1, 0.95, 1.3)],
    output=HOSTILE,
)


def test_the_events_the_page_is_made_of_conform_to_the_schema():
    validator = jsonschema.Draft202012Validator(schema())
    for event in SMALL:
        validator.validate(event)


def test_summary_line_exit_code_and_each_section():
    text = page(SMALL)
    assert "1 failed, 1 passed, 1 skipped in 2.20s" in text
    assert "1 (tests failed)" in text
    assert '<section id="failures">' in text and "Failures and errors (1)" in text
    assert "Slowest tests (3 of 3)" in text
    assert '<svg class="timeline"' in text


def test_test_output_and_ids_are_escaped_and_nothing_of_theirs_can_run():
    events = run_events(
        [("t.py::test_x[<b>&\"']", 0, 1.0, 0.1, "fail")],
        units=[("t.py", 0, 0.5, 1.5)],
        output=HOSTILE,
    )
    text = page(events)
    assert HOSTILE not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "<b>" not in text and "test_x[&lt;b&gt;&amp;&quot;&#x27;]" in text
    # the only script is the page's own, and the policy allows that one alone
    assert text.count("<script") == 1
    assert f"<script>{SCRIPT}</script>" in text


def test_the_page_loads_nothing_and_allows_only_its_own_style_and_script():
    text = page(SMALL)
    assert not re.search(r"https?://", text)
    assert not re.search(r"<link|<img|<iframe|\bsrc\s*=|url\(|@import", text, re.IGNORECASE)
    policy = re.search(r'http-equiv="Content-Security-Policy" content="([^"]*)"', text).group(1)
    assert "default-src &#x27;none&#x27;" in policy
    for asset in (STYLE, SCRIPT):
        digest = base64.b64encode(hashlib.sha256(asset.encode()).digest()).decode()
        assert f"sha256-{digest}" in policy
    assert f"<style>{STYLE}</style>" in text


def test_a_failure_is_a_details_with_its_traceback_and_output():
    text = page(SMALL)
    found = re.search(r'<details class="failure" id="f-1"[^>]*>(.*?)</details>', text, re.S)
    assert found is not None
    body = found.group(1)
    assert "a.py::test_bad" in body and "a.py:3" in body
    assert "E   assert 1 == 2" in body and "Captured stdout" in body
    # its bar in the timeline links to it
    assert '<a href="#f-1"><rect class="test s-fail"' in text


def test_lanes_are_the_workers_and_the_runs_own_with_its_serial_start_up():
    model = report.model_of(SMALL)
    assert model.lanes() == [(0, RUN_LANE), (0, 0), (0, 1)]
    startup = [s for s in model.run_spans() if s.kind == "startup"]
    assert [(s.start, s.end) for s in startup] == [(0.0, 0.9)]
    units = {s.label: s for s in model.unit_spans()}
    assert (units["a.py"].tests, units["a.py"].failed, units["a.py"].status) == (2, 1, "fail")
    assert (units["b.py"].tests, units["b.py"].status) == (1, "skip")
    tests = {s.label: (s.lane, s.start, round(s.end, 6)) for s in model.test_spans()}
    assert tests["a.py::test_ok"] == ((0, 0), 1.0, 1.5)
    text = page(SMALL)
    assert text.count('<rect class="test ') == 3
    assert re.search(r"<title>a\.py::test_ok\nPASSED in 0\.500 s</title>", text)


def test_a_merged_stream_has_a_lane_group_per_shard(tmp_path):
    paths = []
    for k, (test_id, unit) in enumerate([("a.py::t", "a.py"), ("b.py::t", "b.py")], 1):
        events = run_events(
            [(test_id, 0, 1.0, 0.5, "pass"), (test_id + "2", 1, 1.0, 0.2, "fail")],
            units=[(unit, 0, 0.8, 1.6), (unit + "2", 1, 0.9, 1.3)],
            shard=(k, 2),
        )
        path = tmp_path / f"shard-{k}.ndjson"
        path.write_text("".join(json.dumps(e) + "\n" for e in events))
        paths.append(str(path))
    out = io.BytesIO()
    write_ndjson(merge([read_stream(p) for p in paths]), out)
    merged = [json.loads(line) for line in out.getvalue().splitlines()]
    validator = jsonschema.Draft202012Validator(schema())
    for event in merged:
        validator.validate(event)
    assert {e.get("shard") for e in merged if e["event"] == "test_start"} == {1, 2}
    model = report.model_of(merged)
    assert model.lanes() == [(1, RUN_LANE), (1, 0), (1, 1), (2, RUN_LANE), (2, 0), (2, 1)]
    text = report.render(model)
    for name in ("shard 1 · run", "shard 1 · worker 1", "shard 2 · worker 0"):
        assert f">{name}</text>" in text
    assert "2 shards (tach merge)" in text
    # tach report of the shards' streams makes the same page from the merge of them
    target = tmp_path / "r.html"
    assert main(["report", *paths, "-o", str(target)]) == 0
    assert ">shard 2 · worker 1</text>" in target.read_text()


def test_a_large_run_groups_its_tests_and_lists_failures_beyond_the_cap():
    tests = [(f"m{i // 100}.py::t{i}", i % 2, 1 + i * 0.001, 0.001, "pass") for i in range(6000)]
    tests += [
        (f"f.py::t{i}", 0, 8 + i * 0.001, 0.001, "fail")
        for i in range(report.MAX_DETAILED_FAILURES + 5)
    ]
    units = [(f"m{i}.py", i % 2, 1 + i * 0.1, 1 + (i + 1) * 0.1) for i in range(60)]
    text = page(run_events(tests, units=[*units, ("f.py", 0, 7.9, 9.0)]))
    assert len(tests) > report.MAX_TEST_BARS
    # a lane's passing tests are one bar, its failing ones another
    bars = re.findall(r'<rect class="test s-(\w+)"[^>]*><title>(\d+) tests: ', text)
    assert sorted(bars) == [
        ("fail", str(report.MAX_DETAILED_FAILURES + 5)),
        ("pass", "3000"),
        ("pass", "3000"),
    ]
    assert "m0.py::t0 … m59.py::t5998" in text
    assert text.count('<rect class="unit ') == 61
    assert "are drawn as one bar (3 bars)" in text
    assert text.count('<details class="failure"') == report.MAX_DETAILED_FAILURES
    assert "5 more, without their reports" in text


def test_a_large_run_whose_tests_cannot_be_grouped_draws_its_units():
    statuses = ("pass", "skip")
    tests = [(f"m.py::t{i}", 0, 1 + i * 0.01, 0.001, statuses[i % 2]) for i in range(6000)]
    text = page(run_events(tests, units=[("m.py", 0, 0.5, 61.0)]))
    assert '<rect class="test' not in text
    assert text.count('<rect class="unit s-skip"') == 1
    assert "drawn as their units only" in text


def test_a_stream_of_an_older_version_has_no_timeline_but_the_rest():
    text = page(run_events([("a.py::t", 0, 1.0, 0.5, "fail")], timed=False))
    assert "carries no times" in text and "<svg" not in text
    assert '<details class="failure" id="f-1"' in text


def test_the_json_reporter_hands_events_with_times_to_a_sink():
    got: list[dict] = []
    reporter = JsonReporter(sink=got.append, origin=0.0)
    result = TestResult("a.py::t", slot=1, pid=9)
    reporter.on_unit("unit_start", Unit("a.py", ["a.py"]), 1)
    reporter.on_test_start(result)
    assert [e["event"] for e in got] == ["unit_start", "test_start"]
    assert got[0]["unit"] == "a.py" and got[0]["worker"] == 1
    assert all(e["t"] > 0 for e in got)
    silent: list[dict] = []
    JsonReporter(sink=silent.append).on_test_start(result)
    assert "t" not in silent[0]


def test_report_names_a_missing_file_and_a_line_that_is_no_event(tmp_path, capsys):
    assert main(["report", str(tmp_path / "missing.ndjson"), "-o", str(tmp_path / "r.html")]) == 4
    assert "missing.ndjson: no such file" in capsys.readouterr().err
    bad = tmp_path / "bad.ndjson"
    bad.write_text(json.dumps(SMALL[0]) + "\n{not json\n")
    assert main(["report", str(bad), "-o", str(tmp_path / "r.html")]) == 4
    assert "bad.ndjson:2: not an event of tach --format=json" in capsys.readouterr().err
    assert not (tmp_path / "r.html").exists()
    with pytest.raises(SystemExit) as exited:
        main(["report", str(bad)])  # no -o
    assert exited.value.code == 4


def test_a_watch_streams_page_shows_its_last_run():
    first = run_events([("a.py::t", 0, 1.0, 0.5, "fail")], units=[("a.py", 0, 0.9, 1.6)])
    second = run_events([("a.py::t", 0, 0.2, 0.1, "pass")], units=[("a.py", 0, 0.1, 0.4)])
    for cycle, events in ((1, first), (2, second)):
        events[0]["cycle"] = events[-1]["cycle"] = cycle
    model = report.model_of([*first, *second])
    assert model.start["cycle"] == 2 and not model.failures
    assert [(s.start, s.end) for s in model.unit_spans()] == [(0.1, 0.4)]


def test_a_workers_tests_never_overlap():
    # the first test_start was read late: 0.05 s after its test began
    events = run_events(
        [("a.py::t1", 0, 1.0, 0.3, "pass"), ("a.py::t2", 0, 1.25, 0.1, "pass")],
        units=[("a.py", 0, 0.9, 1.5)],
    )
    spans = {
        s.label: (round(s.start, 6), round(s.end, 6)) for s in report.model_of(events).test_spans()
    }
    assert spans == {"a.py::t1": (0.95, 1.25), "a.py::t2": (1.25, 1.35)}
