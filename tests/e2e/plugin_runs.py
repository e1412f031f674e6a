"""Running pytest and Tach on a fixture project with the plugins' interpreter
(:func:`tests.e2e.plugin_env.plugin_python`)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

HERE = Path(__file__).parent


def run(
    python: Path, project: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``python -m ARGS`` in ``project``."""
    return subprocess.run(
        [str(python), "-m", *args],
        cwd=project,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=300,
    )


def pytest_outcomes(
    python: Path, project: Path, *args: str, env: dict[str, str] | None = None
) -> tuple[dict[str, str], subprocess.CompletedProcess[str]]:
    """pytest's merged outcome per test id (see ``outcome_recorder``), and the process."""
    out = project / ".pytest-outcomes.json"
    extra = dict(env or {})
    pythonpath = os.pathsep.join(filter(None, [str(HERE), extra.pop("PYTHONPATH", "")]))
    result = run(
        python,
        project,
        "pytest",
        "-p",
        "outcome_recorder",
        *args,
        env={**extra, "OUTCOME_RECORDER_FILE": str(out), "PYTHONPATH": pythonpath},
    )
    return json.loads(out.read_text()), result


def tach_outcomes(
    python: Path, project: Path, *args: str, env: dict[str, str] | None = None
) -> tuple[dict[str, str], subprocess.CompletedProcess[str]]:
    """Tach's outcome per test id (``--format=json``), and the process."""
    result = run(python, project, "tach", "--format=json", *args, env=env)
    found = {}
    for line in result.stdout.splitlines():
        if not line.startswith("{"):
            continue
        event = json.loads(line)
        if event["event"] == "test_finished":
            found[event["id"]] = event["status"]
        elif event["event"] == "collect_error":
            found[event["id"]] = "collect_error"
    return found, result
