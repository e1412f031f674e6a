"""``tach --format=github`` and ``tach merge --format=github`` through the real CLI: after the
terminal report, one annotation per failure at the failure's line of its file (relative to
``GITHUB_WORKSPACE``), and a job summary appended to ``GITHUB_STEP_SUMMARY``; exit codes as
pytest's."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import jsonschema

from tach.reporter.json import schema

FAILING = {
    "tests/test_a.py": """\
        import pytest


        @pytest.fixture
        def broken():
            raise RuntimeError("fixture broke")


        def test_ok():
            pass


        def test_fail():
            value = 1
            assert value == 2


        def test_err(broken):
            pass
        """,
    "tests/test_bad.py": """\
        x = 1

        def broken(:
            pass
        """,
}


def make(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return root


def tach(cwd: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    # the GitHub variables of a CI running this suite must not leak into the runs
    base = {k: v for k, v in os.environ.items() if not k.startswith("GITHUB_")}
    return subprocess.run(
        [sys.executable, "-m", "tach", *args],
        cwd=cwd,
        env={**base, **(env or {})},
        capture_output=True,
        text=True,
        timeout=300,
    )


def commands(stdout: str) -> list[str]:
    """The workflow commands GitHub reads: a run stops them on its first line and starts them
    again with the token (what the tests printed in between is no command)."""
    lines = stdout.splitlines()
    if lines and lines[0].startswith("::stop-commands::"):
        token = lines[0].removeprefix("::stop-commands::")
        assert len(token) >= 32
        lines = lines[lines.index(f"::{token}::") + 1 :]
    return [line for line in lines if line.startswith("::")]


def unescape(text: str) -> str:
    for escaped, plain in (("%0D", "\r"), ("%0A", "\n"), ("%3A", ":"), ("%2C", ","), ("%25", "%")):
        text = text.replace(escaped, plain)
    return text


def test_failures_errors_and_collection_errors_are_annotated(tmp_path):
    workspace = tmp_path / "ws"
    root = make(workspace / "repo", FAILING)
    summary = tmp_path / "summary.md"
    summary.write_text("## Earlier step\n")
    result = tach(
        root,
        "--format=github",
        "-n",
        "2",
        "-p",
        "no:randomly",
        env={"GITHUB_STEP_SUMMARY": str(summary), "GITHUB_WORKSPACE": str(workspace)},
    )
    assert result.returncode == 1, result.stderr
    lines = result.stdout.splitlines()
    # the terminal report first, whole; the commands after its closing line
    closing = next(i for i, line in enumerate(lines) if "1 failed, 1 passed" in line)
    assert lines[closing].endswith("=") and "2 errors" in lines[closing]
    found = commands(result.stdout)
    assert lines[closing + 2 :] == found
    assert lines[closing + 1] == "::" + lines[0].removeprefix("::stop-commands::") + "::"
    assert len(found) == 3, found
    bad, fail, err = found
    assert bad.startswith(
        "::error file=repo/tests/test_bad.py,line=3,title=tests/test_bad.py::"
        "collection error: SyntaxError: "
    )
    assert fail.startswith(
        "::error file=repo/tests/test_a.py,line=15,title=tests/test_a.py%3A%3Atest_fail::"
        "assert 1 == 2%0A%0A"
    )
    assert "E       assert 1 == 2" in unescape(fail.split("::", 2)[2]).splitlines()
    assert err.startswith(
        "::error file=repo/tests/test_a.py,line=6,title=tests/test_a.py%3A%3Atest_err::"
        "error at setup: RuntimeError: fixture broke%0A%0A"
    )
    text = summary.read_text()
    assert text.startswith("## Earlier step\n\n### Tests: 1 failed, 1 passed, 2 errors in ")
    table = [line for line in text.splitlines() if line.startswith("| ")]
    assert table[:2] == ["| Outcome | Test | Location | Message |", "| --- | --- | --- | --- |"]
    assert table[2].startswith(
        "| collection error | `tests/test_bad.py` | `repo/tests/test_bad.py:3` | `SyntaxError: "
    )
    assert table[3:5] == [
        "| failed | `tests/test_a.py::test_fail` | `repo/tests/test_a.py:15` | `assert 1 == 2` |",
        "| error | `tests/test_a.py::test_err` | `repo/tests/test_a.py:6` | "
        "`RuntimeError: fixture broke` |",
    ]
    assert "Exit code 1 (tests failed)" in text


def test_a_passing_run_writes_no_annotations_and_its_summary(tmp_path):
    root = make(
        tmp_path / "ok",
        {
            "pyproject.toml": '[tool.tach]\nformat = "github"\n',
            "test_ok.py": "def test_a():\n    pass\n\n\ndef test_b():\n    pass\n",
        },
    )
    summary = tmp_path / "summary.md"
    result = tach(root, "-p", "no:randomly", env={"GITHUB_STEP_SUMMARY": str(summary)})
    assert result.returncode == 0, result.stderr
    assert commands(result.stdout) == []
    # the report's closing line, then the token that lets the step's later commands work
    assert "2 passed" in result.stdout.splitlines()[-2]
    lines = summary.read_text().splitlines()
    assert lines[0].startswith("### Tests: 2 passed in ")
    assert lines[2] == "Exit code 0 (all tests passed)"
    assert not any(line.startswith("| Outcome") for line in lines)


def test_what_a_test_prints_is_no_workflow_command(tmp_path):
    """A failing test's output, which the terminal report shows, says ``::error`` and
    ``::add-mask::``: GitHub reads no command there; the annotations come after the token."""
    root = make(
        tmp_path / "p",
        {
            "test_x.py": "def test_x():\n"
            "    print('::error file=forged.py,line=1::forged')\n"
            "    print('::add-mask::secret')\n"
            "    assert 0\n"
        },
    )
    result = tach(root, "--format=github", "-p", "no:randomly")
    assert result.returncode == 1, result.stderr
    lines = result.stdout.splitlines()
    token = lines[0].removeprefix("::stop-commands::")
    resume = lines.index(f"::{token}::")
    assert "::error file=forged.py,line=1::forged" in lines[1:resume]  # shown, stopped
    assert "::add-mask::secret" in lines[1:resume]
    [annotation] = commands(result.stdout)
    assert annotation.startswith("::error file=test_x.py,line=4,title=test_x.py%3A%3Atest_x::")


XPASS = """\
    import pytest


    def test_a():
        assert 0


    @pytest.mark.xfail(strict=True, reason="bug 12")
    def test_strict():
        pass


    @pytest.mark.xfail(reason="bug 13")
    def test_loose():
        pass
    """


def test_the_environment_chooses_github_and_a_bad_value_names_the_formats(tmp_path):
    """A strict xpass fails, as in pytest, and is annotated; a non-strict one passes."""
    root = make(tmp_path / "p", {"test_x.py": XPASS})
    result = tach(root, "-p", "no:randomly", env={"TACH_FORMAT": "github"})
    assert result.returncode == 1, result.stderr
    [failed, strict] = commands(result.stdout)
    assert failed.startswith(
        "::error file=test_x.py,line=5,title=test_x.py%3A%3Atest_a::assert 0%0A%0A"
    )
    assert strict == (
        "::error file=test_x.py,line=9,title=test_x.py%3A%3Atest_strict::[XPASS(strict)] bug 12"
    )
    bad = tach(root, env={"TACH_FORMAT": "gh"})
    assert bad.returncode == 4
    assert "--format must be human, json or github, not 'gh'" in bad.stderr


def test_merge_annotates_the_failures_of_both_shards(tmp_path):
    root = make(
        tmp_path / "m",
        {
            "test_one.py": "def test_pass():\n    pass\n\n\ndef test_one():\n    assert 1 == 2\n",
            "test_two.py": "import pytest\n\n\ndef test_two():\n    pytest.fail('two')\n",
            # both shards plan from it (not from what the first one recorded in .tach/)
            "durations.json": "{}",
        },
    )
    streams = []
    for k in (1, 2):
        shard = tach(
            root,
            f"--shard={k}/2",
            "--durations-file=durations.json",
            "--format=json",
            "-q",
            "-p",
            "no:randomly",
        )
        assert shard.returncode == 1, shard.stderr  # each shard holds one failing module
        path = root / f"shard-{k}.ndjson"
        path.write_text(shard.stdout)
        streams.append(path.name)
        for line in shard.stdout.splitlines():
            event = json.loads(line)
            jsonschema.validate(event, schema())
            if event["event"] == "test_finished" and event["status"] == "fail":
                assert isinstance(event["failure_line"], int)
    summary = tmp_path / "summary.md"
    merged = tach(
        root, "merge", "--format=github", *streams, env={"GITHUB_STEP_SUMMARY": str(summary)}
    )
    assert merged.returncode == 1, merged.stderr
    found = commands(merged.stdout)
    assert len(found) == 2, merged.stdout
    assert found[0].startswith(
        "::error file=test_one.py,line=6,title=test_one.py%3A%3Atest_one::assert 1 == 2%0A%0A"
    )
    assert found[1].startswith(
        "::error file=test_two.py,line=5,title=test_two.py%3A%3Atest_two::Failed: two%0A%0A"
    )
    text = summary.read_text()
    assert text.startswith("### Tests: 2 failed, 1 passed in ")
    assert "Exit code 1 (tests failed); 2 shards merged" in text
