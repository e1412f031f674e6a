#!/usr/bin/env python3
"""Wall times of pytest, pytest-xdist and Tach side by side on corpus projects.

    python3 compat/timing.py [--project NAME ...] [--repeat 3] [--command LABEL=TEMPLATE ...]
                             [--timeout 900] [--corpus DIR]

For each selected project, in its work dir, with its venv, its manifest environment and its
services running (one PostgreSQL cluster for all of a project's runs), the commands run in
turn, round after round (``--repeat`` rounds: each round runs every command once, so that a
change in the machine's load falls on all of them alike), and the table gives each command's
median wall time and its ratio to the first command's. The default commands::

    pytest      {python} -m pytest -q -p no:cacheprovider {args}
    pytest -n 2 {xdist} {python} -m pytest -q -p no:cacheprovider -n 2 {args}
    tach module {python} -m tach -q --isolation module {args}
    tach none   {python} -m tach -q --isolation none {args}

``--command LABEL=TEMPLATE`` (repeatable) replaces them; placeholders as in ``compare.py``,
and ``{xdist}``: a prefix that puts pytest-xdist on PYTHONPATH (installed once per Python
version under ``$TACH_COMPAT_CACHE/xdist/``, never into the project's venv, where it would
change what the other commands do). Exit statuses are shown too: a run that fails where the
others pass is not a fair timing.
"""

from __future__ import annotations

import argparse
import shlex
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import corpus as C

DEFAULT_COMMANDS = (
    ("pytest", "{python} -m pytest -q -p no:cacheprovider {args}"),
    ("pytest -n 2", "{xdist} {python} -m pytest -q -p no:cacheprovider -n 2 {args}"),
    ("tach module", "{python} -m tach -q --isolation module {args}"),
    ("tach none", "{python} -m tach -q --isolation none {args}"),
)


#: pytest-xdist for ``-n 2``, installed beside the venvs, not into them: a plugin in a
#: project's venv would change what its other runs do.
XDIST = "pytest-xdist==3.8.0"


def xdist_dir(venv: Path, cache: Path) -> Path:
    """A directory holding pytest-xdist for ``venv``'s Python (installed there when missing),
    to put on PYTHONPATH for the commands that use ``-n``."""
    target = cache / "xdist" / f"py{C.venv_python_version(venv)}"
    if not (target / "xdist").is_dir():
        subprocess.run(
            [
                str(venv / "bin" / "python"),
                "-m",
                "pip",
                "install",
                "-q",
                "--target",
                str(target),
                XDIST,
            ],
            check=True,
            capture_output=True,
        )
    return target


def main() -> int:
    """Command line entry point."""
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--project", action="append", default=[], help="only this (repeatable)")
    ap.add_argument("--repeat", type=int, default=3, help="rounds (default: %(default)s)")
    ap.add_argument("--command", action="append", default=[], help="LABEL=TEMPLATE")
    ap.add_argument("--timeout", type=float, default=900.0, help="seconds per run")
    ap.add_argument("--corpus", default=None, help="another corpus's directory")
    args = ap.parse_args()

    commands = [tuple(c.split("=", 1)) for c in args.command] or list(DEFAULT_COMMANDS)
    manifest = C.load_manifest(args.corpus)
    rows = []
    for project in C.select(manifest, args.project):
        venv, workdir = C.paths(manifest, project)
        C.install_files(manifest, project, workdir)
        xdist = ""
        if any("{xdist}" in template for _, template in commands):
            where = xdist_dir(venv, C.cache_dir(manifest))
            xdist = f'env PYTHONPATH={shlex.quote(str(where))}"${{PYTHONPATH:+:$PYTHONPATH}}"'
        times: dict[str, list[float]] = {label: [] for label, _ in commands}
        statuses: dict[str, set[str]] = {label: set() for label, _ in commands}
        with C.services(project) as running:
            env = C.run_env(project, venv, workdir, service_env=running.env)
            for round_ in range(args.repeat):
                for label, template in commands:
                    command = C.render(template, project, venv, workdir, "", xdist=xdist)
                    run = C.run_shell(command, workdir, env, args.timeout)
                    times[label].append(run["wall"])
                    statuses[label].add(str(run["rc"]))
                    print(
                        f"... {project['name']} round {round_ + 1}: {label} "
                        f"{run['wall']:.2f} s (exit {run['rc']})",
                        file=sys.stderr,
                    )
        first = statistics.median(times[commands[0][0]])
        for label, _ in commands:
            median = statistics.median(times[label])
            rows.append(
                [
                    project["name"],
                    label,
                    " ".join(f"{t:.2f}" for t in times[label]),
                    f"{median:.2f}",
                    f"{median / first:.2f}",
                    ",".join(sorted(statuses[label])),
                ]
            )
    print(C.table(["project", "command", "runs s", "median s", "ratio", "exit"], rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
