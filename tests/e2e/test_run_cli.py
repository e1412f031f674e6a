"""The run command's flags and exit codes, through the real CLI on a copy of the demo project."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

DEMO = Path(__file__).resolve().parents[2] / "examples" / "demo"
FINAL = re.compile(r"^=* ?(.*?) in [0-9.]+s ?=*$")


@pytest.fixture
def demo(tmp_path: Path) -> Path:
    return Path(shutil.copytree(DEMO, tmp_path / "demo"))


def tach(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tach", *args], cwd=cwd, capture_output=True, text=True, timeout=120
    )


def pytest_run(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def final_line(output: str) -> str:
    match = FINAL.match(output.rstrip().splitlines()[-1])
    assert match, output
    return match.group(1)


@pytest.mark.parametrize(
    "args",
    [(), ("-k", "pricing and not bulk"), ("-m", "slow"), ("tests/test_store.py",), ("-x",)],
)
def test_exit_code_and_final_line_are_pytests(demo, args):
    ours, theirs = tach(demo, *args), pytest_run(demo, *args)
    assert ours.returncode == theirs.returncode, ours.stdout + ours.stderr
    if "-x" not in args:  # -x stops a parallel run later than pytest's serial one
        assert final_line(ours.stdout) == final_line(theirs.stdout)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("tests/nowhere.py",), "nowhere.py"),
        (("-k", "and and"), "-k"),
        (("-n", "zero"), "--workers"),
        (("--isolation", "thread"), "--isolation"),
    ],
)
def test_bad_arguments_are_usage_errors_that_name_the_problem(demo, args, message):
    result = tach(demo, *args)
    assert result.returncode == 4, result.stdout + result.stderr
    assert message in result.stderr


def test_collect_only_lists_ids_like_pytest(demo):
    ours = tach(demo, "--co", "-q")
    theirs = pytest_run(demo, "--co", "-q")
    ids = [line for line in ours.stdout.splitlines() if "::" in line]
    assert sorted(ids) == sorted(line for line in theirs.stdout.splitlines() if "::" in line)
    assert final_line(ours.stdout) == "23 tests collected"
    assert ours.returncode == 0


def test_verbose_names_each_test_and_its_worker(demo):
    result = tach(demo, "-v", "-n", "2")
    lines = [line for line in result.stdout.splitlines() if re.match(r"^\[w[01]\] tests/", line)]
    assert len(lines) == 23
    assert any("test_bulk_discount_applies_at_fifty FAILED" in line for line in lines)


def test_last_failed_reruns_only_the_failures(demo):
    assert tach(demo).returncode == 1
    rerun = tach(demo, "--lf")
    assert final_line(rerun.stdout) == "1 failed"
    (demo / "tests" / "test_pricing.py").write_text(
        (demo / "tests" / "test_pricing.py").read_text().replace("== 10, ", "== 5, ")
    )
    assert tach(demo, "--lf").returncode == 0
    assert final_line(tach(demo, "--lf").stdout).startswith("20 passed")  # none left: all run


def test_pytest_options_after_double_dash_reach_pytest(demo):
    result = tach(demo, "tests/test_pricing.py", "--", "--tb=line")
    assert "tests/test_pricing.py:35: AssertionError" in result.stdout
    assert "def test_bulk_discount_applies_at_fifty" not in result.stdout
