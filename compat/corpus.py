"""Shared helpers of the compatibility harness: the manifest, paths, environments, baselines.

Standard library only: the scripts run with any Python 3.10+, outside every project venv.
The manifest format (``manifest.json``) is the one of the shared real-world corpus, so the
same scripts work on either corpus (``--corpus DIR``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
#: The Tach checkout this harness belongs to (its ``tests/postgres.py`` runs PostgreSQL).
REPO_ROOT = HERE.parent
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


def venv_owner(manifest: Manifest, project: Project) -> Project | None:
    """The project whose venv ``project`` shares (manifest key ``venv``), or None.

    Such a project has no venv of its own: it names another project of the manifest, which
    must have the same sdist and unpack dir and a venv of its own."""
    name = project.get("venv")
    if not name or name == project["name"]:
        return None
    owner = next((p for p in manifest["projects"] if p["name"] == name), None)
    if owner is None or owner.get("venv", name) != name:
        raise SystemExit(f"{project['name']}: venv {name!r} is not a project with its own venv")
    for key in ("sdist", "sdist_sha256", "unpack_dir"):
        if owner.get(key) != project.get(key):
            raise SystemExit(
                f"{project['name']}: {key} differs from {name}'s, whose venv it shares"
            )
    return owner


def paths(manifest: Manifest, project: Project) -> tuple[Path, Path]:
    """(venv, work dir) of a project (the venv is another project's with key ``venv``)."""
    cache = cache_dir(manifest)
    venv = cache / "venvs" / project.get("venv", project["name"])
    workdir = (cache / "src" / project["unpack_dir"] / project.get("workdir", ".")).resolve()
    return venv, workdir


def files_dir(manifest: Manifest, project: Project) -> Path:
    """Where the sources of a project's ``files`` are: ``files/NAME/`` next to the manifest."""
    return corpus_dir(manifest) / "files" / project["name"]


def install_files(manifest: Manifest, project: Project, workdir: Path) -> list[Path]:
    """Copy the project's ``files`` (paths relative to the work dir) from :func:`files_dir`
    into the work dir; a file already there with the same content is left alone. Returns the
    files written. Raises OSError when a source is missing or a copy fails."""
    written = []
    for rel in project.get("files", []):
        if Path(rel).is_absolute() or ".." in Path(rel).parts:
            raise SystemExit(f"{project['name']}: files entry {rel!r} leaves the work dir")
        data = (files_dir(manifest, project) / rel).read_bytes()
        dest = workdir / rel
        if dest.is_file() and dest.read_bytes() == data:
            continue
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(dest.name + ".compat-tmp")
        tmp.write_bytes(data)
        os.replace(tmp, dest)
        written.append(dest)
    return written


# ---------------------------------------------------------------------------------------
# services: servers a project's tests need, started for the duration of its runs

#: The services a manifest may name in a project's ``services``.
SERVICES = ("postgresql",)


class ServiceError(RuntimeError):
    """A service could not be started."""


@dataclasses.dataclass
class Running:
    """The services running for a project: the variables that reach them, their versions."""

    env: dict[str, str] = dataclasses.field(default_factory=dict)
    versions: dict[str, str] = dataclasses.field(default_factory=dict)


def _postgres_module() -> Any:
    """The checkout's ``tests/postgres.py`` (throwaway PostgreSQL clusters)."""
    if "postgres" in sys.modules:
        return sys.modules["postgres"]
    tests = str(REPO_ROOT / "tests")
    sys.path.insert(0, tests)
    try:
        import postgres
    finally:
        sys.path.remove(tests)
    return postgres


@contextlib.contextmanager
def _postgresql(running: Running) -> Iterator[None]:
    """A throwaway PostgreSQL cluster (trust authentication, superuser ``postgres``) on
    127.0.0.1 at a free port; PGHOST, PGPORT and PGUSER name it. Stopped and removed on the
    way out, also on failure or Ctrl-C."""
    with contextlib.ExitStack() as stack:
        try:
            pg = stack.enter_context(_postgres_module().cluster())
            version = pg.psql("show server_version")[0]
        except Exception as exc:
            raise ServiceError(f"postgresql did not start: {exc}") from exc
        running.env.update(PGHOST=pg.host, PGPORT=str(pg.port), PGUSER=pg.user)
        running.versions["postgresql"] = version
        yield


def _terminated(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)


@contextlib.contextmanager
def services(project: Project) -> Iterator[Running]:
    """Start the project's ``services`` for the duration of the block (nothing for a project
    without them). Raises :class:`ServiceError` when one does not start. They are stopped on
    the way out, also on an exception or Ctrl-C; meanwhile SIGTERM, when it would otherwise
    end the process on the spot, raises SystemExit so that they are stopped too."""
    names = list(project.get("services", []))
    unknown = [n for n in names if n not in SERVICES]
    if unknown:
        raise ServiceError(f"unknown service(s) {', '.join(unknown)}; known: {', '.join(SERVICES)}")
    running = Running()
    with contextlib.ExitStack() as stack:
        main = threading.current_thread() is threading.main_thread()
        if names and main and signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
            signal.signal(signal.SIGTERM, _terminated)
            stack.callback(signal.signal, signal.SIGTERM, signal.SIG_DFL)
        for name in names:
            if name == "postgresql":
                stack.enter_context(_postgresql(running))
        yield running


def run_env(
    project: Project,
    venv: Path,
    workdir: Path,
    extra_pythonpath: Iterable[Path | str] = (),
    service_env: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The environment a project's tests run in: ours without :data:`SCRUBBED`, the venv
    first on PATH, the variables of its running services (``service_env``, from
    :func:`services`; for a project with services, none of ours named ``PG*`` is kept), and
    the manifest's variables (relative PYTHONPATH entries are resolved against the work dir,
    after ``extra_pythonpath``)."""
    env = {k: v for k, v in os.environ.items() if k not in SCRUBBED and not k.startswith("TACH_")}
    if project.get("services"):
        env = {k: v for k, v in env.items() if not k.startswith("PG")}
    env.update(service_env or {})
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


def render(
    template: str, p: Project, venv: Path, workdir: Path, isolation: str, **extra: str
) -> str:
    """The command line of a template for a project (``extra``: more placeholders)."""
    fields = {
        **extra,
        "python": shlex.quote(str(venv / "bin" / "python")),
        "args": quote_args(pytest_args(p)),
        "isolation": f"--isolation {isolation}" if isolation else "",
        "workdir": shlex.quote(str(workdir)),
        "venv": shlex.quote(str(venv)),
        "project": shlex.quote(p["name"]),
    }
    try:
        return template.format(**fields).strip()
    except (KeyError, IndexError, ValueError) as exc:
        raise SystemExit(f"bad template {template!r}: {exc}") from exc


def run_shell(cmd: str, cwd: Path, env: dict[str, str], timeout: float) -> dict[str, Any]:
    """Run a shell command; its exit status, output and wall time."""
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(
            cmd,
            shell=True,
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            timeout=timeout,
            check=False,
        )
        rc: int | str = proc.returncode
        out, err = proc.stdout, proc.stderr
    except subprocess.TimeoutExpired as exc:
        rc = "timeout"
        out = exc.stdout.decode(errors="replace") if isinstance(exc.stdout, bytes) else ""
        err = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else ""
    return {"rc": rc, "out": out, "err": err, "wall": time.perf_counter() - t0}


def venv_python_version(venv: Path) -> str:
    """``X.Y`` of a venv's interpreter."""
    return subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


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
