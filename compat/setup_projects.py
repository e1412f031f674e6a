#!/usr/bin/env python3
"""Build the compatibility corpus: sources and one virtualenv per project (idempotent).

    python3 compat/setup_projects.py [--project NAME ...] [--jobs N] [--tach DIR]
                                     [--force] [--write-lock]

For every selected project of ``manifest.json`` it:

1. downloads the pinned sdist into ``CACHE/sdists`` with
   ``pip download --no-deps --no-binary NAME NAME==VERSION`` and checks its sha256;
2. unpacks it into ``CACHE/src/<unpack_dir>``;
3. creates ``CACHE/venvs/NAME`` and installs the project from that sdist (non-editable) with
   its pinned test dependencies, every package constrained to the manifest's ``lock``;
4. makes Tach importable in the venv without building it there: a ``tach-compat.pth`` in the
   venv's site-packages names ``CACHE/tach-link/<key>``, a directory holding only a symlink
   ``tach -> DIR/tach`` (so the checkout's other top-level directories, ``tests`` among them,
   cannot shadow a project's own), and Tach's runtime dependencies (the manifest's
   ``tach_runtime`` pins: orjson, watchdog) are pip-installed into the venv;
5. copies the project's ``files`` (``files/NAME/...``) into its work dir (baseline.py and
   compare.py copy them again before they run, so a re-unpacked source gets them back).

A project with the key ``venv`` names another project whose sdist, unpacked source and venv
it shares (the same suite with other settings, say): it gets no venv of its own. It is set
up after the projects with their own venvs; when the one it names is not selected, that
project's venv is built or checked as in step 3.

CACHE is ``$TACH_COMPAT_CACHE`` (default ``~/.cache/tach-compat``); the interpreter is
``$TACH_COMPAT_PYTHON`` (default ``python3``; the lock was made with 3.11). Steps 1-3 leave
stamps, so a rerun only redoes what changed (``--force`` redoes everything); step 4 is
cheap and always rechecked. Logs: ``CACHE/logs/setup-NAME.log``.

``--write-lock`` (maintainers) resolves afresh, without the lock, then records in the
manifest what each venv holds (``lock``), pins every unpinned test dependency to the version
installed, and records each sdist's sha256.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import corpus as C

PTH_NAME = "tach-compat.pth"


def sha256(path: Path) -> str:
    """Hex sha256 of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def norm(name: str) -> str:
    """A distribution name normalised as the package index does."""
    return re.sub(r"[-_.]+", "-", name).lower()


def req_name(req: str) -> str:
    """The distribution name of a requirement string like ``pytest==9.2.0``."""
    return norm(re.split(r"[<>=!~;\[ ]", req, maxsplit=1)[0])


def pip_env() -> dict[str, str]:
    """Our environment, without what would leak into pip."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.setdefault("PIP_DISABLE_PIP_VERSION_CHECK", "1")
    return env


def run(cmd: list[Any], logfile: Path, cwd: Path | None = None) -> None:
    """Run a command, appending its output to ``logfile``; raise when it fails."""
    with open(logfile, "a") as out:
        out.write("\n$ " + " ".join(str(c) for c in cmd) + "\n")
        out.flush()
        proc = subprocess.run(
            [str(c) for c in cmd],
            cwd=cwd,
            env=pip_env(),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    if proc.returncode:
        raise RuntimeError(f"exit {proc.returncode}: {' '.join(map(str, cmd))} (see {logfile})")


def stamp(obj: Any) -> str:
    """A digest of the inputs of a step."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()


