"""``--changed-since`` on the real-world corpus: is the selection a superset of the tests whose
outcome a change alters, and how much smaller and faster is it?

For every project of the corpus manifest (``/work/shared/realworld``, or ``$TACH_REALWORLD``),
in a copy of its work dir made a git repository, with the copy's own sources first on
``PYTHONPATH`` (``src/`` where there is one) so that the tests import what is edited:

1. a full ``tach --format=json`` of the clean tree (the baseline outcomes);
2. for each module picked (``--modules`` of them: the project modules the selection of
   ``--changed-since`` would make smallest, median and largest short of every test file;
   modules pytest itself imports are left out, since breaking them breaks the runner), it is
   broken (``raise RuntimeError`` appended: every test that imports it, however, fails), then
   ``tach --changed-since HEAD`` and a full ``tach`` run on the broken tree;
3. the tests whose outcome differs between the baseline and the broken full run must all be
   in the selection (a test whose module no longer imports: that module's collection error),
   with the full run's outcomes.

Reported per module: the selection (the tests static discovery expects and the test files,
of all, as ``run_start`` says), the tests the break altered, whether the selection holds them
all, and the wall times of the selected run and of the full run.

Run: ``python -m tach.bench.changed_agreement [--project NAME] [--modules 3]`` or
``tach-bench changed``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tach.bench.shard_agreement import CORPUS, ROOT, corpus_copy, outcomes

GIT_ENV = {
    "GIT_AUTHOR_NAME": "bench",
    "GIT_AUTHOR_EMAIL": "bench@localhost",
    "GIT_COMMITTER_NAME": "bench",
    "GIT_COMMITTER_EMAIL": "bench@localhost",
}
BREAK = '\nraise RuntimeError("broken by tach-bench changed")\n'


def git(workdir: Path, *args: str) -> None:
    subprocess.run(
        ["git", *args], cwd=workdir, env={**os.environ, **GIT_ENV}, check=True, capture_output=True
    )


def candidates(python: str, workdir: Path, env: dict[str, str], args: list[str]) -> list[Any]:
    """``(selected test files, module)`` for each project module pytest does not import
    itself, by what ``--changed-since`` would select (asked of Tach's own code in the
    project's interpreter)."""
    script = """
import json, sys
from pathlib import Path
import pytest
from tach.changed import GitChange, select
from tach.discovery.ini import split_pytest_args
from tach.runner import discover_for_run
from tach.graph import ImportGraph

import contextlib, io, os, tempfile
root = Path.cwd()
with tempfile.TemporaryDirectory() as empty, contextlib.redirect_stdout(io.StringIO()):
    os.chdir(empty)  # a session with the plugins and no tests: what pytest imports itself
    pytest.main(["-q", "-p", "no:cacheprovider", empty])
    os.chdir(root)
runner = {Path(m.__file__).resolve() for m in list(sys.modules.values())
          if getattr(m, "__file__", None)}
found = discover_for_run(split_pytest_args(sys.argv[1:]), root)
graph = ImportGraph(Path(found.result.rootdir), found.result.imports)
tests = graph.test_modules()
rows = []
for path in sorted(root.rglob("*.py")):
    path = path.resolve()
    if path in tests or path in runner or path.name == "conftest.py" or "tests" in path.parts:
        continue
    if any(part.startswith(".") for part in path.relative_to(root).parts):
        continue
    selection = select(GitChange("HEAD", "", True, [path]), graph, tests)
    if not selection.all and selection.files:
        rows.append([len(selection.files), str(path.relative_to(root))])
print(json.dumps([len(tests), rows]))
"""
    done = subprocess.run(
        [python, "-c", script, *args], cwd=workdir, env=env, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-3000:])
    return json.loads(done.stdout.splitlines()[-1])


def pick(rows: list[list[Any]], count: int) -> list[list[Any]]:
    """The smallest, median and largest selections (``count`` spread over them)."""
    rows = sorted(rows)
    if len(rows) <= count:
        return rows
    step = (len(rows) - 1) / max(count - 1, 1)
    return [rows[round(i * step)] for i in range(count)]


