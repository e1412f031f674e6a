"""``--format=github``: workflow-command escaping as GitHub's runner reads it, the annotations and
the job summary built from NDJSON events, the failure's line read from pytest's serialised
report, and ``tach merge --format=github``."""

from __future__ import annotations

import io
from pathlib import Path

import jsonschema
import pytest

from tach.config import ConfigValueError, parse_format
from tach.merge import run_merge
from tach.reporter.failure_line import failure_line
from tach.reporter.github import (
    ERROR_LIMIT,
    MESSAGE_LIMIT,
    SUMMARY_FAILURES,
    GithubRun,
    append_summary,
    escape_data,
    escape_property,
    md_code,
    publish,
    workflow_command,
)
from tach.reporter.json import schema

from .test_merge import finished, run_finished, start, write


def unescape(text: str) -> str:
    """What GitHub's runner makes of an escaped value (its own order of replacements)."""
    for escaped, plain in (("%0D", "\r"), ("%0A", "\n"), ("%3A", ":"), ("%2C", ","), ("%25", "%")):
        text = text.replace(escaped, plain)
    return text


# -- escaping ---------------------------------------------------------------------------------


def test_message_escaping_is_githubs():
    assert escape_data("100% sure\r\nnext: a, b") == "100%25 sure%0D%0Anext: a, b"
    assert escape_data("%0A literal") == "%250A literal"  # not read back as a line break


def test_property_escaping_also_escapes_colon_and_comma():
    value = "tests/t.py::test_a[1,2%]\n"
    assert escape_property(value) == "tests/t.py%3A%3Atest_a[1%2C2%25]%0A"
    assert unescape(escape_property(value)) == value


def test_a_command_leaves_out_missing_properties():
    assert workflow_command("error", "boom") == "::error::boom"
    assert (
        workflow_command("error", "a\nb", file="t.py", line=None, title="t.py::x")
        == "::error file=t.py,title=t.py%3A%3Ax::a%0Ab"
    )


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("tests/t.py::test_a", "`tests/t.py::test_a`"),
        ("t.py::test[a|b]", "`t.py::test[a\\|b]`"),
        ("t.py::test[`x`]", "`` t.py::test[`x`] ``"),
        ("t.py::test[``]", "``` t.py::test[``] ```"),
        ("two\nlines", "`two lines`"),
        ("", ""),
    ],
)
def test_markdown_code_spans_survive_tables(text, code):
    assert md_code(text) == code


# -- the failure's line -----------------------------------------------------------------------


def entry(path: str, lineno: int) -> dict:
    return {
        "type": "ReprEntry",
        "data": {"lines": [], "reprfileloc": {"path": path, "lineno": lineno}},
    }


def report(*entries: dict, crash: tuple[str, int] | None = None) -> dict:
    longrepr: dict = {"reprtraceback": {"reprentries": list(entries)}}
    if crash:
        longrepr["reprcrash"] = {"path": crash[0], "lineno": crash[1], "message": "boom"}
    return {"longrepr": longrepr}


def test_the_deepest_frame_in_the_tests_file_is_the_failures_line():
    rep = report(
        entry("tests/t.py", 19),
        entry("tests/t.py", 5),
        entry("src/lib.py", 40),
        crash=("/r/src/lib.py", 40),
    )
    assert failure_line(rep, "tests/t.py", "/r", cwd="/r") == 5


def test_paths_relative_to_another_working_directory_or_absolute_match():
    assert failure_line(report(entry("t.py", 7)), "tests/t.py", "/r", cwd="/r/tests") == 7
    assert failure_line(report(entry("../r/tests/t.py", 8)), "tests/t.py", "/r", cwd="/x") == 8
    # a test that changed directory: the path still ends with the file's parts
    assert failure_line(report(entry("/r/tests/t.py", 9)), "tests/t.py", "/r", cwd="/x") == 9


def test_the_crash_location_counts_when_no_entry_is_in_the_file():
    assert failure_line(report(crash=("/r/tests/t.py", 3)), "tests/t.py", "/r", cwd="/r") == 3


