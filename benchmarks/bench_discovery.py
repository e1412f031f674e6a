"""Discovery speed: ``tach list -q`` (cold and warm cache) against ``pytest --collect-only -q``.

Generates suites of 150 / 1,500 / 15,000 files (11 tests each, :mod:`._data`), then times, in
fresh processes: ``python -m pytest --collect-only -q``, ``python -m tach list -q`` with no
``.tach/`` (cold) and again with it (warm). Correctness is recorded next to each time: the
static ids must equal pytest's.

Run: ``python -m tach.bench.bench_discovery [--sizes 150,1500] [--json] [--repeat N]
[--repeat-large N] [--serial]``. The JSON output also records the CPUs and the load average
during each size.

Bytecode: every command runs with bytecode caching on, as on a user's machine, whatever
``PYTHONDONTWRITEBYTECODE`` says here: Tach's own modules are byte-compiled first (as a wheel
install does), and pytest's ``pytest`` time is taken after one untimed run, so that its
assertion-rewritten test modules come from ``__pycache__`` as they do once a project has been
tested. ``pytest_nobytecode_s`` is pytest on a fresh checkout instead (the suite's
``__pycache__`` directories removed, nothing written): both are reported, the first is the one
compared.
"""

from __future__ import annotations

import argparse
import json
import os
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


def _run(cmd: list[str], cwd: Path, env: dict[str, str] | None = None) -> tuple[float, list[str]]:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False, env=env)
    elapsed = time.perf_counter() - t0
    ids = [ln for ln in proc.stdout.splitlines() if "::" in ln]
    return elapsed, ids


def bench_size(n_files: int, repeat: int, skip_pytest: bool,
               serial: bool = False, nobytecode: bool = True) -> dict[str, Any]:
    """Time one suite size.

    The commands are interleaved (pytest, tach cold, tach warm, then again), so that a machine
    whose load changes during the run weighs on all of them alike; each time is the median.
    ``serial`` also times cold runs with ``TACH_DISCOVERY_JOBS=1`` (no worker processes);
    ``nobytecode`` also times pytest without a bytecode cache.
    """
    tmp = Path(tempfile.mkdtemp(prefix=f"tach-bench-{n_files}-"))
    try:
        n_tests = make_suite(tmp, n_files)
        py = sys.executable
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        one_job = {**env, "TACH_DISCOVERY_JOBS": "1"}
        pytest_cmd = [py, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider"]
        no_bytecode = {**env, "PYTHONDONTWRITEBYTECODE": "1"}
        if not skip_pytest:
            _run(pytest_cmd, tmp, env)  # writes the bytecode cache a tested project has
        pytest_t: list[float] = []
        pytest_nobytecode: list[float] = []
        pytest_ids: list[str] = []
        cold: list[float] = []
        cold_serial: list[float] = []
        warm: list[float] = []
        ids: list[str] = []
        load = [os.getloadavg()[0]]
        for _ in range(repeat):
            if not skip_pytest:
                t, pytest_ids = _run(pytest_cmd, tmp, env)
                pytest_t.append(t)
                if nobytecode:
                    caches = [d for d in tmp.rglob("__pycache__") if d.is_dir()]
                    for d in caches:
                        shutil.rmtree(d)
                    t, nb_ids = _run(pytest_cmd, tmp, no_bytecode)
                    _run(pytest_cmd, tmp, env)  # the cache back, untimed
                    pytest_nobytecode.append(t)
                    assert nb_ids == pytest_ids
            shutil.rmtree(tmp / ".tach", ignore_errors=True)
            t, ids = _run([py, "-m", "tach", "list", "-q"], tmp, env)
            cold.append(t)
            t, warm_ids = _run([py, "-m", "tach", "list", "-q"], tmp, env)
            warm.append(t)
            assert warm_ids == ids
            if serial:
                shutil.rmtree(tmp / ".tach", ignore_errors=True)
                t, serial_ids = _run([py, "-m", "tach", "list", "-q"], tmp, one_job)
                cold_serial.append(t)
                assert serial_ids == ids
            load.append(os.getloadavg()[0])
        row: dict[str, Any] = {
            "files": n_files, "tests": n_tests, "runs": repeat,
            "tach_cold_s": round(statistics.median(cold), 4),
            "tach_warm_s": round(statistics.median(warm), 4),
            "cold_ms_per_file": round(1000 * statistics.median(cold) / n_files, 3),
            "static_ids": len(ids),
            "load_avg": [round(min(load), 2), round(max(load), 2)],
        }
        if cold_serial:
            row["tach_cold_1job_s"] = round(statistics.median(cold_serial), 4)
        if pytest_t:
            p = statistics.median(pytest_t)
            row.update({
                "pytest_s": round(p, 4),
                "cold_speedup": round(p / row["tach_cold_s"], 1),
                "warm_speedup": round(p / row["tach_warm_s"], 1),
                "correct": set(ids) == set(pytest_ids) and len(ids) == len(pytest_ids),
                "same_order": ids == pytest_ids,
            })
        if pytest_nobytecode:
            p = statistics.median(pytest_nobytecode)
            row["pytest_nobytecode_s"] = round(p, 4)
            row["cold_speedup_nobytecode"] = round(p / row["tach_cold_s"], 1)
        return row
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; print a table or JSON."""
    ap = argparse.ArgumentParser(prog="bench_discovery", description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="150,1500,15000", help="comma-separated file counts")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--repeat-large", type=int, default=1,
                    help="runs for suites above 1,500 files (pytest takes minutes there)")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--serial", action="store_true",
                    help="also time cold runs without worker processes (TACH_DISCOVERY_JOBS=1)")
    ap.add_argument("--skip-pytest-above", type=int, default=10**9,
                    help="do not time pytest above this many files")
    ap.add_argument("--no-nobytecode", dest="nobytecode", action="store_false",
                    help="do not also time pytest without a bytecode cache")
    args = ap.parse_args(argv)
    import compileall

    import tach

    compileall.compile_dir(Path(tach.__file__).parent, quiet=1)  # as a wheel install does
    rows = []
    for n in (int(x) for x in args.sizes.split(",")):
        rows.append(bench_size(n, args.repeat if n <= 1500 else args.repeat_large,
                               n > args.skip_pytest_above, args.serial, args.nobytecode))
        if not args.json:
            print(rows[-1], flush=True)
    if args.json:
        print(json.dumps({
            "cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
            else os.cpu_count(),
            "python": sys.version.split()[0],
            "rows": rows,
        }, indent=2))
    return 0 if all(r.get("correct", True) for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
