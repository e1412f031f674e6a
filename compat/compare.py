#!/usr/bin/env python3
"""Run Tach on every corpus project and compare each test's outcome with pytest's baseline.

    python3 compat/compare.py [--project NAME ...] [--mode none|module|test]
                              [--engine TEMPLATE] [--repeat N] [--pytest-timing baseline|live]
                              [--timeout S] [--show N] [--json-out FILE] [--corpus DIR]
    python3 compat/compare.py --list [--list-engine TEMPLATE] [...]

Outcome mode (default). TEMPLATE is a shell command run in each project's work dir with the
project's environment (venv ``bin`` first on PATH, VIRTUAL_ENV, the manifest's variables, and
those of the project's ``services``, started for the duration of its runs; its ``files`` are
copied into the work dir first).
Placeholders: ``{python}`` the venv's interpreter, ``{args}`` the project's pytest
arguments (shell-quoted), ``{isolation}`` (``--isolation MODE`` with ``--mode``, else
empty), ``{workdir}``, ``{venv}``, ``{project}``. Default::

    {python} -m tach --format=json {isolation} {args}

The command must print NDJSON on stdout (other lines are ignored). Used events:
``test_finished`` (``id``, ``status``: pass|fail|skip|xfail|xpass|error, pytest's words
too) and ``collect_error`` (``id``; counts as ``error``). Expected outcomes come from
``baseline/NAME.json``: pytest's merged outcome per test id, ``error`` for each collection
error and ``skip`` for each module-level skip under the collector's id; for an id the
baseline marks flaky any outcome pytest showed agrees. The table gives, per project: ids in
the baseline, ids reported, same outcome, different, missing (not reported), extra (not in
the baseline), flaky ids, Tach's wall time, pytest's (the baseline's median full run, or
with ``--pytest-timing live`` timed now, alternating with Tach's runs) and the ratio. With
``--repeat N`` each side runs N times and the medians are shown; outcomes are those of
Tach's first run, and ids whose status changed between Tach's runs are reported.
Mismatching ids go to stderr (``--show N`` of each kind), every one to ``--json-out``.

List mode (``--list``). Runs ``{python} -m tach list --format=json {args}`` (override with
``--list-engine``) and compares its document with the ids pytest ran in the baseline: ids
listed exactly, ids covered by a dynamic entry (equal to it, or starting with its id plus
``[`` or ``::``, or, for an id ending in ``/``, starting with it), missing (neither) and
extra (listed exactly, not run by pytest), and the share listed exactly.

Other corpora. ``--corpus /work/shared/realworld`` reads that corpus's manifest, baselines
and venvs (its cache variable and default). When Tach is not importable in a venv (that
corpus's venvs have no ``tach-compat.pth``), Tach is put on PYTHONPATH through
``$TACH_COMPAT_CACHE/overlay/pyX.Y``: a symlink to the checkout's ``tach`` package (``--tach
DIR``) and Tach's pinned runtime dependencies installed there with ``pip --target``.

Exit status: 0 when every project ran and agreed on every id (list mode: nothing missing or
extra); 1 when some id disagrees; 2 when some project could not be run.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import corpus as C

DEFAULT_ENGINE = "{python} -m tach --format=json {isolation} {args}"
DEFAULT_LIST = "{python} -m tach list --format=json {args}"
STATUS = {
    "pass": "pass",
    "passed": "pass",
    "fail": "fail",
    "failed": "fail",
    "skip": "skip",
    "skipped": "skip",
    "xfail": "xfail",
    "xfailed": "xfail",
    "xpass": "xpass",
    "xpassed": "xpass",
    "error": "error",
    "errors": "error",
}


# ---------------------------------------------------------------------------------------
# expectations and events


def expected(base: dict[str, Any]) -> dict[str, set[str]]:
    """Node id -> the Tach statuses that agree with pytest's baseline."""
    exp: dict[str, set[str]] = {}
    for nid, t in base["tests"].items():
        seen = t.get("outcomes_seen", [t["outcome"]]) if t.get("flaky") else [t["outcome"]]
        exp[nid] = {C.TO_ENGINE.get(o, o) for o in seen}  # "absent" stays "absent"
    for nid in base.get("collect_errors", {}):
        exp.setdefault(nid, set()).add("error")
    for nid in base.get("collect_skipped", {}):
        exp.setdefault(nid, set()).add("skip")
    return exp