def read_text(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def python_version(python: str) -> str:
    """``X.Y.Z`` of an interpreter."""
    code = "import sys; print('%d.%d.%d' % sys.version_info[:3])"
    return subprocess.run(
        [python, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()


def fetch_sdist(p: C.Project, cache: Path, logfile: Path, force: bool) -> Path:
    """Download the project's sdist (once) and check its sha256."""
    sdists = cache / "sdists"
    sdists.mkdir(parents=True, exist_ok=True)
    target = sdists / p["sdist"]
    want = p.get("sdist_sha256")
    if target.exists() and not force and (not want or sha256(target) == want):
        return target
    target.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(dir=sdists) as tmp:
        # --no-binary for the project only: its sdist carries the tests; build backends
        # pip needs to read the sdist's metadata may come as wheels.
        run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--no-binary",
                p["pypi_name"],
                "-d",
                tmp,
                f"{p['pypi_name']}=={p['version']}",
            ],
            logfile,
        )
        got = [f for f in os.listdir(tmp) if not f.endswith(".whl")]
        if got != [p["sdist"]]:
            raise RuntimeError(f"expected the sdist {p['sdist']}, got {got}")
        shutil.move(os.path.join(tmp, got[0]), target)
    if want and sha256(target) != want:
        raise RuntimeError(f"sha256 mismatch for {target}: {sha256(target)} != {want}")
    return target


def unpack(p: C.Project, sdist: Path, cache: Path, force: bool) -> Path:
    """Unpack the sdist into ``CACHE/src`` (once per sdist digest)."""
    root = cache / "src"
    root.mkdir(parents=True, exist_ok=True)
    dest = root / p["unpack_dir"]
    stamp_file = root / (p["unpack_dir"] + ".stamp")
    want = stamp({"sha256": sha256(sdist)})
    if dest.is_dir() and not force and read_text(stamp_file) == want:
        return dest
    if dest.exists():
        shutil.rmtree(dest)
    stamp_file.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(dir=root) as tmp:
        if sdist.name.endswith(".zip"):
            with zipfile.ZipFile(sdist) as z:
                z.extractall(tmp)
        else:
            with tarfile.open(sdist) as t:
                t.extractall(tmp, filter="data")
        top = Path(tmp) / p["unpack_dir"]
        if not top.is_dir():
            raise RuntimeError(f"{sdist.name} does not unpack to {p['unpack_dir']}")
        shutil.move(str(top), str(dest))
    stamp_file.write_text(want + "\n")
    return dest


def venv_stamp(p: C.Project, sdist_sha256: str, python: str) -> str:
    """The digest of what a project's venv is built from."""
    return stamp(
        {
            "sha256": sdist_sha256,
            "deps": p.get("test_deps", []),
            "lock": p.get("lock", []),
            "python": python_version(python),
        }
    )


def make_venv(
    p: C.Project,
    manifest: C.Manifest,
    sdist: Path,
    python: str,
    logfile: Path,
    force: bool,
    write_lock: bool,
) -> tuple[Path, bool]:
    """Create the project's venv with the project and its test deps (once per inputs)."""
    venv = C.paths(manifest, p)[0]
    stamp_file = venv / ".compat-stamp"
    want = venv_stamp(p, sha256(sdist), python)
    if venv.is_dir() and not force and not write_lock and read_text(stamp_file) == want:
        return venv, False
    if venv.exists():
        shutil.rmtree(venv)
    venv.parent.mkdir(parents=True, exist_ok=True)
    run([python, "-m", "venv", venv], logfile)
    vpy = venv / "bin" / "python"
    cmd: list[Any] = [vpy, "-m", "pip", "install", "--no-input"]
    own = norm(p["pypi_name"])
    lock = [r for r in p.get("lock", []) if req_name(r) != own]
    if lock and not write_lock:
        constraints = venv / "compat-constraints.txt"
        constraints.write_text("\n".join(lock) + "\n")
        cmd += ["-c", constraints]
    cmd += [sdist, *p.get("test_deps", []), *manifest.get("tach_runtime", [])]
    run(cmd, logfile)
    check = "import importlib, sys, pytest; importlib.import_module(sys.argv[1]); print('ok')"
    run([vpy, "-c", check, p["import_name"]], logfile, cwd=Path("/"))
    stamp_file.write_text(want + "\n")
    return venv, True


def site_packages(venv: Path) -> Path:
    """The venv's purelib directory."""
    code = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    out = subprocess.run(
        [str(venv / "bin" / "python"), "-c", code], capture_output=True, text=True, check=True
    )
    return Path(out.stdout.strip())


def tach_link(cache: Path, tach_dir: Path) -> Path:
    """``CACHE/tach-link/<key>``: a directory whose only entry is ``tach -> DIR/tach``."""
    pkg = tach_dir / "tach"
    if not (pkg / "__init__.py").is_file():
        raise SystemExit(f"--tach {tach_dir}: no tach package there")
    key = hashlib.sha256(str(tach_dir).encode()).hexdigest()[:12]
    link_dir = cache / "tach-link" / key
    link_dir.mkdir(parents=True, exist_ok=True)
    link = link_dir / "tach"
    if not (link.is_symlink() and Path(os.readlink(link)) == pkg):
        tmp = link_dir / "tach.tmp"
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(pkg, target_is_directory=True)
        os.replace(tmp, link)
    (link_dir / "SOURCE").write_text(f"{tach_dir}\n")
    return link_dir


def install_tach(venv: Path, link_dir: Path, runtime: list[str], logfile: Path) -> str:
    """Point the venv at Tach (a .pth) and make sure its runtime deps are there."""
    (site_packages(venv) / PTH_NAME).write_text(f"{link_dir}\n")
    vpy = venv / "bin" / "python"

    def probe() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(vpy), "-c", "import sys, orjson, watchdog, tach; print(tach.__file__)"],
            capture_output=True,
            text=True,
            cwd="/",
            env=pip_env(),
            check=False,
        )

    out = probe()
    if out.returncode:
        run([vpy, "-m", "pip", "install", "--no-input", *runtime], logfile)
        out = probe()
        if out.returncode:
            raise RuntimeError(f"tach is not importable in {venv}: {out.stderr[-500:]}")
    return out.stdout.strip()


def freeze(venv: Path) -> list[str]:
    """``pip freeze --all`` of a venv, sorted, without editable/URL entries."""
    out = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "freeze", "--all"],
        capture_output=True,
        text=True,
        check=True,
        env=pip_env(),
    ).stdout
    lines = [s.strip() for s in out.splitlines()]
    keep = [s for s in lines if s and not s.startswith("-e ") and " @ " not in s]
    return sorted(keep, key=str.lower)


