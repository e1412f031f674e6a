"""The zygote's exit runs the exit handlers its conftests registered, once.

The zygote ends with ``os._exit`` (freeing the heap of every warm import would only cost time),
after running the ``atexit`` handlers as an interpreter's exit would. Workers, forked from it,
skip them: the handlers are the zygote's, and pytest's single process runs them once.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ._run import outcomes, run_tach

CONFTEST = """
import atexit
import os

def _record():
    with open(os.environ["E2E_ATEXIT_FILE"], "a") as f:
        f.write("exit handler ran\\n")

atexit.register(_record)
"""


@pytest.mark.parametrize("mode", ["none", "module"])
def test_the_zygotes_exit_handlers_run_once(tmp_path, mode):
    project = tmp_path / "project"
    project.mkdir()
    (project / "conftest.py").write_text(CONFTEST)
    (project / "test_a.py").write_text("def test_a():\n    pass\n")
    (project / "test_b.py").write_text("def test_b():\n    assert False\n")
    record = tmp_path / "atexit.txt"
    events, result = run_tach(
        project, "--isolation", mode, "-n", "2", env={"E2E_ATEXIT_FILE": str(record)}
    )
    assert result.returncode == 1, result.stderr
    assert outcomes(events) == {"test_a.py::test_a": "pass", "test_b.py::test_b": "fail"}
    assert Path(record).read_text() == "exit handler ran\n"
