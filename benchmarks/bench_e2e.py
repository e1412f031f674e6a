"""End to end: Tach in each isolation mode against pytest and pytest-xdist on generated suites.

Suites (:mod:`._suites`): ``trivial`` (4,000 empty tests), ``heavy_imports`` (numpy,
hypothesis, much of the stdlib and a 200-module project package), ``costly_fixture`` (1 s session
fixture, module fixtures), ``cpu_bound`` (200 × ~20 ms of CPU) and ``mixed`` (every outcome).
Optionally (``--realworld``) the projects of the shared real-world corpus, each run with its own
venv.

Runners, each a fresh process started from this one, timed by this process around the
subprocess (start to exit, output piped):

* ``pytest``: ``python -m pytest -q -p no:cacheprovider``
* ``xdist``: the same with ``-n W`` (pytest-xdist)
* ``tach-none``/``tach-module``/``tach-test``: ``python -m tach -q -n W --isolation MODE``

Method. Every suite is generated first. Each (suite, runner) pair runs ``--warmup`` times
unmeasured (bytecode caches, Tach's ``.tach/`` cache, the page cache). Then ``--repeat``
repetitions; within a repetition every suite is run by every runner, round-robin, the runner
order rotated by one each repetition so no runner always follows the same neighbour. The fork
floor is measured once per repetition, under the same conditions. Reported: the median wall
time, its ratio to plain pytest's median **in the same run**, and the median of the paired
per-repetition ratios (robust to drift in machine load). CPU seconds are the user+system time of
the reaped process tree (``RUSAGE_CHILDREN`` deltas).

Outcome counts are parsed from each run's closing summary line ("2 failed, 10 passed, ... in
1.2s"; Tach prints pytest's exact line) and cross-checked: every runner against plain pytest and
against what the generator says the suite must give; any mismatch is flagged in the table and
makes the exit status 1. For ``costly_fixture`` the session fixture leaves a marker file per
set-up and teardown, so the table shows how many times each runner set it up.

Fork floor: µs per ``tach._native.proc.fork() + os._exit(0) + os.waitpid`` in a fresh
interpreter that has imported pytest (and, for the heavy suite, also its heavy modules), after
``gc.freeze()``, as the zygote does. ``isolation=test`` pays one such fork per test; its cost per
test is estimated from the difference to ``isolation=none`` in the same run, both as wall time
× workers / tests and as CPU time / tests, and divided by the floor.

Memory (heavy_imports unless ``--mem-suite``): separate, untimed runs. A sampler thread walks
the run's process tree every ``--mem-interval-ms`` (``/proc/PID/task/*/children``) and sums
``/proc/PID/smaps_rollup`` over it: ``Pss`` (each page divided by the number of processes
mapping it, so copy-on-write pages shared by the zygote and its forks are counted once in total)
and ``Pss_Anon`` (the heap part; file pages of shared libraries may also be shared with
processes outside the tree), alongside ``Rss`` (which counts a shared page in every process that
maps it) and USS (private pages). The peak of each sum over the run is reported; the median over
``--mem-repeat`` runs.

Run: ``python -m tach.bench.bench_e2e [--repeat 5] [--suites trivial,mixed] [--json]
[--out DIR]`` or ``tach-bench e2e``. ``--out DIR`` writes ``e2e.md``, ``e2e.json`` and
``e2e.png``. The machine is usually shared: read the medians with the load averages recorded in
the JSON.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime
import json
import os
import re
import resource
import select
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from . import _suites
from ._util import machine

RUNNERS = ("pytest", "collect", "xdist", "tach-none", "tach-module", "tach-test")
#: Runners that do not run the tests: ``collect`` is ``pytest --collect-only``, timed to bound
#: what any runner that imports the suite once can reach (see :func:`amdahl_bound`).
NOT_RUNS = ("collect",)
DEFAULT_SUITES = ("trivial", "heavy_imports", "costly_fixture", "cpu_bound", "mixed")

#: Environment variables that would change how pytest or Tach behave if inherited.
_SCRUB = (
    "PYTEST_ADDOPTS", "PYTEST_PLUGINS", "PYTEST_DISABLE_PLUGIN_AUTOLOAD", "PYTEST_CURRENT_TEST",
    "PYTHONPATH", "PYTHONSTARTUP", "PYTHONDONTWRITEBYTECODE", "PYTHONWARNINGS", "PY_COLORS",
    "FORCE_COLOR", "NO_COLOR", "HYPOTHESIS_PROFILE", "CI",
)

#: Targets of issue 4 ("Speed", "Memory") for the default mode, by suite.
SPEED_TARGETS = {"heavy_imports": 0.6, "cpu_bound": 0.6, "costly_fixture": 0.6, "trivial": 0.75}
MEMORY_TARGET = 1.5
FLOOR_TARGET = 1.5

_ITEM = r"\d+ [a-z]+(?: [a-z]+)?"  # "3 passed", "2 subtests passed" (pytest 9)
_SUMMARY = re.compile(
    rf"^=*\s*(?P<body>{_ITEM}(?:, {_ITEM})*|no tests ran) in (?P<secs>[\d.]+)s\b"
)
_WORDS = {
    "failed": "failed", "passed": "passed", "skipped": "skipped", "xfailed": "xfailed",
    "xpassed": "xpassed", "error": "errors", "errors": "errors", "warning": "warnings",
    "warnings": "warnings", "deselected": "deselected", "rerun": "rerun",
    "subtests passed": "subtests_passed", "subtests failed": "subtests_failed",
    "subtests skipped": "subtests_skipped",
}


# --------------------------------------------------------------------------------------------
# running


def parse_summary(output: str) -> dict[str, int] | None:
    """Counts from pytest's (or Tach's) closing summary line, the last one in ``output``."""
    for line in reversed(output.splitlines()):
        match = _SUMMARY.match(line.strip())
        if match:
            counts = dict.fromkeys(_suites.OUTCOMES, 0)
            if match["body"] != "no tests ran":
                for item in match["body"].split(", "):
                    number, word = item.split(" ", 1)
                    key = _WORDS.get(word, word)
                    counts[key] = counts.get(key, 0) + int(number)
            return counts
    return None


def outcome_counts(counts: dict[str, int] | None) -> dict[str, int] | None:
    """Only the test outcomes (not warnings or deselected), and subtests' when there are any."""
    if counts is None:
        return None
    outcomes = {k: counts.get(k, 0) for k in _suites.OUTCOMES}
    outcomes.update({k: v for k, v in counts.items() if k.startswith("subtests_") and v})
    return outcomes