def parse_events(stdout: str) -> dict[str, Any]:
    """Statuses by id from Tach's NDJSON (last report of an id wins)."""
    reported: dict[str, str] = {}
    durations: dict[str, float] = {}
    unknown: dict[str, str] = {}
    duplicates = 0
    crashes: list[str] = []
    finished: dict[str, Any] | None = None
    for line in stdout.splitlines():
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            ev = json.loads(line)
        except ValueError:
            continue
        if not isinstance(ev, dict):
            continue
        if ev.get("event") == "worker_crash":
            crashes.append(f"{ev.get('id')}: {ev.get('phase')}: {ev.get('message')}")
            continue
        if ev.get("event") == "run_finished":
            finished = {k: ev.get(k) for k in ("exit_code", "interrupted")}
            continue
        if ev.get("event") not in ("test_finished", "collect_error"):
            continue
        nid = ev.get("id", ev.get("nodeid"))
        if not isinstance(nid, str):
            continue
        if ev["event"] == "collect_error":
            status = "error"
        else:
            raw = str(ev.get("status", ev.get("outcome", "")))
            status = STATUS.get(raw.lower(), "?" + raw)
            if status.startswith("?"):
                unknown[nid] = raw
        duplicates += nid in reported
        reported[nid] = status
        if isinstance(ev.get("duration_ms"), (int, float)):
            durations[nid] = float(ev["duration_ms"])
    return {
        "reported": reported,
        "durations": durations,
        "unknown": unknown,
        "dup": duplicates,
        "crashes": crashes,
        "run_finished": finished,
    }


# ---------------------------------------------------------------------------------------
# running


def overlay_pythonpath(venv: Path, tach_dir: Path, runtime: list[str]) -> str:
    """A directory with ``tach`` (a symlink) and Tach's runtime deps for this venv's Python."""
    vpy = str(venv / "bin" / "python")
    ver = C.venv_python_version(venv)
    overlay = C.cache_dir(C.load_manifest()) / "overlay" / f"py{ver}"
    overlay.mkdir(parents=True, exist_ok=True)
    stamp = overlay / ".runtime"
    if stamp.exists() is False or stamp.read_text().split() != runtime:
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
        subprocess.run(
            [
                vpy,
                "-m",
                "pip",
                "install",
                "-q",
                "--no-input",
                "--upgrade",
                "--target",
                str(overlay),
                *runtime,
            ],
            check=True,
            env=env,
            stdout=subprocess.DEVNULL,
        )
        stamp.write_text(" ".join(runtime) + "\n")
    link = overlay / "tach"
    if not (link.is_symlink() and Path(os.readlink(link)) == tach_dir / "tach"):
        link.unlink(missing_ok=True)
        link.symlink_to(tach_dir / "tach", target_is_directory=True)
    return str(overlay)


def tach_importable(venv: Path) -> bool:
    """Whether the venv imports tach and its runtime deps by itself."""
    probe = "import tach, orjson, watchdog"
    env = {k: v for k, v in os.environ.items() if k not in C.SCRUBBED}
    return (
        subprocess.run(
            [str(venv / "bin" / "python"), "-c", probe],
            cwd="/",
            env=env,
            capture_output=True,
            check=False,
        ).returncode
        == 0
    )


def time_pytest(
    p: C.Project, venv: Path, workdir: Path, timeout: float, service_env: dict[str, str]
) -> float:
    """Wall seconds of one plain ``python -m pytest ARGS`` run."""
    cmd = [str(venv / "bin" / "python"), "-m", "pytest", *C.pytest_args(p)]
    t0 = time.perf_counter()
    subprocess.run(
        cmd,
        cwd=workdir,
        env=C.run_env(p, venv, workdir, service_env=service_env),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
        timeout=timeout,
        check=False,
    )
    return time.perf_counter() - t0