def test_no_line_when_the_traceback_misses_the_file_or_is_text():
    rep = report(entry("conftest.py", 4), crash=("/r/conftest.py", 4))
    assert failure_line(rep, "tests/t.py", "/r", cwd="/r") is None
    assert failure_line({"longrepr": "fixture 'db' not found"}, "tests/t.py", "/r") is None
    assert failure_line(None, "tests/t.py", "/r") is None
    # another file of the same name elsewhere is not the test's
    assert failure_line(report(entry("other/t.py", 2)), "tests/t.py", "/r", cwd="/r") is None


def test_a_native_traceback_is_read_from_its_text():
    text = (
        'Traceback (most recent call last):\n  File "/r/tests/t.py", line 12, in test_a\n'
        '    helper()\n  File "/r/tests/t.py", line 4, in helper\n    raise E\n'
        '  File "/r/lib.py", line 1, in x\n'
    )
    rep = {
        "longrepr": {
            "reprtraceback": {
                "reprentries": [{"type": "ReprEntryNative", "data": {"lines": [text]}}]
            }
        }
    }
    assert failure_line(rep, "tests/t.py", "/r", cwd="/r") == 4


def test_failure_line_is_an_optional_field_of_the_schema():
    event = {**finished("a.py::t", "fail"), "failure_line": 9}
    jsonschema.validate(event, schema())
    jsonschema.validate(finished("a.py::t", "fail"), schema())  # streams written before it
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**event, "failure_line": "9"}, schema())


# -- annotations ------------------------------------------------------------------------------


def run_of(*events: dict, rootdir: str = "/w/repo") -> GithubRun:
    run = GithubRun()
    for event in [{**start(1, 1), "rootdir": rootdir}, *events]:
        run.feed(event)
    return run


def test_each_failure_and_error_is_one_annotation_at_its_line():
    run = run_of(
        {**finished("tests/t.py::test_a", "fail", message="assert 1 == 2"), "failure_line": 8},
        finished("tests/t.py::test_b", "error", "setup", "RuntimeError: db"),
        finished("tests/t.py::test_c", "pass"),
        finished("tests/t.py::test_d", "skip", "setup", "no network"),
        finished("tests/t.py::test_e", "xfail", message="bug"),
        finished("tests/t.py::test_f", "xpass"),  # not strict: passes, as in pytest
        run_finished(1),
    )
    assert run.annotations() == [
        "::error file=tests/t.py,line=8,title=tests/t.py%3A%3Atest_a::"
        "assert 1 == 2%0A%0AE  assert 1 == 2",
        "::error file=tests/t.py,line=3,title=tests/t.py%3A%3Atest_b::"
        "error at setup: RuntimeError: db%0A%0AE  assert 1 == 2",
    ]


def test_an_error_without_a_message_names_its_phase():
    event = {**finished("t.py::test_a", "error", "teardown"), "longrepr": ""}
    assert run_of(event, run_finished(1)).annotations() == [
        "::error file=t.py,line=3,title=t.py%3A%3Atest_a::error at teardown"
    ]


def test_a_crashed_test_says_its_crash_once():
    crash = "Test process 8 exited with status 3 in the middle of the test (during call)."
    event = {**finished("t.py::test_a", "fail", message=crash), "longrepr": crash + "\n"}
    assert run_of(event, run_finished(1)).annotations() == [
        f"::error file=t.py,line=3,title=t.py%3A%3Atest_a::{crash}"
    ]


def test_paths_are_relative_to_the_workspace_when_it_holds_the_rootdir():
    run = run_of(finished("tests/t.py::test_a", "fail"), run_finished(1), rootdir="/w/repo/sub")
    assert run.annotations("/w/repo")[0].startswith("::error file=sub/tests/t.py,line=3,")
    assert run.annotations("/elsewhere")[0].startswith("::error file=tests/t.py,line=3,")
    assert run.annotations(None)[0].startswith("::error file=tests/t.py,line=3,")
    assert run.path("..data/t.py", "/w/repo") == "sub/..data/t.py"  # a name, not the parent
    assert run.path("../../other/t.py", "/w/repo") is None