def clean_env(base: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ if base is None else base)
    for key in list(env):
        if key in _SCRUB or key.startswith("TACH_"):
            del env[key]
    return env


@dataclasses.dataclass
class RunResult:
    wall_s: float
    cpu_s: float
    returncode: int | str
    counts: dict[str, int] | None
    output_tail: str
    #: Processes of the run still alive when its first process had exited (then killed).
    leftovers: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {"wall_s": round(self.wall_s, 4), "cpu_s": round(self.cpu_s, 4),
                "returncode": self.returncode, "counts": self.counts,
                "leftovers": self.leftovers}


def _children_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL what is left of the session ``proc`` leads. Call it only while ``proc`` is not
    reaped yet (running or a zombie), so that its pid, the group's id, cannot have been reused."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


def _group_members(pgid: int) -> list[int]:
    """Live processes (not zombies) of process group ``pgid``."""
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(entry))
    return members


def _wait_exit(proc: subprocess.Popen[bytes], timeout: float) -> bool:
    """Wait until ``proc`` exits, without reaping it; False on timeout."""
    pidfd = os.pidfd_open(proc.pid)
    try:
        ready, _, _ = select.select([pidfd], [], [], timeout)
        return bool(ready)
    finally:
        os.close(pidfd)


def run_once(cmd: Sequence[str], cwd: Path, env: dict[str, str], timeout: float) -> RunResult:
    """Run ``cmd`` once; wall time from start to exit as this process sees it.

    Output goes to an unlinked temporary file (nothing has to drain a pipe meanwhile)."""
    with tempfile.TemporaryFile() as out:
        cpu0 = _children_cpu()
        start = time.perf_counter()
        proc = subprocess.Popen(
            list(cmd), cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=out,
            stderr=subprocess.STDOUT, start_new_session=True,
        )
        exited = _wait_exit(proc, timeout)
        wall = time.perf_counter() - start
        # A run may leave processes behind in its session (it should not): count and end them,
        # while the leader is a zombie that keeps the group's id from being reused.
        leftovers = len(_group_members(proc.pid)) if exited else 0
        _kill_group(proc)
        proc.wait()
        rc: int | str = proc.returncode if exited else "timeout"
        cpu = _children_cpu() - cpu0
        out.seek(0)
        text = out.read().decode(errors="replace")
    return RunResult(wall, cpu, rc, parse_summary(text), text[-3000:], leftovers)


def runner_cmd(runner: str, python: str, workers: int, extra: Sequence[str] = ()) -> list[str]:
    if runner == "pytest":
        return [python, "-m", "pytest", "-q", "-p", "no:cacheprovider", *extra]
    if runner == "collect":
        return [python, "-m", "pytest", "-q", "--collect-only", "-p", "no:cacheprovider", *extra]
    if runner == "xdist":
        return [python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", str(workers),
                *extra]
    if runner.startswith("tach-"):
        mode = runner.split("-", 1)[1]
        return [python, "-m", "tach", "-q", "-n", str(workers), "--isolation", mode, *extra]
    raise ValueError(runner)


def importable(python: str, module: str) -> bool:
    return bool(_suites.available_modules(python, [module]))


def version_of(python: str, module: str) -> str | None:
    probe = subprocess.run(
        [python, "-c", f"import importlib.metadata as m; print(m.version({module!r}))"],
        capture_output=True, text=True, check=False,
    )
    return probe.stdout.strip() or None if probe.returncode == 0 else None


# --------------------------------------------------------------------------------------------
# fork floor

_FLOOR_CODE = r"""
import gc, json, os, sys, time
sys.path[:0] = json.loads(sys.argv[3])
import pytest
for name in json.loads(sys.argv[2]):
    __import__(name)
from tach._native import proc
n, warm = int(sys.argv[1]), 5
gc.collect()
gc.freeze()
samples = []
ok = True
for i in range(n + warm):
    t = time.perf_counter_ns()
    pid = proc.fork()
    if pid == 0:
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    ok = ok and status == 0
    if i >= warm:
        samples.append((time.perf_counter_ns() - t) / 1000)
samples.sort()
rss = 0
with open("/proc/self/status") as f:
    for line in f:
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1])
print(json.dumps({"median_us": samples[len(samples) // 2],
                  "p90_us": samples[min(len(samples) - 1, int(len(samples) * 0.9))],
                  "min_us": samples[0], "rss_kib": rss, "ok": ok, "forks": n}))
"""