class Context:
    """What every project's comparison needs from the command line."""

    def __init__(self, args: argparse.Namespace, manifest: C.Manifest) -> None:
        self.args = args
        self.manifest = manifest
        self.tach_dir = Path(args.tach).resolve()
        self.runtime = C.load_manifest().get("tach_runtime", [])
        self.baselines = Path(args.baseline_dir) if args.baseline_dir else C.baseline_dir(manifest)

    def prepare(
        self, p: C.Project, service_env: dict[str, str]
    ) -> tuple[dict[str, Any], Path, Path, dict[str, str]] | str:
        """(baseline, venv, work dir, environment), or why the project cannot run."""
        bpath = self.baselines / f"{p['name']}.json"
        if not bpath.exists():
            return f"no baseline {bpath}"
        venv, workdir = C.paths(self.manifest, p)
        if not (venv / "bin" / "python").exists() or not workdir.is_dir():
            return "venv or sources missing (run the corpus's setup)"
        try:
            C.install_files(self.manifest, p, workdir)
        except OSError as exc:
            return f"could not copy its files: {exc}"
        extra = []
        if not tach_importable(venv):
            extra = [overlay_pythonpath(venv, self.tach_dir, self.runtime)]
        env = C.run_env(p, venv, workdir, extra_pythonpath=extra, service_env=service_env)
        return json.loads(bpath.read_text()), venv, workdir, env

    def run(self, p: C.Project) -> dict[str, Any]:
        """Compare (or list) one project, its services running for the duration."""
        with contextlib.ExitStack() as stack:
            try:
                running = stack.enter_context(C.services(p))
            except C.ServiceError as exc:
                return {
                    "project": p["name"],
                    "version": p["version"],
                    "status": "not runnable",
                    "reason": str(exc),
                }
            one = list_one if self.args.list else compare_one
            return one(self, p, running.env)


def compare_one(ctx: Context, p: C.Project, service_env: dict[str, str]) -> dict[str, Any]:
    """Run Tach (``--repeat`` times) on a project and compare with its baseline."""
    a = ctx.args
    res: dict[str, Any] = {"project": p["name"], "version": p["version"]}
    prep = ctx.prepare(p, service_env)
    if isinstance(prep, str):
        return {**res, "status": "not runnable", "reason": prep}
    base, venv, workdir, env = prep
    exp = expected(base)
    res.update(baseline=len(exp), flaky=len(base.get("flaky", [])))
    res["pytest_exitstatus"] = sorted({str(x) for x in base.get("exitstatus", [])})
    cmd = C.render(a.engine, p, venv, workdir, a.mode)
    res["command"] = cmd
    runs, walls, pytest_walls = [], [], []
    for _ in range(max(1, a.repeat)):
        r = C.run_shell(cmd, workdir, env, a.timeout)
        runs.append(r)
        walls.append(r["wall"])
        if a.pytest_timing == "live":
            pytest_walls.append(time_pytest(p, venv, workdir, a.timeout, service_env))
    first = runs[0]
    ev = parse_events(first["out"])
    reported = ev["reported"]
    res.update(returncode=first["rc"], engine_wall_s=round(statistics.median(walls), 3))
    res["engine_walls_s"] = [round(w, 3) for w in walls]
    if not reported and first["rc"] not in (0, 1, 5):
        return {
            **res,
            "status": "not runnable",
            "reason": f"exit {first['rc']}, no test reported",
            "stderr_tail": first["err"][-3000:],
        }
    unstable = set()
    for r in runs[1:]:
        again = parse_events(r["out"])["reported"]
        unstable |= {n for n in set(reported) | set(again) if reported.get(n) != again.get(n)}
    same, diff, missing = [], [], []
    for nid, ok in exp.items():
        got = reported.get(nid)
        if got is None:
            (same if "absent" in ok else missing).append(nid)
        elif got in ok:
            same.append(nid)
        else:
            diff.append([nid, "|".join(sorted(ok)), got])
    extra = [nid for nid in reported if nid not in exp]
    if pytest_walls:
        pyt = statistics.median(pytest_walls)
    else:
        pyt = base.get("full_run_wall_s_median") or statistics.median(base["full_run_wall_s"])
    res.update(
        status="ran",
        reported=len(reported),
        same=len(same),
        different=len(diff),
        missing=len(missing),
        extra=len(extra),
        duplicates=ev["dup"],
        unknown_status=ev["unknown"],
        worker_crashes=ev["crashes"],
        run_finished=ev["run_finished"],
        pytest_wall_s=round(pyt, 3),
        pytest_walls_s=[round(w, 3) for w in pytest_walls] or None,
        ratio=round(res["engine_wall_s"] / pyt, 3) if pyt else None,
        diffs=diff,
        missing_ids=missing,
        extra_ids=extra,
        unstable_ids=sorted(unstable),
    )
    if first["rc"] not in (0, 1) or (missing and len(missing) == len(exp)):
        res["stderr_tail"] = first["err"][-3000:]
    return res


