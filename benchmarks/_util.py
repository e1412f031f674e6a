"""Shared helpers of the benchmark scripts: timing, statistics and output."""

from __future__ import annotations

import contextlib
import gc
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence

import orjson


def pin_to_cpu(cpu: int = 0) -> None:
    """Pin this process to one CPU where the machine allows it (fewer migrations, less noise)."""
    with contextlib.suppress(AttributeError, OSError):
        os.sched_setaffinity(0, {cpu})


def per_call_ns(fn: Callable[[], object], number: int, repeat: int) -> list[float]:
    """Nanoseconds per call of ``fn`` for each of ``repeat`` runs of ``number`` calls."""
    gc.collect()
    gc.freeze()
    results = []
    for _ in range(repeat):
        start = time.perf_counter_ns()
        for _ in range(number):
            fn()
        results.append((time.perf_counter_ns() - start) / number)
    return results


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def percentile(values: Sequence[float], pct: float) -> float:
    """The ``pct`` percentile (0..100) by nearest rank."""
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered)) - 1))
    return ordered[index]


def machine() -> dict[str, object]:
    """What the numbers were measured on."""
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "machine": platform.machine(),
        "kernel": platform.release(),
        "cpus": os.cpu_count(),
    }


def emit(result: dict[str, object], as_json: bool, table: Sequence[Sequence[object]]) -> None:
    """Print ``result`` as one JSON object, or ``table`` (header row first) as Markdown."""
    if as_json:
        sys.stdout.write(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode() + "\n")
        return
    header, *rows = table
    print("| " + " | ".join(str(cell) for cell in header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(str(cell) for cell in row) + " |")
