"""The run command's flags and exit codes, through the real CLI on a copy of the demo project."""

from __future__ import annotations

import os
import re
import selectors
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


def test_last_failed_and_failed_first_find_failed_items_of_dynamic_tests(tmp_path):
    # Static discovery cannot expand a parametrize over a computed list: it names the test by
    # its function, and pytest's items are test_dyn[0], test_dyn[1], test_dyn[2].
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    (tmp_path / "test_dyn.py").write_text(
        "import pytest\n\n"
        "VALUES = list(range(3))\n\n\n"
        "@pytest.mark.parametrize('v', VALUES)\n"
        "def test_dyn(v):\n"
        "    assert v != 1\n\n\n"
        "def test_ok():\n"
        "    pass\n"
    )
    (tmp_path / "test_other.py").write_text("def test_fails():\n    assert False\n")
    # many more tests than test_dyn.py: it runs first unless --ff puts failures first
    (tmp_path / "test_many.py").write_text(
        "import pytest\n\n\n"
        "@pytest.mark.parametrize('n', range(100))\n"
        "def test_many(n):\n"
        "    pass\n"
    )
    assert final_line(tach(tmp_path).stdout) == "2 failed, 103 passed"
    rerun = tach(tmp_path, "--lf", "-v")
    assert final_line(rerun.stdout) == "2 failed", rerun.stdout
    assert "test_dyn.py::test_dyn[1] FAILED" in rerun.stdout

    def first_module(*args: str) -> str:
        out = tach(tmp_path, "-n", "1", "-v", *args).stdout
        return re.search(r"^\[w0\] (test_\w+\.py)::", out, re.M).group(1)

    assert first_module() == "test_many.py"
    (tmp_path / "test_other.py").write_text("def test_fails():\n    pass\n")
    tach(tmp_path, "test_other.py")  # only test_dyn.py holds a failure now
    assert first_module("--ff") == "test_dyn.py"


def test_progress_is_shown_while_a_test_still_runs(tmp_path):
    """The terminal report holds its writes back only until the run waits: a test's letter
    reaches the pipe while the next test runs. Here the second test waits for this test to
    have read the first one's letter, so held-back output would make both wait."""
    fifo = tmp_path / "go"
    os.mkfifo(fifo)
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    (tmp_path / "test_live.py").write_text(
        "import os\nimport select\n\n\n"
        "def test_first():\n"
        "    pass\n\n\n"
        "def test_second():\n"
        "    fd = os.open(os.environ['TACH_TEST_FIFO'], os.O_RDONLY | os.O_NONBLOCK)\n"
        "    try:\n"
        "        assert select.select([fd], [], [], 60)[0], 'the first letter was not shown'\n"
        "        assert os.read(fd, 1) == b'x'\n"
        "    finally:\n"
        "        os.close(fd)\n"
    )
    # buffered as a pipe is by default (PYTHONUNBUFFERED would flush every write)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    env["TACH_TEST_FIFO"] = str(fifo)
    run = subprocess.Popen(
        [sys.executable, "-m", "tach", "-n", "1"], cwd=tmp_path, env=env, stdout=subprocess.PIPE
    )
    try:
        seen = b""
        with selectors.DefaultSelector() as selector:
            selector.register(run.stdout, selectors.EVENT_READ)
            # the header ends with an empty line; the progress letters follow it
            while b"." not in seen.partition(b"\n\n")[2]:
                assert selector.select(60), f"no progress letter shown: {seen!r}"
                chunk = os.read(run.stdout.fileno(), 4096)
                assert chunk, f"tach ended without showing a letter first: {seen!r}"
                seen += chunk
        # the second test holds the read end open while it waits (no reader: ENXIO, not a hang)
        go = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        os.write(go, b"x")
        os.close(go)
        rest, _ = run.communicate(timeout=120)
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
    assert final_line((seen + rest).decode()) == "2 passed"


def test_pytest_options_after_double_dash_reach_pytest(demo):
    result = tach(demo, "tests/test_pricing.py", "--", "--tb=line")
    assert "tests/test_pricing.py:35: AssertionError" in result.stdout
    assert "def test_bulk_discount_applies_at_fifty" not in result.stdout
