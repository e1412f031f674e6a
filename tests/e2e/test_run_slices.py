"""Slicing a long module across workers: no cut splits a class a class-scoped fixture binds,
so class set-ups run once, and a module pytest binds to one process (``setup_module``) is run
whole.

The fixture project's durations are recorded in ``.tach/durations.json`` before the run, as
an earlier run would have left them, so that the two long modules are heavier than a worker's
share (four workers) and sliced although they hold fewer than 500 tests.
"""

from __future__ import annotations

import json
import textwrap
from collections import Counter
from pathlib import Path

import pytest

from tests.e2e._run import MODES, outcomes, pytest_outcomes, run_tach

BIG = """
    import os
    import unittest

    import pytest


    def note(what):
        with open(os.environ.get("SLICE_LOG", os.devnull), "a") as f:
            f.write(f"{what} {os.getpid()}\\n")


    def test_first():
        note("test_first")


    @pytest.fixture(scope="class")
    def shared():
        note("TestShared.shared")
        return []


    class TestShared:
        @pytest.mark.parametrize("n", range(4))
        def test_uses(self, shared, n):
            assert shared == []


    class TestCase(unittest.TestCase):
        @classmethod
        def setUpClass(cls):
            note("TestCase.setUpClass")
            cls.ready = True

        def test_one(self):
            assert self.ready

        def test_two(self):
            assert self.ready


    def test_middle():
        note("test_middle")


    class TestPlain:
        def test_a(self):
            pass

        def test_b(self):
            pass


    def test_last():
        note("test_last")
"""

SETUP_MODULE = """
    import os


    def setup_module():
        with open(os.environ.get("SLICE_LOG", os.devnull), "a") as f:
            f.write(f"setup_module {os.getpid()}\\n")


    def test_one():
        pass


    def test_two():
        pass


    def test_three():
        pass


    def test_four():
        pass
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    (root / "tests").mkdir(parents=True)
    (root / "pytest.ini").write_text("[pytest]\n")
    (root / "tests" / "test_big.py").write_text(textwrap.dedent(BIG))
    (root / "tests" / "test_setup_module.py").write_text(textwrap.dedent(SETUP_MODULE))
    (root / "tests" / "test_small.py").write_text("def test_small():\n    pass\n")
    return root


def _record_durations(root: Path, ids: list[str]) -> None:
    durations = {i: (0.001 if "test_small" in i else 0.5) for i in ids}
    (root / ".tach").mkdir(exist_ok=True)
    (root / ".tach" / "durations.json").write_text(json.dumps(durations))


@pytest.mark.parametrize("mode", MODES)
def test_long_modules_are_sliced_without_splitting_bound_classes(
    project: Path, tmp_path: Path, mode: str
) -> None:
    expected = pytest_outcomes(project)
    _record_durations(project, list(expected))
    log = tmp_path / "slice.log"
    events, result = run_tach(
        project, "--isolation", mode, "-n", "4", "--slice", "always", env={"SLICE_LOG": str(log)}
    )
    assert outcomes(events) == expected, result.stderr
    assert set(expected.values()) == {"pass"}
    notes = Counter(line.split()[0] for line in log.read_text().splitlines())
    # set-ups pytest runs once per class or module ran once, wherever the cuts fell
    assert notes["TestShared.shared"] == 1
    assert notes["TestCase.setUpClass"] == 1
    assert notes["setup_module"] == 1
    if mode == "module":  # one process per unit: a sliced module shows more than one pid
        pids: dict[str, set[int]] = {}
        for event in events:
            if event["event"] == "test_start":
                pids.setdefault(event["file"], set()).add(event["pid"])
        assert len(pids["tests/test_big.py"]) >= 2
        # pytest binds test_setup_module.py to one process (its xunit setup_module): the
        # slices agreed that the first runs it whole
        assert len(pids["tests/test_setup_module.py"]) == 1
