"""``--shard k/4`` on the real-world corpus: the shards together against the unsharded run.

For every project of the corpus manifest (``/work/shared/realworld``, or ``$TACH_REALWORLD``:
its venvs and work dirs, set up by its ``setup.sh``), in a copy of its work dir (so that the
corpus's ``.tach/`` is left alone), with Tach from the tree this module belongs to first on
``PYTHONPATH``:

1. an unsharded ``tach --format=json`` (which records ``.tach/durations.json``);
2. ``tach durations --export durations.json``;
3. ``tach --shard k/4 --durations-file durations.json`` for k = 1..4, then again (unless
   ``--once``) to check that the same inputs give the same shards;
4. ``tach merge`` of the four streams (``--merge-repeat`` times, timed).

Reported per project: the tests, whether the union of the shards' outcomes equals the
unsharded run's id for id (and how many ids ran in two shards), whether the second round
gave the same shards, each shard's recorded test time (the exported durations of its tests)
against the ideal (the sum over 4), the heaviest module's against the ideal (the target of
at most 1.15 applies where no module exceeds the ideal: a shard runs whole modules), the wall
times, and the merge's exit code (against the unsharded run's) and median wall time.

Run: ``python -m tach.bench.shard_agreement [--project NAME] [--once] [--json-out FILE]`` or
``tach-bench shards``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import tach

#: The directory holding the ``tach`` package in use: put on the projects' ``PYTHONPATH``.
ROOT = Path(tach.__file__).resolve().parent.parent
CORPUS = Path(os.environ.get("TACH_REALWORLD", "/work/shared/realworld"))
SHARDS = 4


def outcomes(stdout: str) -> dict[str, str]:
    """Status per test id (``collect_error`` per failed collector) of an NDJSON stream."""
    found = {}
    for line in stdout.splitlines():
        if line.startswith("{"):
            event = json.loads(line)
            if event["event"] == "test_finished":
                found[event["id"]] = event["status"]
            elif event["event"] == "collect_error":
                found[event["id"]] = "collect_error"
    return found


@contextlib.contextmanager
def corpus_copy(workdir: Path, prefix: str) -> Iterator[Path]:
    """A throwaway copy of a project's work dir, without the caches earlier runs left (the
    corpus's own ``.tach/`` is left alone)."""
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        copy = Path(tmp) / workdir.name
        shutil.copytree(
            workdir,
            copy,
            symlinks=True,
            ignore=shutil.ignore_patterns(".tach", "__pycache__", ".pytest_cache"),
        )
        yield copy


