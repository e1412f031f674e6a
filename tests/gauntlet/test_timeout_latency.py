"""A hung test is reported within its timeout plus a second (measured on the event stream)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from ._run import MODES, copy_project

#: The issue's target: reported within the timeout (1 s here) + 1 s.
LIMIT_S = 2.0


@pytest.mark.parametrize("mode", MODES)
def test_a_hung_test_is_reported_within_its_timeout_plus_one_second(tmp_path, mode):
    project = copy_project("gauntlet", tmp_path)
    tach = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tach",
            "--format=json",
            "-p",
            "no:cacheprovider",
            "-n",
            "1",
            "--isolation",
            mode,
            "tests/test_hangs.py::test_sleep",
            "tests/test_hangs.py::test_after",
        ],
        cwd=project,
        env=os.environ,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    seen: dict[tuple[str, str], float] = {}
    assert tach.stdout is not None
    with tach:
        for line in tach.stdout:
            event = json.loads(line)
            if event["event"] in ("test_start", "test_finished"):
                seen[(event["event"], event["id"])] = time.monotonic()
    hung = "tests/test_hangs.py::test_sleep"
    latency = seen[("test_finished", hung)] - seen[("test_start", hung)]
    assert latency < LIMIT_S, f"reported {latency:.2f} s after it started (timeout 1 s)"
    assert ("test_finished", "tests/test_hangs.py::test_after") in seen
