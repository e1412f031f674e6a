"""Warm runs: ``tach --watch`` after an edit, and ``tach --keep-warm`` between commands.

Both on the heavy-imports suite (:func:`._suites.make_heavy_imports`: every third-party module
of ``numpy, hypothesis, jsonschema, cryptography, boto3`` the interpreter has, much of the
standard library, a 300-module project package), with one more project module, ``hot.py``,
imported by every tenth test module.

``tach-bench watch``: the time from writing a changed file to the last result, for two edits,
each ``--repeat`` times (each runner in a copy of the suite of its own, the runners taking turns):

* ``test file``: one test module changes;
* ``hot module``: ``hot.py`` changes (10% of the test modules import it).

Runners: ``tach --watch`` (from the write to its ``run_finished`` event, read as it is printed);
``pytest FILES`` (a fresh pytest on the affected files, started right after the write: what a
watcher that knows the affected files would run); ``pytest`` (a fresh pytest on the whole suite,
as pytest-watcher runs it, its own delay before starting left out); ``pytest --testmon`` (a
fresh pytest that pytest-testmon narrows to what the change affects; where it is installed,
after one untimed run that builds its database).

``tach-bench warm``: wall time of whole commands, ``--repeat`` rounds, the runners taking
turns: ``pytest FILE``, ``tach FILE`` and ``tach --keep-warm FILE`` (its server and session made
by one untimed run first), then the same for the whole suite.

Every run's summary line is checked against what the suite must give. Medians; ratios are to
pytest's median in the same run. Every runner's pytest makes its temporary directories under a
root of the benchmark's own (``PYTEST_DEBUG_TEMPROOT``): at the end of each session pytest looks
at every ``pytest-N`` directory of the user's default root, and on a machine where killed runs
left hundreds there (each kept three days), that alone costs each run 10-25 ms.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import select
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from . import _suites
from ._util import machine
from .bench_e2e import clean_env, run_once

#: Third-party modules of the suite, where the interpreter has them.
THIRD_PARTY = ("numpy", "hypothesis", "jsonschema", "cryptography", "boto3")
#: The test module the ``test file`` edit changes.
TARGET = "tests/test_heavy_005.py"
#: How long one watch run may take before the benchmark gives up.
RUN_TIMEOUT_S = 300.0


def bench_env(workdir: Path) -> dict[str, str]:
    """The environment of every run: :func:`.bench_e2e.clean_env`, with a temporary root of
    the benchmark's own (see the module's docstring)."""
    temproot = workdir / "temproot"
    temproot.mkdir(exist_ok=True)
    return {**clean_env(), "PYTEST_DEBUG_TEMPROOT": str(temproot)}


def make_suite(root: Path, python: str, test_modules: int, pkg_modules: int) -> _suites.Suite:
    """The heavy-imports suite, and ``hot.py`` imported by every tenth test module."""
    third_party = _suites.available_modules(python, THIRD_PARTY)
    suite = _suites.make_heavy_imports(
        root,
        test_modules=test_modules,
        pkg_modules=pkg_modules,
        python=python,
        third_party=third_party,
    )
    (root / "src/bigpkg/hot.py").write_text("VALUE = 0\n")
    hot = sorted((root / "tests").glob("test_heavy_*.py"))[::10]
    for path in hot:
        path.write_text(
            "from bigpkg import hot\n\n\ndef test_hot_value():\n    assert hot.VALUE >= 0\n\n\n"
            + path.read_text()
        )
    suite.tests += len(hot)
    suite.expected["passed"] += len(hot)
    suite.params["hot_modules"] = [p.relative_to(root).as_posix() for p in hot]
    return suite


def tests_in(python: str, root: Path, files: Sequence[str]) -> int:
    """How many tests pytest collects from ``files`` (for checking what a run ran)."""
    done = subprocess.run(
        [python, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *files],
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
        env=clean_env(),
    )
    return sum(1 for line in done.stdout.splitlines() if "::" in line)


def edit(root: Path, which: str, count: int) -> None:
    """The ``count``-th edit of ``which``: a new module-level statement (code, not a comment:
    pytest-testmon, which compares code, must see a change too); the tests still pass."""
    path = root / (TARGET if which == "test file" else "src/bigpkg/hot.py")
    text = path.read_text()
    path.write_text(text + f"EDIT_{count} = {count}\n")


class Watch:
    """``tach --watch --format=json`` in a suite, read as it prints."""

    def __init__(self, python: str, root: Path, workers: int, env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            [python, "-m", "tach", "-w", "--format=json", "-q", "-n", str(workers)],
            cwd=root,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        self.buffer = b""
        self.cycle = 0

    def finished(self) -> tuple[float, dict[str, Any]]:
        """Wait for the next ``run_finished``: when it was read, and the event."""
        deadline = time.monotonic() + RUN_TIMEOUT_S
        assert self.process.stdout is not None
        fd = self.process.stdout.fileno()
        while True:
            while b"\n" in self.buffer:
                line, self.buffer = self.buffer.split(b"\n", 1)
                if line.startswith(b'{"event":"run_finished"'):
                    now = time.perf_counter()
                    self.cycle += 1
                    return now, json.loads(line)
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise TimeoutError("tach --watch did not finish a run")
            data = os.read(fd, 1 << 16)
            if not data:
                raise RuntimeError("tach --watch ended")
            self.buffer += data

    def close(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, 2)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, 9)
            self.process.wait()


def run_watch(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    python = args.python
    template = workdir / "suite"
    suite = make_suite(template, python, args.test_modules, args.pkg_modules)
    hot = suite.params["hot_modules"]
    expected = {
        "test file": tests_in(python, template, [TARGET]),
        "hot module": tests_in(python, template, hot),
    }
    affected = {"test file": [TARGET], "hot module": hot}
    runners = ["tach --watch", "pytest FILES", "pytest (whole suite)"]
    if _suites.available_modules(python, ["testmon"]):
        runners.append("pytest --testmon")
    roots = {}
    for runner in runners:
        roots[runner] = workdir / runner.replace(" ", "_").replace("(", "").replace(")", "")
        shutil.copytree(template, roots[runner])
    env = bench_env(workdir)
    watch = Watch(python, roots["tach --watch"], args.workers, env)
    watch.finished()  # the first run: everything
    if "pytest --testmon" in runners:
        testmon = [python, "-m", "pytest", "-q", "--testmon"]
        run_once(testmon, roots["pytest --testmon"], env, 600)  # builds its database
    samples: dict[tuple[str, str], list[float]] = {}
    checks: list[str] = []
    try:
        for rep in range(args.repeat):
            for which in ("test file", "hot module"):
                order = runners[rep % len(runners) :] + runners[: rep % len(runners)]
                for runner in order:
                    root = roots[runner]
                    start = time.perf_counter()
                    edit(root, which, rep)
                    if runner == "tach --watch":
                        end, event = watch.finished()
                        ran = event["passed"] + event["failed"]
                        want = expected[which]
                    else:
                        cmd = [python, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
                        if runner == "pytest FILES":
                            cmd += affected[which]
                        elif runner == "pytest --testmon":
                            cmd = [python, "-m", "pytest", "-q", "--testmon"]
                        result = run_once(cmd, root, env, RUN_TIMEOUT_S)
                        end = time.perf_counter()
                        counts = result.counts or {}
                        ran = counts.get("passed", 0) + counts.get("failed", 0)
                        want = suite.tests if runner == "pytest (whole suite)" else expected[which]
                        if runner == "pytest --testmon":
                            want = ran  # testmon's own choice; checked only for failures
                        if counts.get("failed"):
                            checks.append(f"{runner}, {which}: failures")
                    if ran != want:
                        checks.append(f"{runner}, {which}: ran {ran} tests, expected {want}")
                    samples.setdefault((runner, which), []).append(end - start)
    finally:
        watch.close()
    rows = []
    for which in ("test file", "hot module"):
        base = statistics.median(samples[("pytest FILES", which)])
        for runner in runners:
            values = samples[(runner, which)]
            rows.append(
                {
                    "edit": which,
                    "runner": runner,
                    "median_s": round(statistics.median(values), 4),
                    "min_s": round(min(values), 4),
                    "max_s": round(max(values), 4),
                    "ratio_to_pytest_files": round(statistics.median(values) / base, 3),
                }
            )
    return {
        "subject": "watch",
        "suite": suite.description,
        "tests": {"all": suite.tests, **expected},
        "repeat": args.repeat,
        "rows": rows,
        "problems": checks,
    }


def run_warm(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    python = args.python
    root = workdir / "suite"
    suite = make_suite(root, python, args.test_modules, args.pkg_modules)
    runtime = workdir / "runtime"
    runtime.mkdir(mode=0o700)
    env = {**bench_env(workdir), "XDG_RUNTIME_DIR": str(runtime)}
    file_tests = tests_in(python, root, [TARGET])
    workers = ["-n", str(args.workers)]
    commands = {
        "pytest FILE": [python, "-m", "pytest", "-q", "-p", "no:cacheprovider", TARGET],
        "tach FILE": [python, "-m", "tach", "-q", *workers, TARGET],
        "tach --keep-warm FILE": [python, "-m", "tach", "-q", "--keep-warm", *workers, TARGET],
        "pytest": [python, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        "tach": [python, "-m", "tach", "-q", *workers],
        "tach --keep-warm": [python, "-m", "tach", "-q", "--keep-warm", *workers],
    }
    want = {name: file_tests if name.endswith("FILE") else suite.tests for name in commands}
    for cmd in commands.values():  # bytecode, .tach/, the server and its sessions
        run_once(cmd, root, env, RUN_TIMEOUT_S)
    samples: dict[str, list[float]] = {name: [] for name in commands}
    checks: list[str] = []
    names = list(commands)
    try:
        for rep in range(args.repeat):
            for name in names[rep % len(names) :] + names[: rep % len(names)]:
                result = run_once(commands[name], root, env, RUN_TIMEOUT_S)
                counts = result.counts or {}
                if counts.get("passed") != want[name] or result.returncode != 0:
                    checks.append(f"{name}: {counts} (exit {result.returncode})")
                samples[name].append(result.wall_s)
    finally:
        subprocess.run(
            [python, "-m", "tach", "server", "stop", "--all"],
            cwd=root,
            env=env,
            capture_output=True,
            check=False,
        )
    rows = []
    for name in names:
        base = statistics.median(samples["pytest FILE" if name.endswith("FILE") else "pytest"])
        values = samples[name]
        rows.append(
            {
                "command": name,
                "median_s": round(statistics.median(values), 4),
                "min_s": round(min(values), 4),
                "ratio_to_pytest": round(statistics.median(values) / base, 3),
            }
        )
    return {
        "subject": "warm",
        "suite": suite.description,
        "tests": {"all": suite.tests, "file": file_tests},
        "repeat": args.repeat,
        "rows": rows,
        "problems": checks,
    }


def main(argv: Sequence[str] | None = None, subject: str = "warm") -> int:
    parser = argparse.ArgumentParser(prog=f"tach-bench {subject}", description=__doc__)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--workers", type=int, default=min(2, len(os.sched_getaffinity(0))))
    parser.add_argument("--python", default=sys.executable)
    parser.add_argument("--test-modules", type=int, default=20)
    parser.add_argument("--pkg-modules", type=int, default=300)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(list(argv) if argv is not None else None)
    with tempfile.TemporaryDirectory(prefix=f"tach-bench-{subject}-") as tmp:
        load = os.getloadavg()
        result = (run_watch if subject == "watch" else run_warm)(args, Path(tmp))
    result["machine"] = {**machine(), "load_before": load, "load_after": os.getloadavg()}
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"{subject}: {result['suite']}; {result['tests']}; medians of {args.repeat}\n")
        rows = result["rows"]
        keys = list(rows[0])
        print("| " + " | ".join(keys) + " |")
        print("|" + "---|" * len(keys))
        for row in rows:
            print("| " + " | ".join(str(row[k]) for k in keys) + " |")
        for problem in result["problems"]:
            print(f"\nPROBLEM: {problem}")
    return 1 if result["problems"] else 0


def main_watch(argv: Sequence[str] | None = None) -> int:
    """``tach-bench watch``."""
    return main(argv, "watch")