def pin(deps: list[str], lock: list[str]) -> list[str]:
    """Test deps with every unpinned one pinned to the locked version."""
    versions = {req_name(r): r.split("==", 1)[1] for r in lock if "==" in r}
    out = []
    for dep in deps:
        name = req_name(dep)
        if "==" in dep or name not in versions:
            out.append(dep)
        else:
            extras = re.search(r"\[[^\]]*\]", dep)
            base = re.split(r"[<>=!~;\[ ]", dep, maxsplit=1)[0]
            out.append(f"{base}{extras.group(0) if extras else ''}=={versions[name]}")
    return out


def main() -> int:
    """Command line entry point."""
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--project", action="append", default=[], help="only this (repeatable)")
    ap.add_argument("--jobs", type=int, default=2, help="projects set up in parallel")
    ap.add_argument(
        "--tach",
        default=str(C.HERE.parent),
        help="the Tach checkout to make importable (default: %(default)s)",
    )
    ap.add_argument("--force", action="store_true", help="redo every step")
    ap.add_argument("--write-lock", action="store_true", help="resolve afresh; record the lock")
    args = ap.parse_args()

    manifest = C.load_manifest()
    cache = C.cache_dir(manifest)
    python = os.environ.get(manifest.get("python_env", "TACH_COMPAT_PYTHON")) or "python3"
    pyver = python_version(python)
    if not (pyver + ".").startswith(manifest.get("python", "") + "."):
        print(f"warning: {python} is {pyver}; the lock was made with {manifest['python']}")
    projects = C.select(manifest, args.project)
    (cache / "logs").mkdir(parents=True, exist_ok=True)
    link_dir = tach_link(cache, Path(args.tach).resolve())
    print(f"cache {cache}; python {python} ({pyver}); tach {args.tach}; {len(projects)} projects")

    selected = {p["name"] for p in projects}

    def one(p: C.Project) -> dict[str, Any]:
        logfile = cache / "logs" / f"setup-{p['name']}.log"
        try:
            owner = C.venv_owner(manifest, p)
            # the owner, set up in the first round, has fetched and unpacked the same sdist
            done = owner is not None and owner["name"] in selected
            sdist = fetch_sdist(p, cache, logfile, args.force and not done)
            src = unpack(p, sdist, cache, args.force and not done)
            if owner is None:
                venv, built = make_venv(
                    p, manifest, sdist, python, logfile, args.force, args.write_lock
                )
                status = "built" if built else "up to date"
            elif done:
                venv = C.paths(manifest, owner)[0]
                if read_text(venv / ".compat-stamp") != venv_stamp(owner, sha256(sdist), python):
                    raise RuntimeError(f"{owner['name']}'s venv, which it shares, is not set up")
                built = False
                status = f"shares {owner['name']}'s venv"
            else:
                venv, built = make_venv(owner, manifest, sdist, python, logfile, args.force, False)
                status = f"shares {owner['name']}'s venv, " + ("built" if built else "up to date")
            where = install_tach(venv, link_dir, manifest.get("tach_runtime", []), logfile)
            workdir = C.paths(manifest, p)[1]
            copied = C.install_files(manifest, p, workdir)
            if copied:
                status += f"; {len(copied)} file(s) copied"
            return {
                "name": p["name"],
                "status": status + f"; tach from {where}",
                "src": str(src),
                "lock": freeze(venv) if args.write_lock and owner is None else None,
                "sha256": sha256(sdist),
            }
        except (Exception, SystemExit) as exc:  # report and go on with the other projects
            return {"name": p["name"], "status": f"FAILED: {exc}", "lock": None}

    # projects sharing another's venv afterwards: never two builds of one venv or source
    own = [p for p in projects if not p.get("venv")]
    sharing = [p for p in projects if p.get("venv")]
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        results = list(pool.map(one, own))
    # one at a time: two of them may share the same venv
    results += [one(p) for p in sharing]
    failed = 0
    by_name = {p["name"]: p for p in manifest["projects"]}
    for r in results:
        print(f"  {r['name']:26s} {r['status']}")
        failed += r["status"].startswith("FAILED")
        if r["lock"] is not None:
            p = by_name[r["name"]]
            p["lock"] = r["lock"]
            p["sdist_sha256"] = r["sha256"]
            p["test_deps"] = pin(p.get("test_deps", []), r["lock"])
            # the venv holds exactly this lock now: stamp it so a plain rerun keeps it
            venv = C.paths(manifest, p)[0]
            (venv / ".compat-stamp").write_text(venv_stamp(p, r["sha256"], python) + "\n")
    if args.write_lock:
        path = Path(manifest.pop("_path"))
        path.write_text(json.dumps(manifest, indent=2) + "\n")
        print(f"lock written to {path}")
    if failed:
        print(f"{failed} project(s) failed; logs in {cache / 'logs'}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