def check_project(
    python: str, workdir: Path, env: dict[str, str], args: list[str], once: bool, repeat: int
) -> dict[str, Any]:
    """Steps 1-4 of the module's docstring in ``workdir``; what they showed."""

    def tach_run(*words: str) -> tuple[subprocess.CompletedProcess[str], float]:
        started = time.perf_counter()
        run = subprocess.run(
            [python, "-m", "tach", *words],
            cwd=workdir,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        return run, time.perf_counter() - started

    whole, whole_s = tach_run("--format=json", "-q", *args)
    exported, _ = tach_run("durations", "--export", "durations.json")
    if exported.returncode != 0:
        return {"error": exported.stderr[-2000:]}
    durations = json.loads((workdir / "durations.json").read_text())
    expected = outcomes(whole.stdout)
    rounds: list[list[dict[str, str]]] = []
    walls: list[float] = []
    exits: list[int] = []
    for round_ in range(1 if once else 2):
        shards = []
        for k in range(1, SHARDS + 1):
            sharding = [f"--shard={k}/{SHARDS}", "--durations-file", "durations.json"]
            run, seconds = tach_run("--format=json", "-q", *sharding, *args)
            if round_ == 0:
                (workdir / f"shard{k}.ndjson").write_text(run.stdout)
                walls.append(round(seconds, 2))
                exits.append(run.returncode)
            shards.append(outcomes(run.stdout))
        rounds.append(shards)
    union: dict[str, str] = {}
    twice = 0
    for found in rounds[0]:
        twice += len(set(found) & set(union))
        union.update(found)
    streams = [f"shard{k}.ndjson" for k in range(1, SHARDS + 1)]
    merges = [tach_run("merge", "-q", *streams, "--junit-xml", "m.xml", "--json", "m.ndjson")]
    merges += [tach_run("merge", "-q", *streams, "--junit-xml", "m.xml") for _ in range(repeat - 1)]
    total = sum(durations.get(i, 0.0) for i in expected)
    ideal = total / SHARDS or 1.0
    loads = [sum(durations.get(i, 0.0) for i in found) for found in rounds[0]]
    modules: dict[str, float] = {}
    for test_id in expected:
        module = test_id.split("::")[0]
        modules[module] = modules.get(module, 0.0) + durations.get(test_id, 0.0)
    return {
        "tests": len(expected),
        "union_equal": union == expected,
        "differing": sorted(
            set(union) ^ set(expected) | {i for i in union if union[i] != expected.get(i)}
        )[:10],
        "in_two_shards": twice,
        "same_shards_again": None if once else rounds[0] == rounds[1],
        "recorded_s": round(total, 3),
        "shard_s": [round(load, 3) for load in loads],
        "longest_over_ideal": round(max(loads) / ideal, 3),
        "heaviest_module_over_ideal": round(max(modules.values(), default=0.0) / ideal, 3),
        "whole_exit": whole.returncode,
        "shard_exits": exits,
        "merge_exit": merges[0][0].returncode,
        "whole_wall_s": round(whole_s, 2),
        "shard_walls_s": walls,
        "merge_median_s": round(statistics.median(s for _, s in merges), 3),
    }


def main(argv: list[str] | None = None) -> int:
    """Check every (chosen) project; print a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--realworld", default=str(CORPUS))
    parser.add_argument("--project", action="append", default=[])
    parser.add_argument("--once", action="store_true", help="one round of shards, not two")
    parser.add_argument("--merge-repeat", type=int, default=5)
    parser.add_argument("--json-out", default=None)
    ns = parser.parse_args(argv)
    sys.path.insert(0, ns.realworld)
    import _common as corpus  # the corpus's own helpers: paths and environment

    manifest = corpus.load_manifest()
    results: dict[str, dict[str, Any]] = {}
    ok = True
    print(
        "| project | tests | union = unsharded | same shards again | longest / ideal "
        "| heaviest module / ideal | whole s | shards s | merge exit | merge s |"
    )
    print("| --- | ---: | --- | --- | ---: | ---: | ---: | --- | --- | ---: |")
    for project in corpus.select(manifest, "all", ns.project):
        venv, workdir = corpus.paths(manifest, project)
        with corpus_copy(workdir, "tach-shards-") as copy:
            env = corpus.run_env(project, venv, copy, extra_pythonpath=[ROOT])
            env = {k: v for k, v in env.items() if not k.startswith("TACH_")}
            python = str(venv / "bin" / "python")
            result = check_project(
                python, copy, env, corpus.pytest_args(project), ns.once, ns.merge_repeat
            )
        results[project["name"]] = result
        if "error" in result:
            ok = False
            print(f"| {project['name']} | could not export durations |")
            sys.stderr.write(result["error"])
            continue
        right = (
            result["union_equal"]
            and result["same_shards_again"] is not False
            and result["merge_exit"] == result["whole_exit"]
        )
        ok = ok and right
        print(
            f"| {project['name']} | {result['tests']} | {result['union_equal']} "
            f"| {result['same_shards_again']} | {result['longest_over_ideal']} "
            f"| {result['heaviest_module_over_ideal']} | {result['whole_wall_s']} "
            f"| {' / '.join(map(str, result['shard_walls_s']))} "
            f"| {result['merge_exit']} (whole {result['whole_exit']}) "
            f"| {result['merge_median_s']} |"
        )
    if ns.json_out:
        Path(ns.json_out).write_text(json.dumps(results, indent=2))
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
