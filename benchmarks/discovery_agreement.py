"""Static discovery vs pytest's own ids on the real-world corpus (``/work/shared/realworld``).

For every project of the corpus manifest, run :func:`tach.discovery.discover` in the project's
work dir with its pytest arguments (and the project venv's site-packages for plugins) and
compare with pytest's ``--collect-only -q`` ids recorded in ``baseline/<name>.json``:

* equal   -- pytest ids that static discovery names exactly (non-dynamic record);
* dynamic -- pytest ids covered by a dynamic record (the reasons are listed);
* missing -- pytest ids static discovery neither names nor covers (must be 0);
* extra   -- non-dynamic static ids pytest does not have (must be 0).

Run: ``python -m tach.bench.discovery_agreement [--project NAME] [--json] [--show N]``.

``--live`` runs ``pytest --collect-only -q`` in the project's venv now instead of reading the
baseline, and ``--args "..."`` adds pytest arguments to both sides (implies ``--live``), e.g.
``--args "--doctest-modules more_itertools tests"``. ``--quick`` discovers as ``tach list``
and ``tach list -q`` do (pytest's own fixtures not read, closures not built) instead of as
``tach --format=json list`` does.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tach.discovery.model import TestDef
from tach.listing import discover_tests as discover

CORPUS = Path(os.environ.get("TACH_REALWORLD", "/work/shared/realworld"))


def _cache_dir(manifest: dict[str, Any]) -> Path:
    env = manifest.get("cache_env", "REALWORLD_CACHE")
    return Path(os.environ.get(env) or os.path.expanduser(manifest.get(
        "cache_default", "~/.cache/tach-realworld")))


def compare(static: list[TestDef], pytest_ids: Sequence[str]) -> dict[str, Any]:
    """Classify ids into equal / dynamic / missing / extra."""
    exact = {t.id for t in static if not t.dynamic}
    dyn = [t for t in static if t.dynamic]
    # index dynamic records by id prefix for speed
    by_prefix: dict[str, list[TestDef]] = collections.defaultdict(list)
    for t in dyn:
        by_prefix[t.id.split("::")[0] if "::" in t.id else t.id].append(t)
    equal = dynamic = 0
    missing: list[str] = []
    reasons: collections.Counter[str] = collections.Counter()
    pytest_set = set(pytest_ids)
    for pid in pytest_ids:
        if pid in exact:
            equal += 1
            continue
        cands = by_prefix.get(pid.split("::")[0], []) + [
            t for t in dyn if t.id == "" or t.id.endswith("/")]
        hit = next((t for t in cands if t.covers(pid)), None)
        if hit is not None:
            dynamic += 1
            reasons[_reason_kind(hit.dynamic or "")] += 1
        else:
            missing.append(pid)
    extra = sorted(exact - pytest_set)
    return {"pytest": len(pytest_ids), "static": len(static), "equal": equal,
            "dynamic": dynamic, "missing": len(missing), "extra": len(extra),
            "reasons": dict(reasons.most_common()), "missing_ids": missing,
            "extra_ids": extra}


def _reason_kind(reason: str) -> str:
    # strip line numbers so that reasons group
    import re

    return re.sub(r"(line \d+|:\d+)", "", reason)


def live_ids(python: Path, args: Sequence[str], cwd: Path, env: dict[str, str]) -> list[str]:
    """``python -m pytest --collect-only -q ARGS`` run now: the node ids it prints."""
    import subprocess

    proc = subprocess.run(
        [str(python), "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *args],
        cwd=cwd, capture_output=True, text=True, check=False, env={**os.environ, **env})
    ids = []
    for line in proc.stdout.splitlines():
        if not line.strip():
            break
        if "::" in line:
            ids.append(line.strip())
    return ids


def run(project: dict[str, Any], manifest: dict[str, Any], extra: Sequence[str] = (),
        live: bool = False, quick: bool = False) -> dict[str, Any]:
    """Compare one project (``extra``: pytest arguments added to both sides)."""
    cache = _cache_dir(manifest)
    src = cache / "src" / project["unpack_dir"] / project.get("workdir", ".")
    venv = cache / "venvs" / project["name"]
    sp = sorted(venv.glob("lib/python3*/site-packages"))
    args = [*project.get("pytest_args", []), *extra]
    if live or extra:
        ids = live_ids(venv / "bin" / "python", args, src, project.get("env", {}))
    else:
        baseline = json.loads((CORPUS / "baseline" / f"{project['name']}.json").read_text())
        ids = list(baseline["tests"])
    t0 = time.perf_counter()
    d = discover(args, invocation_dir=src.resolve(), site_packages=sp, use_cache=False,
                 with_plugins=not quick, closures=not quick)
    elapsed = time.perf_counter() - t0
    out = compare(d.result.tests, ids)
    out["name"] = project["name"]
    out["seconds"] = round(elapsed, 3)
    out["errors"] = [str(e) for e in d.result.errors]
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Print the agreement table; exit 1 when any project has missing or extra ids."""
    ap = argparse.ArgumentParser(prog="discovery_agreement", description=__doc__.split("\n")[0])
    ap.add_argument("--project", action="append", help="only these projects")
    ap.add_argument("--json", action="store_true", help="print JSON")
    ap.add_argument("--show", type=int, default=10, help="show up to N missing/extra ids")
    ap.add_argument("--live", action="store_true", help="run pytest now, not the baseline")
    ap.add_argument("--args", default="", help="pytest arguments added on both sides")
    ap.add_argument("--quick", action="store_true", help="discover as `tach list -q` does")
    args = ap.parse_args(argv)
    import shlex

    extra = shlex.split(args.args)
    manifest = json.loads((CORPUS / "manifest.json").read_text())
    rows = []
    for project in manifest["projects"]:
        if args.project and project["name"] not in args.project:
            continue
        rows.append(run(project, manifest, extra, args.live, args.quick))
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        print(f"{'project':16} {'pytest':>7} {'equal':>7} {'dynamic':>7} {'missing':>7} "
              f"{'extra':>6} {'exact %':>7} {'static s':>8}")
        for r in rows:
            share = 100.0 * r["equal"] / r["pytest"] if r["pytest"] else 100.0
            print(f"{r['name']:16} {r['pytest']:7} {r['equal']:7} {r['dynamic']:7} "
                  f"{r['missing']:7} {r['extra']:6} {share:7.1f} {r['seconds']:8}")
        for r in rows:
            for reason, n in r["reasons"].items():
                print(f"  {r['name']}: dynamic {n}: {reason}")
            for e in r["errors"]:
                print(f"  {r['name']}: error: {e}")
            for i in r["missing_ids"][: args.show]:
                print(f"  {r['name']}: missing {i}", file=sys.stderr)
            for i in r["extra_ids"][: args.show]:
                print(f"  {r['name']}: extra {i}", file=sys.stderr)
    return 0 if all(r["missing"] == 0 and r["extra"] == 0 for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
