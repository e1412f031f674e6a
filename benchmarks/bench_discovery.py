"""Discovery speed: ``tach list -q`` (cold and warm cache) against ``pytest --collect-only -q``.

Generates suites of 150 / 1,500 / 15,000 files (11 tests each, :mod:`._data`), then times, in
fresh processes: ``python -m pytest --collect-only -q``, ``python -m tach list -q`` with no
``.tach/`` (cold) and again with it (warm). Correctness is recorded next to each time: the
static ids must equal pytest's.

Run: ``python -m tach.bench.bench_discovery [--sizes 150,1500] [--json] [--repeat N]``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ._data import make_suite


def _run(cmd: list[str], cwd: Path) -> tuple[float, list[str]]:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - t0
    ids = [ln for ln in proc.stdout.splitlines() if "::" in ln]
    return elapsed, ids


def bench_size(n_files: int, repeat: int, skip_pytest: bool) -> dict[str, Any]:
    """Time one suite size."""
    tmp = Path(tempfile.mkdtemp(prefix=f"tach-bench-{n_files}-"))
    try:
        n_tests = make_suite(tmp, n_files)
        py = sys.executable
        pytest_t: list[float] = []
        pytest_ids: list[str] = []
        if not skip_pytest:
            for _ in range(repeat):
                t, pytest_ids = _run([py, "-m", "pytest", "--collect-only", "-q",
                                      "-p", "no:cacheprovider"], tmp)
                pytest_t.append(t)
        cold: list[float] = []
        warm: list[float] = []
        ids: list[str] = []
        for _ in range(repeat):
            shutil.rmtree(tmp / ".tach", ignore_errors=True)
            t, ids = _run([py, "-m", "tach", "list", "-q"], tmp)
            cold.append(t)
            t, warm_ids = _run([py, "-m", "tach", "list", "-q"], tmp)
            warm.append(t)
            assert warm_ids == ids
        row: dict[str, Any] = {
            "files": n_files, "tests": n_tests,
            "tach_cold_s": round(statistics.median(cold), 4),
            "tach_warm_s": round(statistics.median(warm), 4),
            "static_ids": len(ids),
        }
        if pytest_t:
            p = statistics.median(pytest_t)
            row.update({
                "pytest_s": round(p, 4),
                "cold_speedup": round(p / row["tach_cold_s"], 1),
                "warm_speedup": round(p / row["tach_warm_s"], 1),
                "correct": set(ids) == set(pytest_ids) and len(ids) == len(pytest_ids),
                "same_order": ids == pytest_ids,
            })
        return row
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; print a table or JSON."""
    ap = argparse.ArgumentParser(prog="bench_discovery", description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="150,1500,15000", help="comma-separated file counts")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--skip-pytest-above", type=int, default=10**9,
                    help="do not time pytest above this many files")
    args = ap.parse_args(argv)
    rows = []
    for n in (int(x) for x in args.sizes.split(",")):
        rows.append(bench_size(n, args.repeat if n <= 1500 else 1, n > args.skip_pytest_above))
        if not args.json:
            print(rows[-1], flush=True)
    if args.json:
        print(json.dumps(rows, indent=2))
    return 0 if all(r.get("correct", True) for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
