"""What the machine outputs cost: Tach with the NDJSON stream (and JUnit XML) against ``-q``.

Suite: ``trivial`` (4,000 empty tests over 40 modules, :mod:`._suites`). Runners, each a fresh
process started from this one and timed around the subprocess (start to exit), stdout and
stderr read through pipes as a consumer would:

* ``quiet``: ``python -m tach -q -n W`` — the terminal report's progress dots only;
* ``json``: ``python -m tach -q -n W --format=json`` — the NDJSON event stream on stdout, one
  flushed line per event (three per test), and no terminal report (``-q`` silences it);
* ``json+junit``: the same, and ``--junit-xml`` (the whole file written at the end).

Method: one unmeasured warm-up run per runner (bytecode and ``.tach/`` caches), then
``--repeat`` repetitions in which every runner runs once, in an order rotated by one each
repetition. Reported: the median wall time per runner, its ratio to ``quiet``'s median, the
median of the per-repetition ratios (robust to drift in the load of a shared machine), and the
CPU seconds of the run's whole process tree (``RUSAGE_CHILDREN``; the reporters run in the
supervisor, so this is where their cost shows even when other work slows the wall clock).
Correctness is checked on every run: ``quiet``'s closing line and the NDJSON ``run_finished``
event must both count 4,000 passed tests, and every NDJSON line must parse.

Run: ``python -m tach.bench.bench_outputs [--repeat 7] [--workers 2] [--json]`` or
``tach-bench outputs``.
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

RUNNERS = ("quiet", "json", "json+junit")


def command(runner: str, workers: int, junit: Path) -> list[str]:
    """The command line of ``runner``."""
    cmd = [sys.executable, "-m", "tach", "-q", "-n", str(workers), "-p", "no:cacheprovider"]
    if runner != "quiet":
        cmd.append("--format=json")
    if runner == "json+junit":
        cmd.append(f"--junit-xml={junit}")
    return cmd


def run_once(runner: str, root: Path, workers: int) -> dict[str, Any]:
    """One timed run: wall seconds, exit status, and the passed count it reported."""
    junit = root / "report.xml"
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = subprocess.run(
        command(runner, workers, junit),
        cwd=root,
        env=clean_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if runner == "quiet":
        passed = (parse_summary(proc.stdout) or {}).get("passed")
    else:
        events = [json.loads(line) for line in proc.stdout.splitlines()]
        passed = events[-1].get("passed") if events else None
    return {"wall_s": wall, "cpu_s": cpu, "returncode": proc.returncode, "passed": passed}


def main(argv: Sequence[str] | None = None) -> int:
    """Measure and print a Markdown table (or one JSON object with ``--json``)."""
    parser = argparse.ArgumentParser(prog="tach-bench outputs", description=__doc__)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--workers", type=int, default=min(2, len(os.sched_getaffinity(0))))
    parser.add_argument("--modules", type=int, default=40)
    parser.add_argument("--per-module", type=int, default=100)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(list(argv) if argv is not None else None)

    with tempfile.TemporaryDirectory(prefix="tach-bench-outputs-") as tmp:
        suite = _suites.make_trivial(
            Path(tmp) / "trivial", modules=args.modules, per_module=args.per_module
        )
        runs: dict[str, list[dict[str, Any]]] = {r: [] for r in RUNNERS}
        for runner in RUNNERS:
            run_once(runner, suite.root, args.workers)
        load_before = os.getloadavg()
        for rep in range(args.repeat):
            order = list(RUNNERS[rep % len(RUNNERS) :] + RUNNERS[: rep % len(RUNNERS)])
            for runner in order:
                runs[runner].append(run_once(runner, suite.root, args.workers))
        load_after = os.getloadavg()

    correct = all(
        r["returncode"] == 0 and r["passed"] == suite.tests for rs in runs.values() for r in rs
    )
    base = statistics.median(r["wall_s"] for r in runs["quiet"])
    base_cpu = statistics.median(r["cpu_s"] for r in runs["quiet"])
    rows = []
    for runner in RUNNERS:
        walls = [r["wall_s"] for r in runs[runner]]
        pairs = zip(runs[runner], runs["quiet"], strict=True)
        paired = [r["wall_s"] / q["wall_s"] for r, q in pairs]
        rows.append(
            {
                "runner": runner,
                "median_s": round(statistics.median(walls), 3),
                "min_s": round(min(walls), 3),
                "ratio_of_medians": round(statistics.median(walls) / base, 4),
                "median_paired_ratio": round(statistics.median(paired), 4),
                "median_cpu_s": round(statistics.median(r["cpu_s"] for r in runs[runner]), 3),
                "cpu_ratio": round(
                    statistics.median(r["cpu_s"] for r in runs[runner]) / base_cpu, 4
                ),
            }
        )
    result = {
        "suite": suite.description,
        "workers": args.workers,
        "repeat": args.repeat,
        "correct": correct,
        "rows": rows,
        "load": {"before": load_before, "after": load_after},
        "machine": machine(),
    }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"{suite.description}, {args.workers} workers, {args.repeat} repetitions")
        print()
        print(
            "| runner | median s | min s | / quiet (medians) | / quiet (paired, median) "
            "| CPU s (median) | CPU / quiet |"
        )
        print("| --- | --- | --- | --- | --- | --- | --- |")
        for row in rows:
            print(
                f"| {row['runner']} | {row['median_s']:.3f} | {row['min_s']:.3f} "
                f"| {row['ratio_of_medians']:.3f} | {row['median_paired_ratio']:.3f} "
                f"| {row['median_cpu_s']:.3f} | {row['cpu_ratio']:.3f} |"
            )
        print()
        print(f"correct: {correct}; load average before {load_before}, after {load_after}")
    return 0 if correct else 1


if __name__ == "__main__":
    raise SystemExit(main())