def test_a_collection_error_points_at_its_line_with_the_exception():
    text = 'E     File "/w/repo/tests/bad.py", line 3\nE       def f(:\nE   SyntaxError: bad'
    run = run_of(
        {
            "event": "collect_error",
            "id": "tests/bad.py",
            "file": "tests/bad.py",
            "line": 3,
            "message": text,
        },
        run_finished(2),
    )
    [line, stopped] = run.annotations()
    assert line == (
        "::error file=tests/bad.py,line=3,title=tests/bad.py::collection error: SyntaxError: bad"
        "%0A%0A" + text.replace("\n", "%0A")
    )
    assert stopped == "::error title=tach::tach exited with code 2 (interrupted); see the log"


def test_a_long_report_is_bounded_keeping_its_end():
    event = {**finished("t.py::test_a", "fail", message="x"), "longrepr": "a" * 50_000 + "END"}
    [line] = run_of(event, run_finished(1)).annotations()
    message = unescape(line.split("::", 2)[2])
    assert len(message) < MESSAGE_LIMIT + 200
    assert message.startswith("x\n\naaa") and message.endswith("END")


def test_annotations_are_capped_saying_how_many_more():
    events = [finished(f"t.py::test_{i:03}", "fail") for i in range(ERROR_LIMIT + 7)]
    lines = run_of(*events, run_finished(1)).annotations()
    assert len(lines) == ERROR_LIMIT + 1
    assert lines[-1] == "tach: 7 more errors not annotated (see the report above)"


def test_warnings_are_annotated_once_and_unlinked_outside_the_repository():
    warning = {
        "event": "warning",
        "message": "careful",
        "category": "UserWarning",
        "filename": "/w/repo/tests/t.py",
        "lineno": 4,
        "when": "runtest",
        "nodeid": "tests/t.py::test_a",
    }
    outside = {**warning, "filename": "/usr/lib/python3/x.py", "lineno": 9, "nodeid": ""}
    tach_own = {**warning, "category": "TachWarning"}
    run = run_of(warning, warning, outside, tach_own, run_finished(0))
    assert run.annotations() == [
        "::warning file=tests/t.py,line=4,title=UserWarning::careful%0A%0Atests/t.py::test_a",
        "::warning title=UserWarning::careful%0A%0A/usr/lib/python3/x.py:9",
    ]


def test_a_passing_run_has_no_annotations():
    run = run_of(finished("t.py::test_a", "pass"), run_finished(0))
    assert run.annotations() == []
    out = io.StringIO()
    publish(run, out, environ={})
    assert out.getvalue() == ""


# -- the job summary --------------------------------------------------------------------------


def test_the_summary_is_appended_after_what_is_there(tmp_path):
    target = tmp_path / "summary.md"
    target.write_text("# Build\nno newline at the end")
    run = run_of(
        {
            **finished("tests/t.py::test_a[x|y]", "fail", message="assert 1 == 2\nmore"),
            "failure_line": 8,
            "duration_ms": 1500.0,
        },
        {**finished("tests/t.py::test_b", "pass"), "duration_ms": 250.0},
        {**finished("tests/t.py::test_c", "pass"), "duration_ms": 1.0},
        run_finished(1, 1750.0, failed=1, passed=2),
    )
    run.start["shard"] = {"index": 2, "total": 4}
    summary = run.summary()
    publish(run, io.StringIO(), environ={"GITHUB_STEP_SUMMARY": str(target)})
    publish(run, io.StringIO(), environ={"GITHUB_STEP_SUMMARY": str(target)})
    assert target.read_text() == f"# Build\nno newline at the end\n\n{summary}\n{summary}"
    assert summary.splitlines() == [
        "### Tests: 1 failed, 2 passed in 1.75s",
        "",
        "Exit code 1 (tests failed); shard 2/4",
        "",
        "| Outcome | Test | Location | Message |",
        "| --- | --- | --- | --- |",
        "| failed | `tests/t.py::test_a[x\\|y]` | `tests/t.py:8` | `assert 1 == 2` |",
        "",
        "**Slowest 2 tests**",
        "",
        "| Duration | Test | Outcome |",
        "| ---: | --- | --- |",
        "| 1.50s | `tests/t.py::test_a[x\\|y]` | failed |",
        "| 0.25s | `tests/t.py::test_b` | passed |",  # test_c: quicker than --durations shows
    ]
    assert summary.endswith("|\n")