def covers(entry: str, nid: str) -> bool:
    """Whether a dynamic list entry stands for a pytest id (docs/discovery.md)."""
    if nid == entry or nid.startswith((entry + "[", entry + "::")):
        return True
    return (entry == "" or entry.endswith("/")) and nid.startswith(entry)


def parse_document(stdout: str) -> dict[str, Any] | None:
    """The JSON document of ``tach list --format=json`` (leading noise tolerated)."""
    start = stdout.find("{")
    while start != -1:
        try:
            doc = json.loads(stdout[start:])
            return doc if isinstance(doc, dict) and "tests" in doc else None
        except ValueError:
            start = stdout.find("\n{", start + 1)
            start = start + 1 if start != -1 else -1
    return None


def list_one(ctx: Context, p: C.Project, service_env: dict[str, str]) -> dict[str, Any]:
    """Run Tach's static listing on a project and compare its ids with pytest's."""
    a = ctx.args
    res: dict[str, Any] = {"project": p["name"], "version": p["version"]}
    prep = ctx.prepare(p, service_env)
    if isinstance(prep, str):
        return {**res, "status": "not runnable", "reason": prep}
    base, venv, workdir, env = prep
    cmd = C.render(a.list_engine, p, venv, workdir, "")
    r = C.run_shell(cmd, workdir, env, a.timeout)
    doc = parse_document(r["out"])
    res.update(command=cmd, returncode=r["rc"], list_wall_s=round(r["wall"], 3))
    if doc is None:
        return {
            **res,
            "status": "not runnable",
            "reason": f"exit {r['rc']}, no document",
            "stderr_tail": r["err"][-3000:],
        }
    exact = {t["id"] for t in doc["tests"] if not t.get("dynamic")}
    dynamic = [(t["id"], t["dynamic"]) for t in doc["tests"] if t.get("dynamic")]
    pytest_ids = list(base["tests"])
    listed, covered, missing = [], [], []
    reasons: dict[str, int] = {}
    for nid in pytest_ids:
        if nid in exact:
            listed.append(nid)
            continue
        hit = next((d for d in dynamic if covers(d[0], nid)), None)
        if hit:
            covered.append(nid)
            reasons[str(hit[1])] = reasons.get(str(hit[1]), 0) + 1
        else:
            missing.append(nid)
    extra = sorted(exact - set(pytest_ids))
    res.update(
        status="ran",
        pytest_ids=len(pytest_ids),
        exact=len(listed),
        dynamic=len(covered),
        missing=len(missing),
        extra=len(extra),
        dynamic_entries=len(dynamic),
        exact_share=round(100.0 * len(listed) / len(pytest_ids), 2) if pytest_ids else 100.0,
        dynamic_reasons=dict(sorted(reasons.items(), key=lambda kv: -kv[1])),
        missing_ids=missing,
        extra_ids=extra,
        list_errors=doc.get("errors", []),
    )
    return res


# ---------------------------------------------------------------------------------------
# reporting