def check_project(
    python: str, workdir: Path, env: dict[str, str], args: list[str], modules: int
) -> dict[str, Any]:
    """Steps 1-3 of the module's docstring in ``workdir``; a row per module broken."""

    def tach_run(*words: str) -> tuple[dict[str, str], dict[str, Any], float]:
        started = time.perf_counter()
        run = subprocess.run(
            [python, "-m", "tach", "--format=json", "-q", *words, *args],
            cwd=workdir,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        seconds = time.perf_counter() - started
        start = next((json.loads(line) for line in run.stdout.splitlines()[:1]), {})
        return outcomes(run.stdout), start, seconds

    git(workdir, "init", "-q")
    git(workdir, "add", "-A")
    git(workdir, "commit", "-q", "-m", "corpus")
    test_files, every = candidates(python, workdir, env, args)
    # a module whose change selects every test file checks nothing of the selection
    rows = [row for row in every if row[0] < test_files]
    if not rows:
        return {"modules": len(every), "test_files": test_files, "rows": []}
    baseline, _, baseline_s = tach_run()
    results = []
    for _, module in pick(rows, modules):
        path = workdir / module
        original = path.read_text()
        path.write_text(original + BREAK)
        try:
            selected, start, selected_s = tach_run("--changed-since", "HEAD")
            full, _, full_s = tach_run()
        finally:
            path.write_text(original)
        altered = {
            test for test in set(baseline) | set(full) if baseline.get(test) != full.get(test)
        }
        # a test of a module that no longer imports is its module's collection error
        missed = sorted(t for t in altered - set(selected) if t.split("::")[0] not in selected)
        selection = start.get("changed_since") or {}
        results.append(
            {
                "module": module,
                "selected_tests": selection.get("tests"),
                "of_tests": selection.get("of_tests"),
                "outcomes": len(selected),
                "selected_files": selection.get("modules"),
                "of_files": selection.get("of_modules", test_files),
                "altered": len(altered),
                "superset": not missed,
                "missed": missed[:10],
                "same_outcomes": all(full.get(t) == s for t, s in selected.items()),
                "everything": selection.get("everything") or {},
                "selected_s": round(selected_s, 2),
                "full_s": round(full_s, 2),
            }
        )
    return {
        "modules": len(every),
        "test_files": test_files,
        "baseline_tests": len(baseline),
        "baseline_s": round(baseline_s, 2),
        "rows": results,
    }


def main(argv: list[str] | None = None) -> int:
    """Check every (chosen) project; print a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--realworld", default=str(CORPUS))
    parser.add_argument("--project", action="append", default=[])
    parser.add_argument("--modules", type=int, default=3, help="modules broken per project")
    parser.add_argument("--json-out", default=None)
    ns = parser.parse_args(argv)
    sys.path.insert(0, ns.realworld)
    import _common as corpus  # the corpus's own helpers: paths and environment

    manifest = corpus.load_manifest()
    results: dict[str, Any] = {}
    ok = True
    print(
        "| project | module broken | selected tests | test files | tests altered "
        "| superset | same outcomes | selected s | full s |"
    )
    print("| --- | --- | ---: | ---: | ---: | --- | --- | ---: | ---: |")
    for project in corpus.select(manifest, "all", ns.project):
        venv, workdir = corpus.paths(manifest, project)
        with corpus_copy(workdir, "tach-changed-") as copy:
            sources = copy / "src" if (copy / "src").is_dir() else copy
            env = corpus.run_env(project, venv, copy, extra_pythonpath=[sources, ROOT])
            env = {k: v for k, v in env.items() if not k.startswith("TACH_")}
            python = str(venv / "bin" / "python")
            result = check_project(python, copy, env, corpus.pytest_args(project), ns.modules)
        results[project["name"]] = result
        if not result["rows"]:
            print(
                f"| {project['name']} | each of its {result['modules']} modules pytest does not "
                f"import itself selects all {result['test_files']} test modules | | | | | | |"
            )
        for row in result["rows"]:
            ok = ok and row["superset"] and row["same_outcomes"]
            print(
                f"| {project['name']} | {row['module']} "
                f"| {row['selected_tests']} / {row['of_tests']} "
                f"| {row['selected_files']} / {row['of_files']} | {row['altered']} "
                f"| {row['superset']} | {row['same_outcomes']} | {row['selected_s']} "
                f"| {row['full_s']} |"
            )
            if row["everything"]:
                sys.stderr.write(f"{project['name']}: every test ran: {row['everything']}\n")
            if row["missed"]:
                sys.stderr.write(f"{project['name']}: not selected: {row['missed']}\n")
        sys.stdout.flush()
    if ns.json_out:
        Path(ns.json_out).write_text(json.dumps(results, indent=2))
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
