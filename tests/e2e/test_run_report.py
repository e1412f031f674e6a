"""The HTML report of real runs: ``tach report`` of a run's NDJSON stream and ``--report-html``
on the run itself, made from the same events, and looked at in headless Chromium.

The screenshot of each page's timeline is kept as an artefact: under ``$TACH_TEST_ARTIFACTS``
when set, else in the test's ``tmp_path``; the test prints where.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from tach.reporter.json import schema

from ._browser import Browser

HOSTILE = "<script>alert(1)</script>"

FAILING = f"""
import time

def test_slow():
    time.sleep(0.3)

def test_fails():
    print({HOSTILE!r})
    assert 1 + 1 == 3
"""

PASSING = """
import time
import pytest

@pytest.mark.parametrize("n", range(4))
def test_many(n):
    time.sleep(0.05)

@pytest.mark.skip(reason="not today")
def test_skipped():
    pass
"""


def tach(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "tach", *args],
        cwd=cwd,
        capture_output=True,
        timeout=300,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )


def project(root: Path, **modules: str) -> Path:
    root.mkdir()
    (root / "pytest.ini").write_text("[pytest]\naddopts = -p no:randomly -p no:cacheprovider\n")
    for name, text in modules.items():
        (root / f"{name}.py").write_text(text)
    return root


@pytest.fixture(scope="module")
def reported(tmp_path_factory):
    """A run of two modules on two workers, one test failing and printing a script element:
    its NDJSON stream, the page ``tach report`` made of it and the one ``--report-html``
    wrote during the run."""
    root = project(tmp_path_factory.mktemp("report") / "proj", test_a=FAILING, test_b=PASSING)
    run = tach(root, "--format=json", "-n", "2", "-q", "--report-html", "direct.html")
    assert run.returncode == 1, run.stderr.decode()
    (root / "run.ndjson").write_bytes(run.stdout)
    made = tach(root, "report", "run.ndjson", "-o", "out/report.html")
    assert made.returncode == 0, made.stderr.decode()
    assert b"report written to out/report.html" in made.stderr
    events = [json.loads(line) for line in run.stdout.splitlines()]
    return root, events, {"report": root / "out" / "report.html", "direct": root / "direct.html"}


def test_the_stream_times_every_event_and_marks_each_unit(reported):
    _, events, _ = reported
    validator = jsonschema.Draft202012Validator(schema())
    for event in events:
        validator.validate(event)
    assert all(isinstance(e.get("t"), float) for e in events)
    times = [e["t"] for e in events]
    assert times == sorted(times)
    started = sorted((e["unit"], e["worker"]) for e in events if e["event"] == "unit_start")
    finished = sorted((e["unit"], e["worker"]) for e in events if e["event"] == "unit_finished")
    assert started == finished
    assert {unit for unit, _ in started} == {"test_a.py", "test_b.py"}
    first_unit = min(e["t"] for e in events if e["event"] == "unit_start")
    first_test = min(e["t"] for e in events if e["event"] == "test_start")
    run_start = next(e for e in events if e["event"] == "run_start")
    # the serial start-up: pytest is configured, then a worker gets a unit, then collects it
    assert 0 < run_start["t"] <= first_unit < first_test


@pytest.mark.parametrize("which", ["report", "direct"])
def test_both_pages_show_the_run_escaped_and_self_contained(reported, which):
    _, events, pages = reported
    text = pages[which].read_text()
    finish = events[-1]
    assert finish["event"] == "run_finished" and finish["exit_code"] == 1
    assert re.search(r"1 failed, 5 passed, 1 skipped in \d+\.\d\ds", text)
    assert HOSTILE not in text and "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert text.count("<script") == 1
    assert not re.search(r"https?://|<link|\bsrc\s*=|url\(", text)
    assert ">worker 0</text>" in text and ">worker 1</text>" in text
    assert text.count('<rect class="test ') == 7
    assert '<rect class="startup"' in text
    assert '<details class="failure" id="f-1" data-test="test_a.py::test_fails">' in text


def test_the_run_and_the_stream_make_the_same_page_but_for_the_times(reported):
    _, _, pages = reported

    def shape(path: Path) -> str:
        text = path.read_text()
        text = re.sub(r"\d+\.\d+", "N", text)  # times, and so positions, differ a little
        return re.sub(r"<footer>.*", "", text, flags=re.S)

    assert shape(pages["report"]) == shape(pages["direct"])


def artefact_dir(tmp_path: Path) -> Path:
    where = os.environ.get("TACH_TEST_ARTIFACTS")
    if not where:
        return tmp_path
    path = Path(where) / "html-report"
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.mark.parametrize("which", ["report", "direct"])
def test_in_a_browser_no_errors_a_failure_expands_and_the_timeline_is_drawn(
    reported, which, tmp_path
):
    _, _, pages = reported
    browser = Browser(tmp_path / "profile")
    try:
        # a page's script that called alert() would be seen here, never shown
        browser.call(
            "Page.addScriptToEvaluateOnNewDocument",
            session=browser.session,
            source="window.__alerts = []; window.alert = m => window.__alerts.push(String(m));",
        )
        browser.open(pages[which].as_uri())
        state = browser.evaluate(
            """(() => {
              const d = document.querySelector("details.failure");
              const pre = d.querySelector("pre.longrepr");
              const before = [d.open, pre.checkVisibility(), pre.innerText];
              d.querySelector("summary").click();
              return {before, after: [d.open, pre.checkVisibility(), pre.innerText],
                      alerts: window.__alerts,
                      bars: document.querySelectorAll("svg.timeline rect.test").length,
                      width: document.querySelector("svg.timeline").getBoundingClientRect().width};
            })()"""
        )
        assert state["before"] == [False, False, ""]
        opened, visible, traceback = state["after"]
        assert opened and visible
        assert "assert 1 + 1 == 3" in traceback and "AssertionError" in traceback
        assert state["alerts"] == []
        assert state["bars"] == 7 and state["width"] > 800
        # the address names a failure: the page opens it
        browser.open(pages[which].as_uri() + "#f-1")
        assert browser.evaluate('document.getElementById("f-1").open') is True
        shot = artefact_dir(tmp_path) / f"timeline-{which}.png"
        width, height = browser.screenshot("#timeline-chart", shot)
        print(f"timeline screenshot: {shot} ({width}x{height})")
        assert width > 800 and height > 50
        assert browser.problems() == []
    finally:
        browser.close()


def test_the_report_is_written_when_a_test_crashes_its_process(tmp_path):
    crash = "import os\n\ndef test_dies():\n    os._exit(3)\n\ndef test_ok():\n    pass\n"
    root = project(tmp_path / "crash", test_crash=crash)
    run = tach(root, "-n", "1", "--report-html", "crash.html")
    assert run.returncode == 1, run.stdout.decode()
    text = (root / "crash.html").read_text()
    assert "1 failed, 1 passed" in text
    assert "test_crash.py::test_dies" in text and "Process died" in text


def test_the_report_is_written_when_the_run_is_interrupted(tmp_path):
    stuck = "import time\n\ndef test_ok():\n    pass\n\ndef test_stuck():\n    time.sleep(120)\n"
    root = project(tmp_path / "stuck", test_stuck=stuck)
    run = tach(root, "-n", "1", "--session-timeout", "2", "--report-html", "stuck.html")
    assert run.returncode == 2, run.stdout.decode()
    text = (root / "stuck.html").read_text()
    assert "2 (interrupted)" in text and "1 passed" in text


def test_a_merged_runs_page_has_a_lane_group_per_shard(tmp_path):
    root = project(tmp_path / "sharded", test_a=FAILING, test_b=PASSING)
    streams = []
    for k in (1, 2):
        run = tach(root, "--format=json", "-q", "-n", "1", "--shard", f"{k}/2")
        (root / f"shard-{k}.ndjson").write_bytes(run.stdout)
        streams.append(f"shard-{k}.ndjson")
    merged = tach(root, "merge", *streams, "--json", "merged.ndjson", "-q")
    assert merged.returncode == 1, merged.stderr.decode()
    for args in (["merged.ndjson"], streams):
        made = tach(root, "report", *args, "-o", "merged.html")
        assert made.returncode == 0, made.stderr.decode()
        text = (root / "merged.html").read_text()
        assert "2 shards (tach merge)" in text
        for name in ("shard 1 · run", "shard 1 · worker 0", "shard 2 · worker 0"):
            assert f">{name}</text>" in text


def test_usage_errors_of_tach_report(tmp_path):
    missing = tach(tmp_path, "report", "missing.ndjson", "-o", "r.html")
    assert missing.returncode == 4
    assert b"missing.ndjson: no such file" in missing.stderr
    (tmp_path / "text.ndjson").write_text('{"event": "run_start"}\nhello\n')
    bad = tach(tmp_path, "report", "text.ndjson", "-o", "r.html")
    assert bad.returncode == 4 and b"text.ndjson:2: not an event" in bad.stderr
    assert not (tmp_path / "r.html").exists()
