"""Running pytest and Tach on a fixture project, and reading what they say."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent
MODES = ("none", "module", "test")


def pytest_outcomes(
    project: Path, *args: str, env: dict[str, str] | None = None
) -> dict[str, str]:
    """pytest's merged outcome per test id (and ``collect_error`` per failed collector);
    ``env`` is added to the environment (its ``PYTHONPATH`` after the recorder's)."""
    out = project / ".pytest-outcomes.json"
    extra = dict(env or {})
    pythonpath = os.pathsep.join(filter(None, [str(HERE), extra.pop("PYTHONPATH", "")]))
    env = {**os.environ, **extra, "OUTCOME_RECORDER_FILE": str(out), "PYTHONPATH": pythonpath}
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


def run_tach(
    project: Path, *args: str, env: dict[str, str] | None = None
) -> tuple[list[dict], subprocess.CompletedProcess[str]]:
    """``python -m tach --format=json ARGS`` in ``project``: its events and the process."""
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


def outcomes(events: list[dict]) -> dict[str, str]:
    """Tach's status per test id (``collect_error`` per failed collector), as pytest's."""
    found = {}
    for event in events:
        if event["event"] == "test_finished":
            found[event["id"]] = event["status"]
        elif event["event"] == "collect_error":
            found[event["id"]] = "collect_error"
    return found


def pytest_warnings(
    project: Path, *args: str, env: dict[str, str] | None = None
) -> tuple[list[list[str]], int | None]:
    """The warnings pytest records (``[category, message, nodeid]`` each) and the count its
    summary line gives."""
    out = project / ".pytest-warnings.json"
    env = {
        **os.environ,
        **(env or {}),
        "WARNING_RECORDER_FILE": str(out),
        "PYTHONPATH": str(HERE),
    }
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "warning_recorder", "-p", "no:cacheprovider", *args],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    return json.loads(out.read_text()), summary_warnings(result.stdout)


def summary_warnings(report: str) -> int | None:
    """The warnings count of pytest's (or Tach's) summary line in ``report``: 0 when it names
    none, ``None`` when there is no summary line."""
    lines = [line for line in report.splitlines() if re.fullmatch(r"=+ .* in [\d.]+s.* =+", line)]
    if not lines:
        return None
    found = re.search(r"(\d+) warnings?\b", lines[-1])
    return int(found.group(1)) if found else 0


def edit(path: Path, old: str, new: str) -> None:
    """Replace ``old`` (which must be there) with ``new`` in the file at ``path``."""
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def marked_processes(variable: str, value: str) -> list[int]:
    """The live processes whose environment has ``variable=value`` (a mark a test gives the
    process it starts, which every process below it inherits)."""
    mark = f"{variable}={value}".encode()
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/environ", "rb") as file:
                    if mark in file.read():
                        found.append(int(entry))
            except OSError:
                continue
    return found
