"""Fork cost against heap size: µs per ``fork() + _exit(0) + waitpid()`` from a process whose heap
holds 25, 100 and 400 MiB of touched memory.

For each heap size, two heaps: one with transparent huge pages requested
(``madvise(MADV_HUGEPAGE)`` before the pages are touched) and one with them refused
(``MADV_NOHUGEPAGE``). From each, two forkers: ``tach._native.proc.fork`` and ``os.fork``, timed
alternately, one sample per fork, so drift hits both alike. The heap is a private anonymous
mapping, like the interpreter's own heap (a shared mapping would not have its page tables copied
at fork, and would measure nothing). The child exits at once; the parent reaps it with
``os.waitpid`` for both forkers. ``AnonHugePages`` is read back so the table shows whether the
kernel actually gave huge pages.

Run: ``python -m tach.bench.bench_fork [--json] [--sizes 25,100,400] [--iterations N]`` or
``tach-bench fork``.
"""

from __future__ import annotations

import argparse
import gc
import mmap
import os
import sys
import time
from collections.abc import Callable, Sequence

from tach._native import proc

from ._util import emit, machine, median, percentile, pin_to_cpu

MiB = 1 << 20
PAGE = mmap.PAGESIZE


def thp_mode() -> str:
    """The system's THP setting, e.g. ``madvise`` out of ``always [madvise] never``."""
    try:
        with open("/sys/kernel/mm/transparent_hugepage/enabled") as f:
            text = f.read()
    except OSError:
        return "unavailable"
    return text[text.find("[") + 1 : text.find("]")] if "[" in text else text.strip()


def anon_huge_kib() -> int:
    """AnonHugePages of this process, in KiB."""
    with open("/proc/self/smaps_rollup") as f:
        for line in f:
            if line.startswith("AnonHugePages:"):
                return int(line.split()[1])
    return 0


def make_heap(size: int, huge: bool) -> mmap.mmap:
    """A private anonymous mapping of ``size`` bytes with every page written."""
    heap = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    heap.madvise(mmap.MADV_HUGEPAGE if huge else mmap.MADV_NOHUGEPAGE)
    for offset in range(0, size, PAGE):
        heap[offset] = 1
    return heap


def _time_fork(fork: Callable[[], int]) -> tuple[float, bool]:
    """One fork+_exit+waitpid: (µs, whether the child exited 0)."""
    start = time.perf_counter_ns()
    pid = fork()
    if pid == 0:
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    return (time.perf_counter_ns() - start) / 1000, status == 0


def measure(size_mib: int, huge: bool, iterations: int, warmup: int = 3) -> dict[str, object]:
    """Time both forkers from a process holding a ``size_mib`` heap."""
    heap = make_heap(size_mib * MiB, huge) if size_mib else None
    try:
        huge_kib = anon_huge_kib()
        forkers = {"tach": proc.fork, "os": os.fork}
        samples: dict[str, list[float]] = {name: [] for name in forkers}
        correct = True
        gc.collect()
        gc.freeze()
        for i in range(warmup + iterations):
            for name, fork in forkers.items():
                us, ok = _time_fork(fork)
                correct = correct and ok
                if i >= warmup:
                    samples[name].append(us)
        gc.unfreeze()
    finally:
        if heap is not None:
            heap.close()
    row: dict[str, object] = {
        "size_mib": size_mib,
        "thp_requested": huge,
        "anon_huge_kib": huge_kib,
        "correct": correct,
    }
    for name, values in samples.items():
        row[name] = {
            "median_us": round(median(values), 1),
            "p90_us": round(percentile(values, 90), 1),
            "min_us": round(min(values), 1),
        }
    return row


def run(sizes: Sequence[int], iterations: int, pin: bool) -> dict[str, object]:
    if pin:
        pin_to_cpu(0)
    # Flush before forking: a child that inherited unflushed stdio would not write it (it
    # _exits), but being tidy costs nothing.
    sys.stdout.flush()
    sys.stderr.flush()
    results = [measure(size, huge, iterations) for size in sizes for huge in (False, True)]
    return {
        "benchmark": "fork",
        "unit": "us per fork+_exit+waitpid",
        "machine": machine(),
        "thp_mode": thp_mode(),
        "pinned": pin,
        "iterations": iterations,
        "results": results,
        "correct": all(row["correct"] for row in results),
    }


def _table(result: dict[str, object]) -> list[list[object]]:
    table: list[list[object]] = [[
        "heap MiB", "THP", "AnonHuge MiB", "tach median µs", "tach p90 µs", "os median µs",
        "os p90 µs", "os/tach",
    ]]
    for row in result["results"]:  # type: ignore[attr-defined]
        tach, osf = row["tach"], row["os"]
        table.append([
            row["size_mib"],
            "madvise" if row["thp_requested"] else "off",
            round(row["anon_huge_kib"] / 1024),
            tach["median_us"], tach["p90_us"], osf["median_us"], osf["p90_us"],
            f"{osf['median_us'] / tach['median_us']:.2f}",
        ])
    return table


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tach-bench fork", description=__doc__.split("\n")[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--sizes", default="25,100,400",
                        help="heap sizes in MiB, comma-separated (default %(default)s)")
    parser.add_argument("--iterations", type=int, default=100, help="forks per forker and heap")
    parser.add_argument("--no-pin", action="store_true", help="do not pin to CPU 0")
    args = parser.parse_args(argv)
    try:
        sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    except ValueError:
        parser.error(f"--sizes must be comma-separated integers, got {args.sizes!r}")
    if any(s < 0 for s in sizes) or args.iterations < 1:
        parser.error("sizes must be >= 0 and --iterations >= 1")
    result = run(sizes, args.iterations, pin=not args.no_pin)
    emit(result, args.json, _table(result))
    if not args.json:
        print(f"\nTHP mode: {result['thp_mode']}; {args.iterations} forks per cell; "
              f"pinned to CPU 0: {result['pinned']}; correct: {result['correct']}")
    return 0 if result["correct"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