def show_mismatches(r: dict[str, Any], show: int) -> None:
    """Print a project's mismatching ids (``show`` of each kind) to stderr."""
    name = r["project"]
    if r["status"] != "ran":
        print(f"{name}: not runnable: {r.get('reason')}", file=sys.stderr)
        if r.get("stderr_tail"):
            print("  " + r["stderr_tail"].strip()[-1500:].replace("\n", "\n  "), file=sys.stderr)
        return
    kinds = [
        ("different", [f"{n}: expected {e}, got {g}" for n, e, g in r.get("diffs", [])]),
        ("missing", r.get("missing_ids", [])),
        ("extra", r.get("extra_ids", [])),
        ("unstable across Tach runs", r.get("unstable_ids", [])),
    ]
    for label, items in kinds:
        for line in items[:show]:
            print(f"{name}: {label}: {line}", file=sys.stderr)
        if len(items) > show:
            print(f"{name}: {label}: ... {len(items) - show} more", file=sys.stderr)
    for line in r.get("worker_crashes", [])[:show]:
        print(f"{name}: worker crash: {line[:300]}", file=sys.stderr)
    if r.get("run_finished") is None and r["status"] == "ran":
        print(f"{name}: no run_finished event (exit {r.get('returncode')})", file=sys.stderr)
    if r.get("unknown_status"):
        print(
            f"{name}: unknown statuses: {dict(list(r['unknown_status'].items())[:5])}",
            file=sys.stderr,
        )
    if r.get("stderr_tail"):
        print(
            f"{name}: Tach exited {r['returncode']}:\n  "
            + r["stderr_tail"].strip()[-1500:].replace("\n", "\n  "),
            file=sys.stderr,
        )


def outcome_table(results: list[dict[str, Any]]) -> str:
    """The agreement table."""
    header = [
        "project",
        "baseline",
        "reported",
        "same",
        "different",
        "missing",
        "extra",
        "flaky",
        "tach s",
        "pytest s",
        "ratio",
        "exit t/p",
        "agreement",
    ]
    keys = ("baseline", "reported", "same", "different", "missing", "extra", "flaky")
    rows = []
    tot = dict.fromkeys(keys, 0)
    tach_s = pytest_s = 0.0
    for r in results:
        if r["status"] != "ran":
            rows.append(
                [
                    r["project"],
                    str(r.get("baseline", "-")),
                    *["-"] * 5,
                    str(r.get("flaky", "-")),
                    "-",
                    "-",
                    "-",
                    "-",
                    "not runnable",
                ]
            )
            continue
        agree = 100.0 * r["same"] / r["baseline"] if r["baseline"] else 100.0
        bad = r["different"] or r["missing"] or r["extra"]
        rows.append(
            [
                r["project"],
                *(str(r[k]) for k in keys),
                f"{r['engine_wall_s']:.2f}",
                f"{r['pytest_wall_s']:.2f}",
                f"{r['ratio']:.2f}" if r["ratio"] else "-",
                f"{r['returncode']}/{','.join(r.get('pytest_exitstatus') or ['?'])}",
                f"{agree:.2f}%" + (" !" if bad else ""),
            ]
        )
        for k in keys:
            tot[k] += r[k]
        tach_s += r["engine_wall_s"]
        pytest_s += r["pytest_wall_s"]
    if sum(r["status"] == "ran" for r in results) > 1:
        agree = 100.0 * tot["same"] / tot["baseline"] if tot["baseline"] else 100.0
        rows.append(
            [
                "TOTAL (ran)",
                *(str(tot[k]) for k in keys),
                f"{tach_s:.2f}",
                f"{pytest_s:.2f}",
                f"{tach_s / pytest_s:.2f}" if pytest_s else "-",
                "",
                f"{agree:.2f}%",
            ]
        )
    return C.table(header, rows)


