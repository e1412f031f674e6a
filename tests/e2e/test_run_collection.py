"""Workers collect unit after unit: a directory's listing is collected once per worker, and
what pytest collects for explicit paths is still what Tach runs."""

from __future__ import annotations

import collections
from pathlib import Path

import pytest

from ._run import MODES, outcomes, pytest_outcomes, run_tach

MODULES = 12

CONFTEST = """\
import os


def pytest_collect_file(file_path, parent):
    if os.environ.get("TACH_E2E_LOG"):
        with open(os.environ["TACH_E2E_LOG"], "a") as log:
            log.write(f"{os.getpid()} {file_path.name}\\n")
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """One directory of ``MODULES`` test modules, a file that only an explicit path collects,
    and a subdirectory left out by ``norecursedirs`` that holds a test module."""
    root = tmp_path / "project"
    tests = root / "tests"
    (tests / "skipped_dir").mkdir(parents=True)
    (root / "pyproject.toml").write_text(
        '[tool.pytest.ini_options]\ntestpaths = ["tests"]\nnorecursedirs = ["skipped_dir"]\n'
    )
    (tests / "conftest.py").write_text(CONFTEST)
    for m in range(MODULES):
        (tests / f"test_m{m:02d}.py").write_text(
            f"def test_a():\n    assert True\n\n\ndef test_b():\n    assert {m} != 7\n"
        )
    (tests / "check_extra.py").write_text("def test_extra():\n    assert True\n")
    (tests / "skipped_dir" / "test_hidden.py").write_text("def test_hidden():\n    pass\n")
    return root


@pytest.mark.parametrize("mode", MODES)
def test_a_directory_is_listed_once_per_worker(project: Path, tmp_path: Path, mode: str):
    log = tmp_path / "collect.log"
    events, result = run_tach(
        project, "-n", "1", "--isolation", mode, env={"TACH_E2E_LOG": str(log)}
    )
    assert result.returncode == 1, result.stderr  # test_m07.py::test_b fails on purpose
    assert outcomes(events) == pytest_outcomes(project)
    seen = collections.Counter(tuple(line.split()) for line in log.read_text().splitlines())
    modules = {name for _, name in seen if name.startswith("test_m")}
    assert len(modules) == MODULES
    # One listing of the directory per worker (and one more collection of a module when it is
    # the unit's own path); without reuse, every unit lists the whole directory again.
    assert max(seen.values()) <= 2, seen


@pytest.mark.parametrize(
    "args",
    [
        ("tests/check_extra.py", "tests/test_m01.py"),
        ("tests/skipped_dir", "tests/test_m02.py"),
        ("tests/skipped_dir/test_hidden.py", "tests/test_m03.py::test_a"),
        ("tests/test_m04.py", "tests"),
    ],
)
def test_explicit_paths_collect_as_in_pytest(project: Path, args: tuple[str, ...]):
    events, result = run_tach(project, "-n", "1", *args)
    expected = pytest_outcomes(project, *args)
    assert outcomes(events) == expected, result.stderr
    assert expected  # the explicit paths did collect something
