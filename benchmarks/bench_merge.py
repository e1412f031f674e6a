"""``tach merge`` of 4 shards of a 64,000-test run: the wall time of the whole command.

Input: four NDJSON streams synthesized as ``tach --shard K/4 --format=json`` writes them — a
``run_start`` with its ``shard``, a ``test_start`` and a ``test_finished`` per test, a
``run_finished`` — 16,000 tests each by default, named like packaging's parametrized tests
(``tests/test_version.py::TestVersion::test_valid_versions[1.0.dev456]``), with one failure in
every thousand tests (their reports a few lines long), a skip and an xfail in every hundred.

Runner: ``python -m tach merge s1 s2 s3 s4 --junit-xml OUT --json OUT`` in a fresh process,
timed around the subprocess (start to exit), which includes the interpreter's start-up.
Reported: the median and minimum wall time over ``--repeat`` runs after one unmeasured
warm-up, and the CPU seconds of the merge process. Correctness is checked on every run: exit
code 1 (the failures), the merged ``run_finished`` counts every test, and the JUnit file
holds one ``testcase`` per test.

Run: ``python -m tach.bench.bench_merge [--repeat 7] [--tests 64000] [--json]`` or
``tach-bench merge``.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

from ._util import machine
from .bench_e2e import clean_env

SHARDS = 4


def write_shards(root: Path, tests: int, shards: int = SHARDS) -> dict[str, int]:
    """The shards' streams under ``root`` (``shard1.ndjson``...); the expected counts."""
    counts = {"passed": 0, "failed": 0, "skipped": 0, "xfailed": 0}
    per = tests // shards
    n = 0
    for k in range(1, shards + 1):
        lines = [
            {
                "event": "run_start",
                "shard": {"index": k, "total": shards},
                "schema_version": 2,
                "count": per,
                "workers": 2,
                "isolation": "module",
                "rootdir": "/src/packaging",
                "tach_version": "0",
                "pytest_version": "9.2.0",
                "python": "3.11.7",
                "report_header": [],
            }
        ]
        for _ in range(per):
            module = f"tests/test_version_{n % 40}.py"
            test_id = f"{module}::TestVersion::test_valid_versions[1.{n}.dev456+local.{n % 7}]"
            status, message, longrepr = "pass", "", ""
            if n % 1000 == 999:
                status, message = "fail", f"AssertionError: assert {n} == {n + 1}"
                longrepr = f"    def test():\n>       assert {n} == {n + 1}\nE       {message}\n"
            elif n % 100 == 42:
                status, message = "skip", "no network"
            elif n % 100 == 43:
                status, message = "xfail", "bug 12"
            counts[
                {"pass": "passed", "fail": "failed", "skip": "skipped"}.get(status, "xfailed")
            ] += 1
            lines.append(
                {
                    "event": "test_start",
                    "id": test_id,
                    "file": module,
                    "line": 10,
                    "worker": 0,
                    "pid": 9,
                }
            )
            lines.append(
                {
                    "event": "test_finished",
                    "id": test_id,
                    "file": module,
                    "line": 10,
                    "status": status,
                    "when": "call",
                    "duration_ms": 0.412,
                    "message": message,
                    "longrepr": longrepr,
                    "stdout": "",
                    "stderr": "",
                    "worker": n % 2,
                    "pid": 9,
                }
            )
            n += 1
        lines.append(
            {
                "event": "run_finished",
                "passed": 0,
                "failed": 0,
                "skipped": 0,
                "xfailed": 0,
                "xpassed": 0,
                "errors": 0,
                "duration_ms": 20000.0 + k,
                "exit_code": 1,
                "not_run": 0,
                "interrupted": None,
                "plugin_report": "",
            }
        )
        (root / f"shard{k}.ndjson").write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in lines))
    counts["tests"] = n
    return counts


def run_once(root: Path, shards: int) -> dict[str, Any]:
    """One timed ``tach merge``: wall and CPU seconds, exit code, what it counted."""
    out_xml, out_json = root / "merged.xml", root / "merged.ndjson"
    cmd = [sys.executable, "-m", "tach", "merge", "-q"]
    cmd += [str(root / f"shard{k}.ndjson") for k in range(1, shards + 1)]
    cmd += ["--junit-xml", str(out_xml), "--json", str(out_json)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = subprocess.run(cmd, env=clean_env(), capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    last = orjson.loads(out_json.read_bytes().rsplit(b"\n", 2)[-2]) if out_json.exists() else {}
    return {
        "wall_s": wall,
        "cpu_s": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
        "returncode": proc.returncode,
        "stderr": proc.stderr[-2000:],
        "finished": last,
        "testcases": out_xml.read_bytes().count(b"<testcase ") if out_xml.exists() else 0,
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Measure and print a Markdown table (or one JSON object with ``--json``)."""
    parser = argparse.ArgumentParser(prog="tach-bench merge", description=__doc__)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--tests", type=int, default=64_000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(list(argv) if argv is not None else None)

    with tempfile.TemporaryDirectory(prefix="tach-bench-merge-") as tmp:
        root = Path(tmp)
        expected = write_shards(root, args.tests)
        size = sum((root / f"shard{k}.ndjson").stat().st_size for k in range(1, SHARDS + 1))
        run_once(root, SHARDS)
        runs = [run_once(root, SHARDS) for _ in range(args.repeat)]

    def right(run: dict[str, Any]) -> bool:
        finished = run["finished"]
        return (
            run["returncode"] == 1
            and run["testcases"] == expected["tests"]
            and all(finished.get(key) == expected[key] for key in ("passed", "failed", "skipped"))
        )

    walls = [r["wall_s"] for r in runs]
    result = {
        "tests": expected["tests"],
        "shards": SHARDS,
        "input_mb": round(size / 1e6, 1),
        "repeat": args.repeat,
        "correct": all(right(r) for r in runs),
        "median_s": round(statistics.median(walls), 3),
        "min_s": round(min(walls), 3),
        "median_cpu_s": round(statistics.median(r["cpu_s"] for r in runs), 3),
        "machine": machine(),
    }
    if not result["correct"]:
        result["stderr"] = runs[-1]["stderr"]
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(
            f"tach merge: {expected['tests']} tests in {SHARDS} shards "
            f"({result['input_mb']} MB of NDJSON), {args.repeat} runs"
        )
        print("| median s | min s | median CPU s | correct |")
        print("|---|---|---|---|")
        print(
            f"| {result['median_s']} | {result['min_s']} | {result['median_cpu_s']} "
            f"| {result['correct']} |"
        )
    return 0 if result["correct"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