def list_table(results: list[dict[str, Any]]) -> str:
    """The listing table."""
    header = [
        "project",
        "pytest ids",
        "exact",
        "dynamic",
        "missing",
        "extra",
        "dyn entries",
        "exact %",
        "list s",
    ]
    keys = ("pytest_ids", "exact", "dynamic", "missing", "extra", "dynamic_entries")
    rows = []
    tot = dict.fromkeys(keys, 0)
    for r in results:
        if r["status"] != "ran":
            rows.append([r["project"], *["-"] * 8])
            rows[-1][-1] = "not runnable"
            continue
        rows.append(
            [
                r["project"],
                *(str(r[k]) for k in keys),
                f"{r['exact_share']:.2f}",
                f"{r['list_wall_s']:.2f}",
            ]
        )
        for k in keys:
            tot[k] += r[k]
    if sum(r["status"] == "ran" for r in results) > 1:
        share = 100.0 * tot["exact"] / tot["pytest_ids"] if tot["pytest_ids"] else 100.0
        rows.append(["TOTAL (ran)", *(str(tot[k]) for k in keys), f"{share:.2f}", ""])
    return C.table(header, rows)


def main() -> int:
    """Command line entry point."""
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--corpus", help="a corpus directory or manifest (default: this one)")
    ap.add_argument("--project", action="append", default=[], help="only this (repeatable)")
    ap.add_argument(
        "--engine",
        default=os.environ.get("TACH_COMPAT_ENGINE", DEFAULT_ENGINE),
        help="command template (default: %(default)s)",
    )
    ap.add_argument(
        "--mode",
        "--isolation",
        choices=["none", "module", "test"],
        default="",
        help="Tach's --isolation, filled into {isolation}",
    )
    ap.add_argument("--list", action="store_true", help="compare the static listing instead")
    ap.add_argument("--list-engine", default=DEFAULT_LIST, help="default: %(default)s")
    ap.add_argument("--repeat", type=int, default=1, help="runs of each side; medians shown")
    ap.add_argument(
        "--pytest-timing",
        choices=["baseline", "live"],
        default="baseline",
        help="pytest's wall time: recorded, or timed now between Tach's runs",
    )
    ap.add_argument("--timeout", type=float, default=900, help="seconds per run")
    ap.add_argument("--show", type=int, default=5, help="ids shown per kind of mismatch")
    ap.add_argument("--json-out", help="write every result, with all mismatching ids, here")
    ap.add_argument("--baseline-dir", help="default: baseline/ next to the manifest")
    ap.add_argument(
        "--tach",
        default=str(C.HERE.parent),
        help="Tach checkout for venvs that lack it (default: %(default)s)",
    )
    args = ap.parse_args()
    if args.mode and "{isolation}" not in args.engine:
        ap.error("--mode needs {isolation} in the --engine template")

    manifest = C.load_manifest(args.corpus)
    ctx = Context(args, manifest)
    results = []
    for p in C.select(manifest, args.project):
        print(f"... {p['name']}", file=sys.stderr, flush=True)
        r = ctx.run(p)
        results.append(r)
        if args.list and r["status"] == "ran":
            for label in ("missing_ids", "extra_ids"):
                for nid in r[label][: args.show]:
                    print(f"{p['name']}: {label[:-4]}: {nid}", file=sys.stderr)
                if len(r[label]) > args.show:
                    print(
                        f"{p['name']}: {label[:-4]}: ... {len(r[label]) - args.show} more",
                        file=sys.stderr,
                    )
        else:
            show_mismatches(r, args.show)
    if args.list:
        print(f"listing: {args.list_engine}")
        print(list_table(results))
    else:
        print(f"engine: {args.engine}" + (f"  (isolation {args.mode})" if args.mode else ""))
        print(outcome_table(results))
    if args.json_out:
        doc = {
            "corpus": manifest["_path"],
            "mode": "list" if args.list else "outcomes",
            "engine": args.list_engine if args.list else args.engine,
            "isolation": args.mode or None,
            "results": results,
        }
        Path(args.json_out).write_text(json.dumps(doc, indent=1) + "\n")
    if any(r["status"] != "ran" for r in results):
        return 2
    if any(r.get("different") or r.get("missing") or r.get("extra") for r in results):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