def fork_floor(python: str, imports: Sequence[str], path: Sequence[str], forks: int,
               env: dict[str, str]) -> dict[str, Any]:
    """One fork-floor measurement in a fresh ``python`` with pytest and ``imports`` loaded."""
    proc = subprocess.run(
        [python, "-c", _FLOOR_CODE, str(forks), json.dumps(list(imports)), json.dumps(list(path))],
        capture_output=True, text=True, env=env, check=False, timeout=300,
    )
    if proc.returncode != 0:
        return {"error": proc.stderr[-1000:]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------------------------
# memory

_ROLLUP_KEYS = {"Rss": "rss", "Pss": "pss", "Pss_Anon": "pss_anon",
                "Private_Clean": "uss", "Private_Dirty": "uss"}


def process_tree(root: int) -> list[int]:
    """``root`` and its live descendants (from /proc/PID/task/TID/children)."""
    pids, i = [root], 0
    while i < len(pids):
        pid = pids[i]
        i += 1
        try:
            tids = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for tid in tids:
            try:
                with open(f"/proc/{pid}/task/{tid}/children") as f:
                    pids.extend(int(c) for c in f.read().split())
            except OSError:
                continue
    return pids


def rollup_kib(pid: int) -> dict[str, int] | None:
    """Rss, Pss, Pss_Anon and USS (Private_*) of ``pid`` in KiB, or None if it is gone."""
    values = {"rss": 0, "pss": 0, "pss_anon": 0, "uss": 0}
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            text = f.read()
    except OSError:
        return None
    if not text:
        return None  # a zombie: no memory left to count
    for line in text.splitlines()[1:]:
        key, _, rest = line.partition(":")
        if key in _ROLLUP_KEYS:
            values[_ROLLUP_KEYS[key]] += int(rest.split()[0])
    return values


class TreeSampler(threading.Thread):
    """Peak sums of Rss/Pss/Pss_Anon/USS over a process tree, sampled every ``interval`` s."""

    def __init__(self, root: int, interval: float) -> None:
        super().__init__(daemon=True)
        self.root = root
        self.interval = interval
        self.stopped = threading.Event()
        self.peak = {"rss": 0, "pss": 0, "pss_anon": 0, "uss": 0}
        self.peak_processes = 0
        self.samples = 0

    def sample(self) -> None:
        totals = {"rss": 0, "pss": 0, "pss_anon": 0, "uss": 0}
        live = 0
        for pid in process_tree(self.root):
            values = rollup_kib(pid)
            if values is None:
                continue
            live += 1
            for key, value in values.items():
                totals[key] += value
        for key, value in totals.items():
            self.peak[key] = max(self.peak[key], value)
        self.peak_processes = max(self.peak_processes, live)
        self.samples += 1

    def run(self) -> None:
        while not self.stopped.is_set():
            self.sample()
            self.stopped.wait(self.interval)


def measure_memory(cmd: Sequence[str], cwd: Path, env: dict[str, str], interval: float,
                   timeout: float) -> dict[str, Any]:
    """Run ``cmd`` once under a :class:`TreeSampler`; peaks in MiB."""
    proc = subprocess.Popen(
        list(cmd), cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, start_new_session=True,
    )
    sampler = TreeSampler(proc.pid, interval)
    sampler.start()
    exited = _wait_exit(proc, timeout)
    sampler.stopped.set()
    sampler.join()
    _kill_group(proc)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    rc: int | str = proc.returncode if exited else "timeout"
    maxrss_kib = usage.ru_maxrss
    result: dict[str, Any] = {f"{k}_mib": round(v / 1024, 1) for k, v in sampler.peak.items()}
    result.update(processes=sampler.peak_processes, samples=sampler.samples, returncode=rc,
                  top_maxrss_mib=round(maxrss_kib / 1024, 1))
    return result


# --------------------------------------------------------------------------------------------
# targets of the run


@dataclasses.dataclass
class Target:
    """Where a suite lives and how to run it."""

    name: str
    root: Path
    python: str
    env: dict[str, str]
    extra_args: list[str]
    tests: int | None
    expected: dict[str, int] | None
    suite: _suites.Suite | None = None
    kind: str = "generated"


def generated_targets(names: Sequence[str], workdir: Path, python: str,
                      env: dict[str, str], tiny: bool = False) -> list[Target]:
    targets = []
    for name in names:
        root = workdir / name
        if root.exists():
            shutil.rmtree(root)
        sizes: dict[str, object] = dict(_suites.TINY[name]) if tiny else {}
        if name == "heavy_imports":
            sizes["python"] = python
        suite = _suites.generate(name, root, **sizes)
        targets.append(Target(name, root, python, env, [], suite.tests, suite.expected, suite))
    return targets


def realworld_targets(names: Sequence[str], corpus: Path) -> list[Target]:
    """Projects of the real-world corpus (its manifest, sources and venvs; see its README)."""
    sys.path.insert(0, str(corpus))
    try:
        import _common as corpus_common  # type: ignore[import-not-found]
    finally:
        sys.path.remove(str(corpus))
    manifest = corpus_common.load_manifest(corpus / "manifest.json")
    chosen = corpus_common.select(manifest, "all", [] if list(names) == ["all"] else names)
    targets = []
    for project in chosen:
        venv, workdir = corpus_common.paths(manifest, project)
        python = venv / "bin" / "python"
        if not python.exists() or not workdir.is_dir():
            print(f"tach-bench e2e: {project['name']}: venv or sources missing, skipped",
                  file=sys.stderr)
            continue
        env = corpus_common.run_env(project, venv, workdir)
        for key in [k for k in env if k.startswith("TACH_")]:
            del env[key]
        targets.append(Target(
            f"rw:{project['name']}", workdir, str(python), env,
            corpus_common.pytest_args(project), None, None, kind="realworld",
        ))
    return targets


# --------------------------------------------------------------------------------------------
# the benchmark


def _median(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


def _fmt_counts(counts: dict[str, int] | None) -> str:
    if counts is None:
        return "no summary line"
    return ", ".join(f"{v} {k}" for k, v in counts.items() if v) or "none"


def check_counts(target: Target, per_runner: dict[str, dict[str, Any]]) -> None:
    """Set ``counts_ok`` and ``mismatch`` for every runner of ``target``."""
    reference = None
    pytest_runs = per_runner.get("pytest", {}).get("runs", [])
    if pytest_runs:
        reference = outcome_counts(pytest_runs[0].counts)
    for runner, data in per_runner.items():
        if runner in NOT_RUNS:
            data["counts"], data["counts_ok"], data["mismatch"] = None, True, ""
            continue
        seen = []
        for run in data["runs"]:
            counts = outcome_counts(run.counts)
            if counts not in seen:
                seen.append(counts)
        problems = []
        if len(seen) > 1:
            problems.append("counts differ between repetitions: "
                            + " / ".join(_fmt_counts(c) for c in seen))
        got = seen[0] if seen else None
        if got is None:
            problems.append("no summary line")
        else:
            if reference is not None and got != reference:
                problems.append(f"{_fmt_counts(got)} vs pytest {_fmt_counts(reference)}")
            if target.expected is not None and got != target.expected:
                problems.append(f"{_fmt_counts(got)} vs expected {_fmt_counts(target.expected)}")
        rcs = sorted({str(r.returncode) for r in data["runs"]})
        if any(rc not in ("0", "1") for rc in rcs):
            problems.append(f"exit status {', '.join(rcs)}")
        warnings = sorted({(r.counts or {}).get("warnings", 0) for r in data["runs"]})
        ref_warnings = sorted({(r.counts or {}).get("warnings", 0) for r in pytest_runs})
        data["warnings"] = warnings
        if runner != "pytest" and pytest_runs and warnings != ref_warnings:
            data["warnings_note"] = f"warnings {warnings} vs pytest {ref_warnings}"
        data["leftovers"] = max((r.leftovers for r in data["runs"]), default=0)
        markers = data.get("markers") or []
        if markers:
            data["session_setups"] = sorted({m["setup"] for m in markers})
            data["session_teardowns"] = sorted({m["teardown"] for m in markers})
            if any(m["setup"] != m["teardown"] for m in markers):
                problems.append("session fixture set-ups != teardowns")
        data["counts"] = got
        data["counts_ok"] = not problems
        data["mismatch"] = "; ".join(problems)


def amdahl_bound(per_runner: dict[str, dict[str, Any]], workers: int) -> float | None:
    """The best ratio to pytest that running the tests on ``workers`` CPUs can give.

    pytest's start-up and collection (which imports the test modules and everything they
    import) is work a runner that imports the suite once still does before the tests run, one
    CPU at a time; only the rest, the tests themselves, can be spread over the workers:
    ``c + (1 - c) / workers`` with ``c`` the share of ``pytest --collect-only`` in pytest's time.
    """
    collect = per_runner.get("collect", {}).get("median_s")
    full = per_runner.get("pytest", {}).get("median_s")
    if not collect or not full:
        return None
    share = min(collect / full, 1.0)
    return share + (1 - share) / workers


def summarise(per_runner: dict[str, dict[str, Any]]) -> None:
    """Medians, spread and ratios to pytest for every runner."""
    base = per_runner.get("pytest")
    base_walls = [r.wall_s for r in base["runs"]] if base else []
    base_median = _median(base_walls)
    for data in per_runner.values():
        walls = [r.wall_s for r in data["runs"]]
        cpus = [r.cpu_s for r in data["runs"]]
        data["median_s"] = _median(walls)
        data["min_s"] = min(walls) if walls else None
        data["max_s"] = max(walls) if walls else None
        data["cpu_median_s"] = _median(cpus)
        if base_median and data["median_s"] is not None:
            data["ratio"] = data["median_s"] / base_median
            paired = [w / b for w, b in zip(walls, base_walls, strict=False) if b]
            data["paired_ratio_median"] = _median(paired)
        else:
            data["ratio"] = data["paired_ratio_median"] = None


def run_benchmark(args: argparse.Namespace, targets: list[Target],
                  runners: Sequence[str]) -> dict[str, Any]:
    results: dict[str, dict[str, dict[str, Any]]] = {
        t.name: {r: {"runs": [], "warmup": [], "markers": []} for r in runners} for t in targets
    }
    skipped: dict[str, dict[str, str]] = {}
    available: dict[tuple[str, str], bool] = {}
    for t in targets:
        for r in runners:
            if r == "xdist":
                key = (t.python, "xdist")
                if key not in available:
                    available[key] = importable(t.python, "xdist")
                if not available[key]:
                    skipped.setdefault(t.name, {})[r] = "pytest-xdist not installed"
                    results[t.name].pop(r, None)

    def one(t: Target, r: str, measured: bool) -> None:
        cmd = runner_cmd(r, t.python, args.workers, t.extra_args)
        if t.suite is not None:
            _suites.clear_markers(t.suite.marker_dir)
        res = run_once(cmd, t.root, t.env, args.timeout)
        data = results[t.name][r]
        data["cmd"] = cmd
        (data["runs"] if measured else data["warmup"]).append(res)
        if measured and t.suite is not None and t.suite.marker_dir is not None:
            data["markers"].append(_suites.count_markers(t.suite.marker_dir))
        if args.verbose:
            print(f"  {t.name:16s} {r:12s} {res.wall_s:8.2f}s  rc={res.returncode}  "
                  f"{_fmt_counts(outcome_counts(res.counts))}", file=sys.stderr)

    floors: dict[str, list[dict[str, Any]]] = {}
    floor_imports = {"pytest": ([], [])}
    heavy = next((t for t in targets if t.name == "heavy_imports"), None)
    if heavy is not None and heavy.suite is not None:
        floor_imports["pytest+heavy"] = (
            [*heavy.suite.heavy_modules, *_suites.HEAVY_STDLIB, "bigpkg.api"],
            [str(heavy.root / "src")],
        )
    main_python = targets[0].python if targets else sys.executable

    load_before = os.getloadavg()
    started = time.time()
    for w in range(args.warmup):
        if args.verbose:
            print(f"warm-up {w + 1}/{args.warmup}", file=sys.stderr)
        for t in targets:
            for r in results[t.name]:
                one(t, r, measured=False)
    for rep in range(args.repeat):
        if args.verbose:
            print(f"repetition {rep + 1}/{args.repeat}", file=sys.stderr)
        if not args.no_fork_floor:
            for label, (imports, path) in floor_imports.items():
                floors.setdefault(label, []).append(
                    fork_floor(main_python, imports, path, args.forks, clean_env()))
        for t in targets:
            order = list(results[t.name])
            shift = rep % len(order) if order else 0
            for r in order[shift:] + order[:shift]:
                one(t, r, measured=True)
    load_after = os.getloadavg()

    for t in targets:
        check_counts(t, results[t.name])
        summarise(results[t.name])
        reference = results[t.name].get("pytest", {}).get("counts")
        if t.tests is None and reference:
            t.tests = sum(reference.values())  # approximate: a teardown error counts twice

    floor_summary = {}
    for label, samples in floors.items():
        good = [s for s in samples if "median_us" in s]
        floor_summary[label] = {
            "median_us": _median([s["median_us"] for s in good]),
            "p90_us": _median([s["p90_us"] for s in good]),
            "min_us": min((s["min_us"] for s in good), default=None),
            "rss_mib": round(good[0]["rss_kib"] / 1024, 1) if good else None,
            "per_repetition_median_us": [s.get("median_us") for s in samples],
            "errors": [s["error"] for s in samples if "error" in s],
        }

    overhead = []
    for t in targets:
        data = results[t.name]
        if "tach-test" not in data or "tach-none" not in data or not t.suite:
            continue
        floor_label = "pytest+heavy" if t.name == "heavy_imports" else "pytest"
        floor = floor_summary.get(floor_label, {}).get("median_us")
        row: dict[str, Any] = {"suite": t.name, "tests": t.tests, "floor": floor_label,
                               "floor_us": floor}
        n = t.tests or 0
        for base in ("tach-none", "tach-module"):
            if base not in data or not n:
                continue
            wall = (data["tach-test"]["median_s"] - data[base]["median_s"]) * args.workers / n
            cpu = (data["tach-test"]["cpu_median_s"] - data[base]["cpu_median_s"]) / n
            short = base.split("-")[1]
            row[f"over_{short}_wall_us"] = wall * 1e6
            row[f"over_{short}_cpu_us"] = cpu * 1e6
            if floor:
                row[f"over_{short}_wall_x_floor"] = wall * 1e6 / floor
                row[f"over_{short}_cpu_x_floor"] = cpu * 1e6 / floor
        overhead.append(row)

    memory = None
    mem_target = next((t for t in targets if t.name == args.mem_suite), None)
    if args.mem_repeat and mem_target is not None:
        memory = run_memory(
            args, mem_target, [r for r in results[mem_target.name] if r not in NOT_RUNS])

    out_suites = []
    for t in targets:
        runners_out = {}
        for r, data in results[t.name].items():
            d = {k: v for k, v in data.items() if k not in ("runs", "warmup", "markers")}
            d["runs"] = [x.as_dict() for x in data["runs"]]
            d["warmup"] = [x.as_dict() for x in data["warmup"]]
            if data["markers"]:
                d["markers"] = data["markers"]
            if not data["counts_ok"]:
                last = data["runs"][-1] if data["runs"] else None
                d["output_tail"] = last.output_tail if last else ""
            runners_out[r] = d
        out_suites.append({
            "name": t.name, "kind": t.kind, "root": str(t.root), "python": t.python,
            "tests": t.tests, "expected": t.expected,
            "description": t.suite.description if t.suite else " ".join(t.extra_args),
            "suite": t.suite.as_dict() if t.suite else None,
            "runners": runners_out, "skipped_runners": skipped.get(t.name, {}),
            "amdahl_bound": amdahl_bound(results[t.name], args.workers),
        })

    return {
        "benchmark": "e2e",
        "machine": machine(),
        "versions": {m: version_of(main_python, m)
                     for m in ("pytest", "pytest-xdist", "tach-runner", "numpy", "hypothesis")},
        "python": main_python,
        "workers": args.workers,
        "repeat": args.repeat,
        "warmup": args.warmup,
        "started": datetime.datetime.fromtimestamp(started).isoformat(timespec="seconds"),
        "elapsed_s": round(time.time() - started, 1),
        "loadavg_before": load_before,
        "loadavg_after": load_after,
        "suites": out_suites,
        "fork_floor": floor_summary,
        "isolation_test_overhead": overhead,
        "memory": memory,
    }


def run_memory(args: argparse.Namespace, target: Target, runners: Sequence[str]) -> dict[str, Any]:
    """Peak memory of ``target`` under each runner, ``--mem-repeat`` interleaved runs."""
    per: dict[str, list[dict[str, Any]]] = {r: [] for r in runners}
    for rep in range(args.mem_repeat):
        order = list(runners)
        shift = rep % len(order)
        for r in order[shift:] + order[:shift]:
            cmd = runner_cmd(r, target.python, args.workers, target.extra_args)
            per[r].append(measure_memory(cmd, target.root, target.env,
                                         args.mem_interval_ms / 1000, args.timeout))
            if args.verbose:
                print(f"  memory {r:12s} {per[r][-1]}", file=sys.stderr)
    summary: dict[str, Any] = {}
    for r, runs in per.items():
        summary[r] = {key: _median([run[key] for run in runs])
                      for key in ("rss_mib", "pss_mib", "pss_anon_mib", "uss_mib",
                                  "top_maxrss_mib", "processes")}
        summary[r]["runs"] = runs
    base = summary.get("pytest")
    if base:
        for data in summary.values():
            for key in ("pss_mib", "rss_mib", "pss_anon_mib"):
                data[f"{key.split('_mib')[0]}_x_pytest"] = (
                    data[key] / base[key] if base[key] else None)
    return {"suite": target.name, "workers": args.workers,
            "interval_ms": args.mem_interval_ms, "runners": summary}


# --------------------------------------------------------------------------------------------
# output


def _r(value: float | None, digits: int = 2) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def markdown(result: dict[str, Any]) -> str:
    lines = [
        f"# tach-bench e2e — {result['started']}",
        "",
        f"Python {result['machine']['python']}, {result['machine']['cpus']} CPUs, "
        f"kernel {result['machine']['kernel']}; "
        + ", ".join(f"{k} {v}" for k, v in result["versions"].items() if v)
        + f". Workers: {result['workers']}. Medians of {result['repeat']} interleaved "
        f"repetitions after {result['warmup']} warm-up run(s); load average "
        f"{result['loadavg_before'][0]:.2f} before, {result['loadavg_after'][0]:.2f} after "
        f"({result['elapsed_s']:.0f} s in all). Ratios are to plain pytest in the same run. "
        "`bound`: the best ratio the workers can reach while pytest's start-up and collection "
        "(the `collect` row: imports included) stay serial, as they do in any runner that "
        "imports the suite once.",
        *[f"Merged: the run of {m['started']} (medians of {m['repeat']}; load average "
          f"{m['loadavg_before'][0]:.2f} before, {m['loadavg_after'][0]:.2f} after)."
          for m in result.get("merged", [])],
        "",
        "| suite | tests | runner | median s | min–max s | × pytest | paired × | CPU s "
        "| counts | target |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    mismatches = []
    for suite in result["suites"]:
        xdist = suite["runners"].get("xdist", {}).get("median_s")
        for name, data in suite["runners"].items():
            ok = data.get("counts_ok")
            counts = "ok" if ok else f"**MISMATCH**: {data.get('mismatch')}"
            if name in NOT_RUNS:
                counts = "(collection only)"
            if ok and data.get("warnings_note"):
                counts += f" ({data['warnings_note']})"
            if data.get("leftovers"):
                counts += f"; left {data['leftovers']} process(es) running after exit"
            if data.get("session_setups"):
                counts += f"; session set-ups {','.join(map(str, data['session_setups']))}"
            if not ok:
                mismatches.append(f"{suite['name']} / {name}: {data.get('mismatch')}")
            target = ""
            if name == "tach-module":
                limit = SPEED_TARGETS.get(suite["name"])
                if suite["kind"] == "realworld":
                    pyt = suite["runners"].get("pytest", {}).get("median_s")
                    limit = 0.6 if pyt and pyt > 2 else None
                parts = []
                if limit is not None and data.get("ratio") is not None:
                    parts.append(f"≤{limit}× {'✓' if data['ratio'] <= limit else '✗'}")
                if suite.get("amdahl_bound") is not None:
                    parts.append(f"bound {suite['amdahl_bound']:.2f}")
                if xdist is not None and data.get("median_s") is not None:
                    parts.append(f"< xdist {'✓' if data['median_s'] < xdist else '✗'}")
                target = ", ".join(parts)
            lines.append(
                f"| {suite['name']} | {suite['tests'] or ''} | {name} | {_r(data.get('median_s'))} "
                f"| {_r(data.get('min_s'))}–{_r(data.get('max_s'))} | {_r(data.get('ratio'))} "
                f"| {_r(data.get('paired_ratio_median'))} | {_r(data.get('cpu_median_s'), 1)} "
                f"| {counts} | {target} |"
            )
        for name, why in suite.get("skipped_runners", {}).items():
            lines.append(f"| {suite['name']} | | {name} | — | | | | | not run: {why} | |")
    if result["fork_floor"]:
        lines += ["", "Fork floor (µs per `tach._native.proc.fork()` + `_exit` + `waitpid`, "
                  "gc frozen; median of the per-repetition medians):", "",
                  "| process | RSS MiB | median µs | p90 µs | min µs |", "|---|---|---|---|---|"]
        for label, floor in result["fork_floor"].items():
            lines.append(f"| {label} imported | {_r(floor['rss_mib'], 0)} | "
                         f"{_r(floor['median_us'], 0)} | {_r(floor['p90_us'], 0)} | "
                         f"{_r(floor['min_us'], 0)} |")
    if result["isolation_test_overhead"]:
        lines += ["", "`--isolation test`: cost per test over `none` (and over `module`): wall "
                  "(Δ median × workers / tests) and CPU (Δ CPU / tests), in µs and × the floor:",
                  "", "| suite | floor µs | over none: wall µs (× floor) | CPU µs (× floor) | "
                  "over module: wall µs (× floor) | CPU µs (× floor) |",
                  "|---|---|---|---|---|---|"]
        for row in result["isolation_test_overhead"]:
            cells = []
            for base in ("none", "module"):
                for kind in ("wall", "cpu"):
                    us = row.get(f"over_{base}_{kind}_us")
                    x = row.get(f"over_{base}_{kind}_x_floor")
                    cells.append(f"{_r(us, 0)} ({_r(x, 2)}×)")
            lines.append(f"| {row['suite']} | {_r(row['floor_us'], 0)} | " + " | ".join(cells)
                         + " |")
    memory = result.get("memory")
    if memory:
        lines += ["", f"Peak memory, {memory['suite']} suite, summed over the run's process "
                  f"tree (sampled every {memory['interval_ms']} ms; median of the runs' peaks; "
                  "MiB):", "",
                  "| runner | processes | Σ Pss | Σ Pss_Anon | Σ Rss | Σ USS | Pss × pytest "
                  "| Pss_Anon × pytest | Rss × pytest | target |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        for name, data in memory["runners"].items():
            target = ""
            if name == "tach-module" and data.get("pss_x_pytest") is not None:
                met = data["pss_x_pytest"] <= MEMORY_TARGET
                target = f"Pss ≤{MEMORY_TARGET}× {'✓' if met else '✗'}"
            lines.append(
                f"| {name} | {_r(data['processes'], 0)} | {_r(data['pss_mib'], 0)} | "
                f"{_r(data['pss_anon_mib'], 0)} | {_r(data['rss_mib'], 0)} | "
                f"{_r(data['uss_mib'], 0)} | {_r(data.get('pss_x_pytest'))} | "
                f"{_r(data.get('pss_anon_x_pytest'))} | {_r(data.get('rss_x_pytest'))} "
                f"| {target} |")
    if mismatches:
        lines += ["", "**OUTCOME COUNT MISMATCHES:**", ""] + [f"- {m}" for m in mismatches]
    return "\n".join(lines) + "\n"


def chart(result: dict[str, Any], path: Path) -> bool:
    """A PNG: median seconds and ratio to pytest per suite and runner, and peak memory."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib import ticker
    except ImportError:
        print("tach-bench e2e: matplotlib is not installed: no chart (pip install "
              "'tach-runner[bench]')", file=sys.stderr)
        return False
    suites = result["suites"]
    runners = [r for r in RUNNERS
               if r not in NOT_RUNS and any(r in s["runners"] for s in suites)]
    memory = result.get("memory")
    panels = 3 if memory else 2
    fig, axes = plt.subplots(1, panels, figsize=(6.5 * panels, 5), constrained_layout=True)
    width = 0.8 / max(1, len(runners))
    xs = range(len(suites))
    for panel, key, label in ((0, "median_s", "median wall time, s"),
                              (1, "ratio", "× plain pytest (same run)")):
        ax = axes[panel]
        for j, r in enumerate(runners):
            vals = [s["runners"].get(r, {}).get(key) or 0 for s in suites]
            bars = ax.bar([x + j * width for x in xs], vals, width, label=r)
            if key == "median_s":
                lo = [v - (s["runners"].get(r, {}).get("min_s") or v) for v, s in zip(vals, suites,
                                                                                     strict=True)]
                hi = [(s["runners"].get(r, {}).get("max_s") or v) - v for v, s in zip(vals, suites,
                                                                                     strict=True)]
                ax.errorbar([b.get_x() + b.get_width() / 2 for b in bars], vals, yerr=[lo, hi],
                            fmt="none", ecolor="black", elinewidth=0.6, capsize=1.5)
        ax.set_xticks([x + width * (len(runners) - 1) / 2 for x in xs])
        ax.set_xticklabels([s["name"] for s in suites], rotation=20, ha="right")
        ax.set_ylabel(label + " (log scale)")
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(ticker.FormatStrFormatter("%g"))
        ax.yaxis.set_minor_formatter(ticker.FormatStrFormatter("%g"))
        ax.tick_params(axis="y", which="minor", labelsize=7)
        if key == "ratio":
            ax.axhline(1.0, color="black", linewidth=0.8)
            ax.axhline(0.6, color="grey", linestyle="--", linewidth=0.8, label="0.6× target")
        ax.legend(fontsize=8)
    axes[0].set_title(f"{result['workers']} workers, medians of {result['repeat']}")
    if memory:
        ax = axes[2]
        names = list(memory["runners"])
        pss = [memory["runners"][n]["pss_mib"] for n in names]
        rss = [memory["runners"][n]["rss_mib"] for n in names]
        ax.bar([i - 0.2 for i in range(len(names))], rss, 0.4, label="Σ Rss")
        ax.bar([i + 0.2 for i in range(len(names))], pss, 0.4, label="Σ Pss")
        if "pytest" in memory["runners"]:
            ax.axhline(memory["runners"]["pytest"]["pss_mib"] * MEMORY_TARGET, color="grey",
                       linestyle="--", linewidth=0.8, label="1.5× pytest Pss")
        ax.set_xticks(list(range(len(names))))
        ax.set_xticklabels(names, rotation=20, ha="right")
        ax.set_ylabel("peak MiB, whole process tree")
        ax.set_title(f"memory: {memory['suite']}")
        ax.legend(fontsize=8)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


# --------------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tach-bench e2e", description=__doc__.split("\n")[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--repeat", type=int, default=5, help="measured repetitions (default 5)")
    parser.add_argument("--warmup", type=int, default=1, help="unmeasured runs first (default 1)")
    parser.add_argument("--suites", default=",".join(DEFAULT_SUITES),
                        help="comma-separated, from: " + ", ".join(_suites.GENERATORS)
                        + " ('' for none)")
    parser.add_argument("--runners", default=",".join(RUNNERS),
                        help="comma-separated, from: " + ", ".join(RUNNERS))
    parser.add_argument("--realworld", default="",
                        help="also time these projects of the real-world corpus "
                        "(comma-separated names, or 'all')")
    parser.add_argument("--corpus", default="/work/shared/realworld",
                        help="the real-world corpus directory (default %(default)s)")
    parser.add_argument("-n", "--workers", type=int, default=2, help="workers (default 2)")
    parser.add_argument("--python", default=sys.executable,
                        help="interpreter of the generated suites (default: this one)")
    parser.add_argument("--workdir", help="generate the suites here and keep them")
    parser.add_argument("--out", help="write e2e.md, e2e.json and e2e.png into this directory")
    parser.add_argument("--timeout", type=float, default=900, help="seconds per run")
    parser.add_argument("--forks", type=int, default=200, help="forks per fork-floor sample")
    parser.add_argument("--no-fork-floor", action="store_true")
    parser.add_argument("--mem-suite", default="heavy_imports",
                        help="suite of the memory measurement (default %(default)s)")
    parser.add_argument("--mem-repeat", type=int, default=3,
                        help="memory runs per runner (0: none; default 3)")
    parser.add_argument("--mem-interval-ms", type=float, default=5.0)
    parser.add_argument("--tiny", action="store_true",
                        help="tiny suites (a smoke test of the benchmark itself)")
    parser.add_argument("--report", metavar="E2E_JSON[,E2E_JSON...]",
                        help="run nothing: render the table (and with --out, the chart) of "
                        "saved e2e.json files; the suites of later files are appended")
    parser.add_argument("-v", "--verbose", action="store_true", help="progress on stderr")
    args = parser.parse_args(argv)

    if args.report:
        files = [Path(f) for f in args.report.split(",") if f.strip()]
        result = json.loads(files[0].read_text())
        for extra in files[1:]:
            more = json.loads(extra.read_text())
            result["suites"] += more["suites"]
            result["ok"] = result["ok"] and more["ok"]
            result.setdefault("merged", []).append(
                {k: more[k] for k in ("started", "repeat", "loadavg_before", "loadavg_after",
                                      "elapsed_s", "fork_floor")})
        return _output(args, result)
    suites = [s for s in args.suites.split(",") if s.strip()]
    runners = [r for r in args.runners.split(",") if r.strip()]
    for s in suites:
        if s not in _suites.GENERATORS:
            parser.error(f"unknown suite {s!r}")
    for r in runners:
        if r not in RUNNERS:
            parser.error(f"unknown runner {r!r}")
    if args.repeat < 1 or args.warmup < 0 or args.workers < 1:
        parser.error("--repeat and --workers must be >= 1, --warmup >= 0")

    workdir = Path(args.workdir).resolve() if args.workdir else Path(
        tempfile.mkdtemp(prefix="tach-bench-e2e-"))
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        targets = generated_targets(suites, workdir, args.python, clean_env(), args.tiny)
        if args.realworld:
            targets += realworld_targets(
                [n for n in args.realworld.split(",") if n.strip()], Path(args.corpus))
        if not targets:
            parser.error("nothing to run")
        sys.stdout.flush()
        sys.stderr.flush()
        result = run_benchmark(args, targets, runners)
    finally:
        if not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    result["ok"] = all(d["counts_ok"] for s in result["suites"] for d in s["runners"].values())
    return _output(args, result)


def _output(args: argparse.Namespace, result: dict[str, Any]) -> int:
    """Write and print ``result`` as ``args`` ask; the exit status."""
    table = markdown(result)
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "e2e.md").write_text(table)
        (out / "e2e.json").write_text(json.dumps(result, indent=2) + "\n")
        chart(result, out / "e2e.png")
    if args.json:
        sys.stdout.write(json.dumps(result, indent=2) + "\n")
    else:
        sys.stdout.write(table)
    if not result["ok"]:
        print("tach-bench e2e: OUTCOME COUNTS DIFFER between runners (see the table)",
              file=sys.stderr)
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