def test_the_failure_table_is_capped_saying_how_many_more():
    events = [finished(f"t.py::test_{i:03}", "fail") for i in range(SUMMARY_FAILURES + 3)]
    summary = run_of(*events, run_finished(1)).summary()
    rows = [line for line in summary.splitlines() if line.startswith("| failed |")]
    assert len(rows) == SUMMARY_FAILURES
    assert f"{rows[-1]}\n\nand 3 more\n" in summary


def test_an_unwritable_summary_is_said_and_not_raised(tmp_path):
    run = run_of(finished("t.py::test_a", "pass"), run_finished(0))
    err = io.StringIO()
    target = tmp_path / "missing-dir" / "summary.md"
    publish(run, io.StringIO(), environ={"GITHUB_STEP_SUMMARY": str(target)}, err=err)
    assert err.getvalue().startswith(f"tach: cannot write the job summary to {target}: ")


def test_append_summary_starts_a_new_file(tmp_path):
    target = tmp_path / "s.md"
    append_summary(str(target), "### x\n")
    assert target.read_text() == "### x\n"


# -- format and merge -------------------------------------------------------------------------


def test_a_bad_format_names_the_formats():
    assert parse_format("github") == "github"
    with pytest.raises(ConfigValueError, match="human, json or github, not 'gh'"):
        parse_format("gh")


@pytest.fixture
def github_env(monkeypatch, tmp_path) -> Path:
    target = tmp_path / "summary.md"
    target.write_text("before\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(target))
    monkeypatch.delenv("GITHUB_WORKSPACE", raising=False)
    return target


def test_merge_annotates_the_failures_of_every_shard(tmp_path, github_env):
    paths = [
        write(
            tmp_path / "s1.ndjson",
            [
                start(1, 2, 2),
                finished("a.py::t1", "pass"),
                {**finished("a.py::t2", "fail", message="assert 1 == 2"), "failure_line": 5},
                run_finished(1, 2000.0),
            ],
        ),
        write(
            tmp_path / "s2.ndjson",
            [
                start(2, 2, 1),
                finished("b.py::t1", "error", "setup", "fixture 'db' not found"),
                run_finished(1, 3000.0),
            ],
        ),
    ]
    out, err = io.StringIO(), io.StringIO()
    assert run_merge(paths, quiet=True, out=out, err=err, fmt="github") == 1, err.getvalue()
    assert out.getvalue().splitlines() == [
        "::error file=a.py,line=5,title=a.py%3A%3At2::assert 1 == 2%0A%0AE  assert 1 == 2",
        "::error file=b.py,line=3,title=b.py%3A%3At1::"
        "error at setup: fixture 'db' not found%0A%0AE  assert 1 == 2",
    ]
    summary = github_env.read_text()
    assert summary.startswith("before\n\n### Tests: 1 failed, 1 passed, 1 error in 3.00s\n")
    assert "Exit code 1 (tests failed); 2 shards merged" in summary


def test_merge_github_with_the_stream_on_stdout_is_a_usage_error(tmp_path, github_env):
    paths = [write(tmp_path / "s1.ndjson", [start(1, 1), run_finished(0)])]
    err = io.StringIO()
    assert run_merge(paths, json_out="-", err=err, out=io.StringIO(), fmt="github") == 4
    assert "--format=github writes to stdout" in err.getvalue()
    assert github_env.read_text() == "before\n"


def test_no_summary_when_asked_for_none(tmp_path):
    """``--co`` runs no test: annotations of its collection errors, no job summary."""
    target = tmp_path / "s.md"
    run = run_of(finished("t.py::test_a", "fail"), run_finished(1))
    out = io.StringIO()
    publish(run, out, environ={"GITHUB_STEP_SUMMARY": str(target)}, summary=False)
    assert out.getvalue().startswith("::error file=t.py,line=3,")
    assert not target.exists()
