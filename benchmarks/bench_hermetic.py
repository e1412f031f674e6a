"""What ``--isolate-network`` and ``--private-tmp`` cost per unit, against plain module mode.

Suite: ``trivial`` with many small modules (default 400 modules of 2 tests: 400 units, so the
per-unit cost dominates). Runners, each a fresh ``python -m tach -q -n W --isolation module``
started from this one and timed around the subprocess (start to exit):

* ``module``: no isolation flags (the baseline);
* ``network``: ``--isolate-network``;
* ``tmp``: ``--private-tmp``;
* ``both``: both flags.

Method: one unmeasured warm-up run per runner, then ``--repeat`` repetitions in which every
runner runs once, in an order rotated by one each repetition (interleaved, so drift in the load
of a shared machine falls on all runners alike). Reported per runner: the median wall time, the
cost per unit over ``module`` as wall time (median of the paired per-repetition differences ×
workers / units: what a unit adds to the wall clock of one worker), and as CPU time of the
process tree (median paired difference / units). The probe each isolated run makes before it
starts (a throwaway interpreter that tries the namespaces, ``docs/isolation.md``) is a fixed cost
per run, not per unit; it is timed on its own and its share is taken out of the wall figure
("wall, less probe"). The kernel frees a network namespace later, in a worker thread of its own,
whose CPU time no process tree is charged for: the wall figure includes it, on a machine with
as many cores as workers, the CPU figure does not (the namespaces are the worker's, made once
and again only after a unit that left something in /tmp, ``docs/isolation.md``; the trivial
suite leaves nothing).

Correctness is checked on every run: the closing line must count every test passed.

Run: ``python -m tach.bench.bench_hermetic [--repeat 7] [--workers 2] [--json]`` or
``tach-bench hermetic``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
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
from .bench_e2e import clean_env, parse_summary

RUNNERS: dict[str, tuple[str, ...]] = {
    "module": (),
    "network": ("--isolate-network",),
    "tmp": ("--private-tmp",),
    "both": ("--isolate-network", "--private-tmp"),
}


def run_once(flags: Sequence[str], root: Path, workers: int) -> dict[str, Any]:
    """One timed run: wall and CPU seconds, exit status, and the passed count it reported."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "tach", "-q", "-n", str(workers), "-p", "no:cacheprovider", *flags],
        cwd=root,
        env=clean_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    passed = (parse_summary(proc.stdout) or {}).get("passed")
    return {"wall_s": wall, "cpu_s": cpu, "returncode": proc.returncode, "passed": passed}


def probe_seconds(flags: Sequence[str], repeat: int) -> tuple[float, float]:
    """Median wall and CPU time of the isolation probe a run with ``flags`` makes first."""
    from tach.isolation import Hermetic, probe_in_subprocess

    hermetic = Hermetic(network="--isolate-network" in flags, private_tmp="--private-tmp" in flags)
    if not hermetic.namespaces:
        return 0.0, 0.0
    walls, cpus = [], []
    for _ in range(repeat):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        problems = probe_in_subprocess(hermetic)
        walls.append(time.perf_counter() - started)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
        if problems:
            raise SystemExit("\n".join(problems))
    return statistics.median(walls), statistics.median(cpus)


def main(argv: Sequence[str] | None = None) -> int:
    """Measure and print a Markdown table (or one JSON object with ``--json``)."""
    parser = argparse.ArgumentParser(prog="tach-bench hermetic", description=__doc__)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--workers", type=int, default=min(2, len(os.sched_getaffinity(0))))
    parser.add_argument("--modules", type=int, default=400)
    parser.add_argument("--per-module", type=int, default=2)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(list(argv) if argv is not None else None)

    names = list(RUNNERS)
    with tempfile.TemporaryDirectory(prefix="tach-bench-hermetic-") as tmp:
        suite = _suites.make_trivial(
            Path(tmp) / "trivial", modules=args.modules, per_module=args.per_module
        )
        runs: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
        for name in names:
            run_once(RUNNERS[name], suite.root, args.workers)
        load_before = os.getloadavg()
        for rep in range(args.repeat):
            for name in names[rep % len(names) :] + names[: rep % len(names)]:
                runs[name].append(run_once(RUNNERS[name], suite.root, args.workers))
        load_after = os.getloadavg()
    probes = {name: probe_seconds(RUNNERS[name], args.repeat) for name in names}

    units = args.modules
    correct = all(
        r["returncode"] == 0 and r["passed"] == suite.tests for rs in runs.values() for r in rs
    )
    rows = []
    for name in names:
        pairs = list(zip(runs[name], runs["module"], strict=True))
        wall_diff = statistics.median(r["wall_s"] - b["wall_s"] for r, b in pairs)
        cpu_diff = statistics.median(r["cpu_s"] - b["cpu_s"] for r, b in pairs)
        rows.append(
            {
                "runner": name,
                "flags": " ".join(RUNNERS[name]) or "-",
                "median_s": round(statistics.median(r["wall_s"] for r in runs[name]), 3),
                "wall_ms_per_unit": round(wall_diff * args.workers / units * 1000, 3),
                "wall_ms_per_unit_less_probe": round(
                    (wall_diff - probes[name][0]) * args.workers / units * 1000, 3
                ),
                "cpu_ms_per_unit": round(cpu_diff / units * 1000, 3),
                "cpu_ms_per_unit_less_probe": round((cpu_diff - probes[name][1]) / units * 1000, 3),
                "probe_ms": round(probes[name][0] * 1000, 1),
            }
        )
    result = {
        "suite": suite.description,
        "units": units,
        "workers": args.workers,
        "repeat": args.repeat,
        "correct": correct,
        "rows": rows,
        "load": {"before": load_before, "after": load_after},
        "uid": os.geteuid(),
        "machine": machine(),
    }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(
            f"{suite.description} ({units} units), {args.workers} workers, "
            f"{args.repeat} repetitions, uid {os.geteuid()}"
        )
        print()
        print(
            "| runner | flags | median s | wall ms/unit over module | same, less probe "
            "| CPU ms/unit over module | same, less probe | probe ms |"
        )
        print("| --- | --- | --- | --- | --- | --- | --- | --- |")
        for row in rows:
            print(
                f"| {row['runner']} | {row['flags']} | {row['median_s']:.3f} "
                f"| {row['wall_ms_per_unit']:.3f} | {row['wall_ms_per_unit_less_probe']:.3f} "
                f"| {row['cpu_ms_per_unit']:.3f} | {row['cpu_ms_per_unit_less_probe']:.3f} "
                f"| {row['probe_ms']:.1f} |"
            )
        print()
        print(f"correct: {correct}; load average before {load_before}, after {load_after}")
    return 0 if correct else 1


if __name__ == "__main__":
    raise SystemExit(main())
