"""Running Tach on a copy of a gauntlet project and reading its NDJSON events."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

PROJECTS = Path(__file__).parent / "projects"
MODES = ("none", "module", "test")


def copy_project(name: str, dest: Path) -> Path:
    """A fresh copy of ``projects/NAME`` under ``dest``."""
    target = dest / name
    shutil.copytree(PROJECTS / name, target)
    return target


def free_port() -> int:
    """A loopback port that was free a moment ago (the port the racing tests fight over)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_tach(
    project: Path,
    *args: str,
    env: dict[str, str] | None = None,
    timeout: float = 300,
    prefix: Sequence[str] = (),
) -> tuple[list[dict], subprocess.CompletedProcess[str]]:
    """``python -m tach --format=json ARGS`` in ``project``: its events and the process.

    ``prefix`` runs it through another command (see :func:`without_file_privileges`)."""
    result = subprocess.run(
        [*prefix, sys.executable, "-m", "tach", "--format=json", "-p", "no:cacheprovider", *args],
        cwd=project,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    events = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    return events, result


def without_file_privileges() -> list[str] | None:
    """A command prefix under which file permissions apply to this user, or None.

    Permissions do not stop root: as root, the prefix drops the capabilities that override
    them (``setpriv``, from util-linux); None if that is not possible here."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        return None
    prefix = [setpriv, "--bounding-set=-dac_override,-dac_read_search"]
    probe = subprocess.run([*prefix, "true"], capture_output=True, check=False)
    return prefix if probe.returncode == 0 else None


def finished(events: list[dict]) -> dict[str, dict]:
    """The ``test_finished`` event of each test, by id."""
    return {e["id"]: e for e in events if e["event"] == "test_finished"}


def outcomes(events: list[dict]) -> dict[str, str]:
    """Status per test id (``collect_error`` per failed collector)."""
    found: dict[str, str] = {}
    for event in events:
        if event["event"] == "test_finished":
            found[event["id"]] = f"{event['status']}:{event['when']}"
        elif event["event"] == "collect_error":
            found[event["id"]] = "collect_error"
    return found
