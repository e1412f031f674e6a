"""The end-to-end benchmark's suite generators write valid pytest projects with the counts they
promise (tiny instances, run by pytest in a subprocess), and its summary-line parser."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from tach.bench import _suites
from tach.bench.bench_e2e import clean_env, outcome_counts, parse_summary, rollup_kib


def _pytest(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
        cwd=root, env=clean_env(), capture_output=True, text=True, check=False, timeout=300,
    )


@pytest.mark.parametrize("name", sorted(_suites.GENERATORS))
def test_tiny_suite_collects_and_runs_as_promised(name, tmp_path):
    suite = _suites.generate(name, tmp_path / name, **_suites.TINY[name])
    assert (suite.root / "pyproject.toml").read_text().count("[tool.pytest.ini_options]") == 1

    collected = _pytest(suite.root, "--collect-only", "-q")
    ids = [line for line in collected.stdout.splitlines() if "::" in line]
    assert len(ids) == suite.tests, collected.stdout[-2000:]
    assert len(set(ids)) == len(ids)

    ran = _pytest(suite.root, "-q")
    assert outcome_counts(parse_summary(ran.stdout)) == suite.expected, ran.stdout[-3000:]
    assert ran.returncode == (1 if suite.expected["failed"] or suite.expected["errors"] else 0)
    if name == "costly_fixture":
        assert _suites.count_markers(suite.marker_dir) == {
            "setup": 1, "teardown": 1, "processes": 1}
        _suites.clear_markers(suite.marker_dir)
        assert _suites.count_markers(suite.marker_dir)["setup"] == 0


def test_mixed_suite_has_every_outcome(tmp_path):
    suite = _suites.generate("mixed", tmp_path / "mixed", **_suites.TINY["mixed"])
    assert all(suite.expected[outcome] > 0 for outcome in _suites.OUTCOMES)


def test_default_trivial_suite_is_4000_tests_over_40_modules(tmp_path):
    suite = _suites.generate("trivial", tmp_path / "trivial")
    assert suite.tests == 4000
    assert len(list((suite.root / "tests").glob("test_*.py"))) == 40


def test_unknown_suite_is_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown suite"):
        _suites.generate("nope", tmp_path)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("4000 passed in 3.21s", {"passed": 4000}),
        ("2 failed, 10 passed, 1 skipped, 1 xfailed, 3 warnings, 1 error in 1.23s",
         {"failed": 2, "passed": 10, "skipped": 1, "xfailed": 1, "warnings": 3, "errors": 1}),
        ("==== 1 xpassed, 2 errors in 0.10s ====", {"xpassed": 1, "errors": 2}),
        ("5 passed, 2 deselected in 61.00s (0:01:01)", {"passed": 5, "deselected": 2}),
        ("no tests ran in 0.01s", {}),
        ("10 passed, 3 subtests passed, 1 subtests failed in 2.00s",
         {"passed": 10, "subtests_passed": 3, "subtests_failed": 1}),
    ],
)
def test_parse_summary(line, expected):
    counts = parse_summary(f"....\nsome output\n{line}\n")
    assert counts == {**dict.fromkeys(_suites.OUTCOMES, 0), **expected}


def test_parse_summary_without_a_summary_line():
    assert parse_summary("Traceback (most recent call last):\n  boom\n") is None


def test_rollup_of_this_process():
    values = rollup_kib(os.getpid())
    assert values is not None
    assert 0 < values["pss"] <= values["rss"]
    assert rollup_kib(2**22 + 1) is None


def test_benchmark_smoke(tmp_path, capsys):
    """The whole benchmark on tiny suites with plain pytest only: JSON, Markdown and counts."""
    from tach.bench import bench_e2e

    code = bench_e2e.main([
        "--tiny", "--suites", "trivial,costly_fixture", "--runners", "pytest", "--repeat", "2",
        "--warmup", "0", "--forks", "10", "--mem-suite", "trivial", "--mem-repeat", "1",
        "--workdir", str(tmp_path / "work"), "--out", str(tmp_path / "out"), "--json",
    ])
    result = json.loads(capsys.readouterr().out)
    assert code == 0 and result["ok"]
    trivial, costly = result["suites"]
    assert trivial["runners"]["pytest"]["counts"]["passed"] == trivial["tests"]
    assert trivial["runners"]["pytest"]["ratio"] == 1.0
    assert costly["runners"]["pytest"]["session_setups"] == [1]
    assert result["fork_floor"]["pytest"]["median_us"] > 0
    memory = result["memory"]["runners"]["pytest"]
    assert memory["processes"] == 1 and 0 < memory["pss_mib"] <= memory["rss_mib"]
    assert "| trivial |" in (tmp_path / "out" / "e2e.md").read_text()
    assert json.loads((tmp_path / "out" / "e2e.json").read_text())["ok"]
