"""Tach's JUnit XML against pytest's ``--junitxml`` on the real-world corpus.

For every project of the corpus manifest (``/work/shared/realworld``, or ``$TACH_REALWORLD``:
its venvs and work dirs, set up by its ``setup.sh``), run pytest with ``--junitxml`` and Tach
with ``--junit-xml`` in the project's venv — Tach from the tree this module belongs to, put
first on ``PYTHONPATH`` — and compare the testcases as CI reads them, by (classname, name):

* same      -- testcases pytest lists that Tach lists with the same outcome elements
  (``failure``, ``error``, ``skipped`` with its type; none: passed);
* different -- listed by both with other outcome elements;
* missing / extra -- listed by only one of them.

Ids the corpus baseline records as flaky are left out (and counted). Exit 0 when every project
agrees on every testcase. :func:`compare` is also what the test suite uses on small projects.

Run: ``python -m tach.bench.junit_agreement [--project NAME] [--json-out FILE] [--show N]``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path
from typing import Any

import tach
from tach.reporter.junit import mangle_test_address

#: The directory holding the ``tach`` package in use: put on the projects' ``PYTHONPATH``.
ROOT = Path(tach.__file__).resolve().parent.parent
CORPUS = Path(os.environ.get("TACH_REALWORLD", "/work/shared/realworld"))

#: Elements that say what happened to a testcase (no element: it passed).
OUTCOME_TAGS = ("failure", "error", "skipped")


def testcases(path: Path) -> Counter[tuple[str, str, str]]:
    """(classname, name, outcome) of every testcase; outcome is the tags of its outcome
    elements (``skipped:pytest.xfail`` for an xfail) joined by ``+``, or ``passed``."""
    root = ET.parse(path).getroot()
    found: Counter[tuple[str, str, str]] = Counter()
    for case in root.iter("testcase"):
        outcome = "+".join(
            sorted(
                f"{child.tag}:{child.get('type')}" if child.get("type") else child.tag
                for child in case
                if child.tag in OUTCOME_TAGS
            )
        )
        found[(case.get("classname", ""), case.get("name", ""), outcome or "passed")] += 1
    return found


def compare(ours: Path, theirs: Path, ignore: set[tuple[str, str]] = frozenset()) -> dict:
    """How two JUnit files agree: testcases (classname, name) in both with the same outcome
    elements, and the lists of those that differ, are missing or extra."""
    a = {k: v for k, v in testcases(ours).items() if k[:2] not in ignore}
    b = {k: v for k, v in testcases(theirs).items() if k[:2] not in ignore}
    by_name_a: dict[tuple[str, str], Counter[str]] = {}
    by_name_b: dict[tuple[str, str], Counter[str]] = {}
    for (cls, name, outcome), n in a.items():
        by_name_a.setdefault((cls, name), Counter())[outcome] += n
    for (cls, name, outcome), n in b.items():
        by_name_b.setdefault((cls, name), Counter())[outcome] += n
    same = [k for k in by_name_b if by_name_a.get(k) == by_name_b[k]]
    different = {
        k: (dict(by_name_a[k]), dict(by_name_b[k]))
        for k in by_name_b
        if k in by_name_a and by_name_a[k] != by_name_b[k]
    }
    return {
        "theirs": len(by_name_b),
        "ours": len(by_name_a),
        "same": len(same),
        "different": different,
        "missing": sorted(k for k in by_name_b if k not in by_name_a),
        "extra": sorted(k for k in by_name_a if k not in by_name_b),
    }


def main(argv: list[str] | None = None) -> int:
    """Compare on every (chosen) project; print a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--realworld", default=str(CORPUS))
    parser.add_argument("--project", action="append", default=[])
    parser.add_argument("--json-out", default=None)
    parser.add_argument("--show", type=int, default=5, help="differences shown per project")
    ns = parser.parse_args(argv)
    sys.path.insert(0, ns.realworld)
    import _common as corpus  # the corpus's own helpers: paths and environment

    manifest = corpus.load_manifest()
    results = {}
    ok = True
    print("| project | pytest testcases | same outcome | different | missing | extra | flaky |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for project in corpus.select(manifest, "all", ns.project):
        venv, workdir = corpus.paths(manifest, project)
        env = corpus.run_env(project, venv, workdir, extra_pythonpath=[ROOT])
        env = {k: v for k, v in env.items() if not k.startswith("TACH_")}
        python = str(venv / "bin" / "python")
        args = corpus.pytest_args(project)
        with tempfile.TemporaryDirectory(prefix="tach-junit-") as tmp:
            theirs, ours = Path(tmp) / "pytest.xml", Path(tmp) / "tach.xml"
            started = time.perf_counter()
            subprocess.run(
                [python, "-m", "pytest", "-p", "no:cacheprovider", f"--junitxml={theirs}", *args],
                cwd=workdir, env=env, capture_output=True, check=False,
            )
            pytest_s = time.perf_counter() - started
            started = time.perf_counter()
            run = subprocess.run(
                [python, "-m", "tach", "-q", f"--junit-xml={ours}", *args],
                cwd=workdir, env=env, capture_output=True, text=True, check=False,
            )
            tach_s = time.perf_counter() - started
            if not ours.is_file():
                print(f"| {project['name']} | Tach wrote no file (exit {run.returncode}) |")
                sys.stderr.write(run.stderr[-3000:])
                ok = False
                continue
            flaky = _flaky_names(corpus, project)
            agreement = compare(ours, theirs, ignore=flaky)
        agreement["flaky_ignored"] = len(flaky)
        agreement["pytest_s"], agreement["tach_s"] = round(pytest_s, 2), round(tach_s, 2)
        results[project["name"]] = agreement
        bad = agreement["different"] or agreement["missing"] or agreement["extra"]
        ok = ok and not bad
        print(
            f"| {project['name']} | {agreement['theirs']} | {agreement['same']} "
            f"| {len(agreement['different'])} | {len(agreement['missing'])} "
            f"| {len(agreement['extra'])} | {len(flaky)} |"
        )
        for key, (mine, pytests) in list(agreement["different"].items())[: ns.show]:
            sys.stderr.write(f"  {project['name']}: {key}: tach {mine} pytest {pytests}\n")
        for label in ("missing", "extra"):
            for key in agreement[label][: ns.show]:
                sys.stderr.write(f"  {project['name']}: {label}: {key}\n")
    if ns.json_out:
        serialisable = {
            name: {**r, "different": {" :: ".join(k): v for k, v in r["different"].items()}}
            for name, r in results.items()
        }
        Path(ns.json_out).write_text(json.dumps(serialisable, indent=2, default=list))
    return 0 if ok else 1


def _flaky_names(corpus: Any, project: dict[str, Any]) -> set[tuple[str, str]]:
    """(classname, name) of the ids the baseline saw with different outcomes across runs."""
    path = corpus.baseline_path(project["name"])
    if not path.is_file():
        return set()
    flaky = json.loads(path.read_text()).get("flaky") or []
    names = set()
    for nodeid in flaky:
        parts = mangle_test_address(nodeid)
        names.add((".".join(parts[:-1]), parts[-1]))
    return names


if __name__ == "__main__":
    sys.exit(main())
