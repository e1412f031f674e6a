"""Shared helpers of the compatibility harness: the manifest, paths, environments, baselines.

Standard library only: the scripts run with any Python 3.10+, outside every project venv.
The manifest format (``manifest.json``) is the one of the shared real-world corpus, so the
same scripts work on either corpus (``--corpus DIR``).
"""

from __future__ import annotations

import json
import os
import shlex
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
PLUGIN_DIR = HERE / "plugin"
PLUGIN_NAME = "compat_outcomes"
OUTCOMES_ENV = "TACH_COMPAT_OUTCOMES"

Project = dict[str, Any]
Manifest = dict[str, Any]

#: Variables that would change how pytest or Tach behaves if inherited from the caller.
SCRUBBED = (
    "PYTEST_ADDOPTS",
    "PYTEST_PLUGINS",
    "PYTEST_DISABLE_PLUGIN_AUTOLOAD",
    "PYTEST_CURRENT_TEST",
    "PYTHONPATH",
    "PYTHONSTARTUP",
    "PYTHONHOME",
    "PYTHONSAFEPATH",
    "VIRTUAL_ENV",
    "PYTHONDONTWRITEBYTECODE",
    "PYTHONWARNINGS",
    "PY_COLORS",
    "FORCE_COLOR",
    "NO_COLOR",
    "HYPOTHESIS_PROFILE",
    "CI",
    "DJANGO_SETTINGS_MODULE",
)

#: pytest's outcome words <-> Tach's NDJSON statuses.
TO_ENGINE = {
    "passed": "pass",
    "failed": "fail",
    "skipped": "skip",
    "xfailed": "xfail",
    "xpassed": "xpass",
    "error": "error",
}


def load_manifest(corpus: Path | str | None = None) -> Manifest:
    """The manifest of ``corpus`` (a directory or a manifest file; default: this harness)."""
    path = Path(corpus) if corpus else HERE
    if path.is_dir():
        path = path / "manifest.json"
    data = json.loads(path.read_text())
    data["_path"] = str(path.resolve())
    return data


def corpus_dir(manifest: Manifest) -> Path:
    """The directory holding the manifest (and its ``baseline/``)."""
    return Path(manifest["_path"]).parent


def cache_dir(manifest: Manifest) -> Path:
    """Where sdists, sources, venvs and logs live (the manifest names the variable)."""
    var = manifest.get("cache_env", "TACH_COMPAT_CACHE")
    default = manifest.get("cache_default", "~/.cache/tach-compat")
    return Path(os.path.expanduser(os.environ.get(var) or default)).resolve()


def select(manifest: Manifest, names: Sequence[str] = ()) -> list[Project]:
    """The manifest's projects, or only those named (an unknown name is an error)."""
    known = [p["name"] for p in manifest["projects"]]
    unknown = [n for n in names if n not in known]
    if unknown:
        raise SystemExit(f"unknown project(s): {', '.join(unknown)}; known: {', '.join(known)}")
    return [p for p in manifest["projects"] if not names or p["name"] in names]


def paths(manifest: Manifest, project: Project) -> tuple[Path, Path]:
    """(venv, work dir) of a project."""
    cache = cache_dir(manifest)
    venv = cache / "venvs" / project["name"]
    workdir = (cache / "src" / project["unpack_dir"] / project.get("workdir", ".")).resolve()
    return venv, workdir


def run_env(
    project: Project, venv: Path, workdir: Path, extra_pythonpath: Iterable[Path | str] = ()
) -> dict[str, str]:
    """The environment a project's tests run in: ours without :data:`SCRUBBED`, the venv
    first on PATH, and the manifest's variables (relative PYTHONPATH entries are resolved
    against the work dir, after ``extra_pythonpath``)."""
    env = {k: v for k, v in os.environ.items() if k not in SCRUBBED and not k.startswith("TACH_")}
    env["VIRTUAL_ENV"] = str(venv)
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    pythonpath = [str(x) for x in extra_pythonpath]
    for key, value in project.get("env", {}).items():
        if key == "PYTHONPATH":
            pythonpath += [str((workdir / e).resolve()) for e in value.split(os.pathsep) if e]
        else:
            env[key] = value
    if pythonpath:
        env["PYTHONPATH"] = os.pathsep.join(pythonpath)
    return env


def pytest_args(project: Project) -> list[str]:
    """The arguments the project's CI passes to pytest."""
    return list(project.get("pytest_args", []))


def quote_args(args: Iterable[str]) -> str:
    """``args`` as one shell-quoted string."""
    return " ".join(shlex.quote(a) for a in args)


def baseline_dir(manifest: Manifest) -> Path:
    """``baseline/`` next to the manifest."""
    return corpus_dir(manifest) / "baseline"


def write_baseline(path: Path, record: dict[str, Any]) -> None:
    """Write a baseline: indented JSON, except one line per test, so diffs stay readable."""
    lines = ["{"]
    items = list(record.items())
    for i, (key, value) in enumerate(items):
        comma = "," if i < len(items) - 1 else ""
        if key == "tests" and isinstance(value, dict) and value:
            lines.append(f"  {json.dumps(key)}: {{")
            entries = list(value.items())
            for j, (nid, entry) in enumerate(entries):
                c2 = "," if j < len(entries) - 1 else ""
                lines.append(f"    {json.dumps(nid)}: {json.dumps(entry)}{c2}")
            lines.append(f"  }}{comma}")
        else:
            body = json.dumps(value, indent=2).replace("\n", "\n  ")
            lines.append(f"  {json.dumps(key)}: {body}{comma}")
    lines.append("}")
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("\n".join(lines) + "\n")
    os.replace(tmp, path)


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A plain aligned text table (first column left-aligned, the others right-aligned)."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    out = []
    for row in [header, *rows]:
        cells = [
            str(c).ljust(w) if i == 0 else str(c).rjust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        out.append("  ".join(cells).rstrip())
    return "\n".join(out)
