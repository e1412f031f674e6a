#!/usr/bin/env python3
"""Coverage under Tach against ``pytest --cov`` on the harness's projects.

    python3 compat/coverage.py [--project NAME ...] [--repeat N] [--mode none|module|test]
                               [--workers N]

For each project (default: humanize, structlog, attrs, python-dateutil) it installs pytest-cov
in the project's venv when missing, then runs, alternately and ``--repeat`` times each,
``pytest --cov --cov-branch`` and ``tach --cov --cov-branch`` with the project's arguments,
each writing coverage's JSON report. It compares the executed and missing lines and branches
of every file and prints, per project: files measured, files that differ, and both wall times
(medians) with their ratio. A project's ``files`` are copied into its work dir first and its
``services`` run for the duration of its runs (see ``corpus.py``). Exit status 1 when some
file differs.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import corpus as C

DEFAULT_PROJECTS = ["humanize", "structlog", "attrs", "python-dateutil"]
PYTEST_COV = ["pytest-cov==7.1.0", "coverage==7.18.0"]
TACH_PACKAGE = Path(__file__).resolve().parent.parent / "tach"
KEYS = ("executed_lines", "missing_lines", "executed_branches", "missing_branches")


def measured(report: Path) -> dict[str, dict[str, list]]:
    """What coverage measured, but Tach's own modules (reached in the venv through a link)."""
    files = json.loads(report.read_text())["files"]
    return {
        name: {key: data.get(key) for key in KEYS}
        for name, data in files.items()
        if not Path(name).resolve().is_relative_to(TACH_PACKAGE)
    }


def ensure_pytest_cov(venv: Path) -> None:
    python = str(venv / "bin" / "python")
    if subprocess.run([python, "-c", "import pytest_cov"], capture_output=True).returncode:
        subprocess.run([python, "-m", "pip", "install", "-q", *PYTEST_COV], check=True)


def timed_run(cmd: list[str], workdir: Path, env: dict[str, str]) -> tuple[float, int]:
    for stale in workdir.glob(".coverage*"):
        stale.unlink()
    began = time.perf_counter()
    result = subprocess.run(cmd, cwd=workdir, env=env, capture_output=True, text=True)
    return time.perf_counter() - began, result.returncode


def measure(
    project: C.Project,
    venv: Path,
    workdir: Path,
    env: dict[str, str],
    args: argparse.Namespace,
    out: Path,
) -> dict[str, list[float]]:
    """Run pytest and Tach with coverage, alternately; their wall times (reports in ``out``)."""
    python = str(venv / "bin" / "python")
    cov = ["--cov", "--cov-branch", "--cov-report="]
    commands = {
        "pytest": [python, "-m", "pytest", "-p", "no:cacheprovider", *cov],
        "tach": [python, "-m", "tach", "-n", args.workers, "--isolation", args.mode, *cov],
    }
    times: dict[str, list[float]] = {"pytest": [], "tach": []}
    for _ in range(args.repeat):
        for tool, cmd in commands.items():
            report = out / f"{project['name']}-{tool}.json"
            seconds, _code = timed_run(
                [*cmd, f"--cov-report=json:{report}", *C.pytest_args(project)], workdir, env
            )
            times[tool].append(seconds)
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--project", action="append", default=[])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--mode", default="module")
    parser.add_argument("--workers", default="2")
    args = parser.parse_args()
    manifest = C.load_manifest()
    rows = []
    differ = False
    out = Path(tempfile.mkdtemp(prefix="tach-coverage-"))
    for project in C.select(manifest, args.project or DEFAULT_PROJECTS):
        venv, workdir = C.paths(manifest, project)
        ensure_pytest_cov(venv)
        C.install_files(manifest, project, workdir)
        with C.services(project) as running:
            env = C.run_env(project, venv, workdir, service_env=running.env)
            times = measure(project, venv, workdir, env, args, out)
        name = project["name"]
        mine = measured(out / f"{name}-tach.json")
        theirs = measured(out / f"{name}-pytest.json")
        names = sorted(set(mine) | set(theirs))
        different = [f for f in names if mine.get(f) != theirs.get(f)]
        differ |= bool(different)
        for file in different[:5]:
            print(f"{name}: {file} differs", file=sys.stderr)
        pytest_s, tach_s = statistics.median(times["pytest"]), statistics.median(times["tach"])
        rows.append(
            [
                name,
                str(len(names)),
                str(len(different)),
                f"{pytest_s:.2f}",
                f"{tach_s:.2f}",
                f"{tach_s / pytest_s:.2f}",
            ]
        )
    header = ["project", "files", "differ", "pytest --cov s", "tach --cov s", "ratio"]
    print(C.table(header, rows))
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
