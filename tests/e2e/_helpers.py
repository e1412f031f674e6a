"""Subprocess helpers for the e2e tests."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run ``args`` (argv without the interpreter) with this interpreter in ``cwd``."""
    return subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True,
                          check=False, timeout=120)


def collected_ids(cwd: Path, *args: str) -> list[str]:
    """pytest's own ``--collect-only -q`` ids."""
    proc = run(["-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *args], cwd)
    return [ln for ln in proc.stdout.splitlines() if "::" in ln]
