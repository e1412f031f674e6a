"""Tach's per-test outcomes equal pytest's on real mini projects, in every isolation mode."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent


def pytest_outcomes(project: Path, *args: str) -> dict[str, str]:
    out = project / ".pytest-outcomes.json"
    env = {**os.environ, "OUTCOME_RECORDER_FILE": str(out), "PYTHONPATH": str(HERE)}
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "outcome_recorder",
            "-p",
            "no:cacheprovider",
            "-q",
            *args,
        ],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    return json.loads(out.read_text())


def tach_events(
    project: Path, *args: str, env: dict[str, str] | None = None
) -> tuple[list[dict], subprocess.CompletedProcess]:
    result = subprocess.run(
        [sys.executable, "-m", "tach", "--format=json", *args],
        cwd=project,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=300,
    )
    events = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    return events, result


def tach_outcomes(events: list[dict]) -> dict[str, str]:
    outcomes = {}
    for event in events:
        if event["event"] == "test_finished":
            outcomes[event["id"]] = event["status"]
        elif event["event"] == "collect_error":
            outcomes[event["id"]] = "collect_error"
    return outcomes


@pytest.mark.parametrize("isolation", ["none", "module", "test"])
@pytest.mark.parametrize("project", ["run_features"], indirect=True)
def test_outcomes_equal_pytest(project, isolation):
    expected = pytest_outcomes(project)
    events, result = tach_events(project, "--isolation", isolation, "-n", "2")
    got = tach_outcomes(events)
    assert result.returncode == 1, result.stderr
    assert got == expected
    finished = [e["id"] for e in events if e["event"] == "test_finished"]
    assert len(finished) == len(set(finished)), "a test was reported twice"
