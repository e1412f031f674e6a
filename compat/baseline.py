#!/usr/bin/env python3
"""Record what pytest itself does on every project of the corpus.

    python3 compat/baseline.py [--project NAME ...] [--runs 2] [--timeout 900]
                               [--corpus DIR] [--out-dir DIR]

For every selected project (set up by ``setup.sh``), in its work dir, with its venv's python
and the manifest's environment, each run does

1. ``python -m pytest -p compat_outcomes --collect-only -q ARGS`` (timed), then
2. ``python -m pytest -p compat_outcomes ARGS`` (timed),

``plugin/compat_outcomes.py`` being put on PYTHONPATH (see it for how outcomes are merged
over setup/call/teardown). The project's ``files`` are copied into its work dir first, and
its ``services`` (a PostgreSQL server) run for the duration of all its runs, the variables
that reach them in the runs' environment (see ``corpus.py``). The runs are merged into
``baseline/NAME.json``: each test's outcome and shortest duration, collection errors and
module-level skips by collector id, the collected count, the wall times of every run and
their medians, and ``flaky``: ids whose outcome differed between runs or that some run did
not report (their entry lists ``outcomes_seen``; any outcome seen is accepted by
compare.py). Run it at least twice per project; use more runs when a project has flaky tests.

Exit status 0 when every project ran, 1 otherwise.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import corpus as C


def run_pytest(
    p: C.Project,
    venv: Path,
    workdir: Path,
    extra: list[str],
    timeout: float,
    log: Path,
    service_env: dict[str, str],
) -> tuple[float, int | str, dict[str, Any] | None]:
    """One pytest run with the recording plugin: (wall seconds, exit status, record)."""
    fd, out = tempfile.mkstemp(prefix=f"compat-{p['name']}-", suffix=".json")
    os.close(fd)
    os.unlink(out)
    env = C.run_env(p, venv, workdir, extra_pythonpath=[C.PLUGIN_DIR], service_env=service_env)
    env[C.OUTCOMES_ENV] = out
    cmd = [str(venv / "bin" / "python"), "-m", "pytest", "-p", C.PLUGIN_NAME, *extra]
    cmd += C.pytest_args(p)
    rc: int | str
    with open(log, "w") as f:
        f.write(f"$ cd {workdir} && {C.quote_args(cmd)}\n")
        f.flush()
        t0 = time.perf_counter()
        try:
            rc = subprocess.run(
                cmd,
                cwd=workdir,
                env=env,
                stdout=f,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                timeout=timeout,
                check=False,
            ).returncode
        except subprocess.TimeoutExpired:
            rc = "timeout"
        wall = time.perf_counter() - t0
    data = None
    if os.path.exists(out):
        with open(out) as f:
            data = json.load(f)
        os.unlink(out)
    return wall, rc, data


def merge(results: list[dict[str, Any]]) -> tuple[dict[str, Any], list[str]]:
    """Merge the records of several runs: (tests in first-seen order, flaky ids)."""
    order: dict[str, None] = {}
    for r in results:
        order.update(dict.fromkeys(r["tests"]))
    tests: dict[str, Any] = {}
    flaky = []
    for nid in order:
        seen = [r["tests"].get(nid, {}).get("outcome") or "absent" for r in results]
        first = next(r["tests"][nid] for r in results if nid in r["tests"])
        durations = [r["tests"][nid]["duration_s"] for r in results if nid in r["tests"]]
        entry: dict[str, Any] = {
            "outcome": next(s for s in seen if s != "absent")
            if set(seen) != {"absent"}
            else "absent",
            "duration_ms": round(min(durations) * 1000, 3),
        }
        for key in ("subtests", "reruns"):
            if first.get(key):
                entry[key] = first[key]
        if entry["outcome"] in ("failed", "error") and first.get("longrepr"):
            entry["longrepr_tail"] = first["longrepr"][-600:]
        if len(set(seen)) > 1:
            entry["flaky"] = True
            entry["outcomes_seen"] = seen
            flaky.append(nid)
        tests[nid] = entry
    return tests, flaky


def baseline_one(
    manifest: C.Manifest, p: C.Project, runs: int, timeout: float, log_dir: Path
) -> dict[str, Any]:
    """Run pytest ``runs`` times on a project; the baseline record, or why there is none."""
    venv, workdir = C.paths(manifest, p)
    if not (venv / "bin" / "python").exists() or not workdir.is_dir():
        return {"status": "not set up (run compat/setup.sh)"}
    try:
        C.install_files(manifest, p, workdir)
    except OSError as exc:
        return {"status": f"could not copy its files: {exc}"}
    with contextlib.ExitStack() as stack:
        try:
            running = stack.enter_context(C.services(p))
        except C.ServiceError as exc:
            return {"status": str(exc)}
        for name, version in running.versions.items():
            print(f"  {p['name']}: {name} {version} running", flush=True)
        return record_runs(p, venv, workdir, runs, timeout, log_dir, running)


def record_runs(
    p: C.Project,
    venv: Path,
    workdir: Path,
    runs: int,
    timeout: float,
    log_dir: Path,
    running: C.Running,
) -> dict[str, Any]:
    """The runs of :func:`baseline_one`, its services running."""
    collect_walls: list[float] = []
    collect_rcs: list[int | str] = []
    walls: list[float] = []
    rcs: list[int | str] = []
    results: list[dict[str, Any]] = []
    collected: dict[str, Any] | None = None
    for i in range(1, runs + 1):
        log = log_dir / f"baseline-{p['name']}.collect.{i}.log"
        collect = ["--collect-only", "-q"]
        wall, rc, data = run_pytest(p, venv, workdir, collect, timeout, log, running.env)
        if data is None:
            return {"status": f"collect-only run {i} wrote no record (exit {rc}); see {log}"}
        collect_walls.append(round(wall, 3))
        collect_rcs.append(rc)
        collected = collected or data
        log = log_dir / f"baseline-{p['name']}.run.{i}.log"
        wall, rc, data = run_pytest(p, venv, workdir, [], timeout, log, running.env)
        if data is None:
            return {"status": f"run {i} wrote no record (exit {rc}); see {log}"}
        walls.append(round(wall, 3))
        rcs.append(rc)
        results.append(data)
        print(
            f"  {p['name']}: run {i}/{runs}: collect {collect_walls[-1]:.2f}s, "
            f"full {wall:.2f}s, exit {rc}, {len(data['tests'])} tests",
            flush=True,
        )
    assert collected is not None
    tests, flaky = merge(results)
    first = results[0]
    counts = collections.Counter(e["outcome"] for e in tests.values())
    record = {
        "name": p["name"],
        "version": p["version"],
        "workdir": f"{p['unpack_dir']}/{p.get('workdir', '.')}".rstrip("/."),
        "command": f"python -m pytest {C.quote_args(C.pytest_args(p))}".rstrip(),
        "pytest_args": C.pytest_args(p),
        "env": p.get("env", {}),
        **({"files": p["files"]} if p.get("files") else {}),
        **({"services": running.versions} if running.versions else {}),
        "pytest_version": first["pytest_version"],
        "python_version": platform.python_version(),
        "machine": f"{platform.system()} {platform.machine()}, {os.cpu_count()} cpus",
        "recorded_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "runs": runs,
        "exitstatus": rcs,
        "collect_only_exitstatus": collect_rcs,
        "collected_count": len(collected["collected"]),
        "deselected_count": collected["deselected"],
        "collect_only_wall_s": collect_walls,
        "full_run_wall_s": walls,
        "full_run_wall_s_median": round(statistics.median(walls), 3),
        "collect_only_wall_s_median": round(statistics.median(collect_walls), 3),
        "outcome_counts": dict(sorted(counts.items())),
        "flaky": flaky,
        "collect_errors": first["collect_errors"],
        "collect_skipped": first["collect_skipped"],
        "collected_ids_differ_from_run": sorted(
            set(collected["collected"]) ^ set(first["collected"])
        ),
        "tests": tests,
    }
    return {"status": "ok", "record": record}


def main() -> int:
    """Command line entry point."""
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--corpus", help="a corpus directory or manifest (default: this one)")
    ap.add_argument("--project", action="append", default=[], help="only this (repeatable)")
    ap.add_argument("--runs", type=int, default=2, help="runs per project (default 2)")
    ap.add_argument("--timeout", type=float, default=900, help="seconds per pytest run")
    ap.add_argument("--out-dir", help="default: baseline/ next to the manifest")
    args = ap.parse_args()

    manifest = C.load_manifest(args.corpus)
    out_dir = Path(args.out_dir) if args.out_dir else C.baseline_dir(manifest)
    out_dir.mkdir(parents=True, exist_ok=True)
    log_dir = C.cache_dir(manifest) / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    ok = True
    for p in C.select(manifest, args.project):
        print(f"== {p['name']} {p['version']}", flush=True)
        res = baseline_one(manifest, p, args.runs, args.timeout, log_dir)
        if res["status"] != "ok":
            ok = False
            print(f"  {p['name']}: {res['status']}", flush=True)
            rows.append([p["name"], p["version"], "-", "-", "-", "-", res["status"]])
            continue
        rec = res["record"]
        C.write_baseline(out_dir / f"{p['name']}.json", rec)
        rows.append(
            [
                p["name"],
                p["version"],
                str(rec["collected_count"]),
                "/".join(f"{x:.2f}" for x in rec["collect_only_wall_s"]),
                "/".join(f"{x:.2f}" for x in rec["full_run_wall_s"]),
                str(len(rec["flaky"])),
                " ".join(f"{k}={v}" for k, v in rec["outcome_counts"].items()),
            ]
        )
    header = ["project", "version", "tests", "collect s", "full s", "flaky", "outcomes"]
    print()
    print(C.table(header, rows))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
