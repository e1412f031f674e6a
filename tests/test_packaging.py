"""The wheel: built from this tree, it installs and runs in a clean virtualenv with no Cython
and no compiler (CC and CXX point at /bin/false during the install)."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
import zipfile

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
NATIVE = ("proc", "memfd", "ring", "frame")

pytestmark = pytest.mark.packaging


def run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(cmd, capture_output=True, text=True, **kwargs)
    assert result.returncode == 0, f"{cmd} failed:\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> pathlib.Path:
    out = tmp_path_factory.mktemp("wheels")
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(ROOT)])
    (wheel,) = out.glob("tach_runner-*.whl")
    return wheel


def test_wheel_holds_compiled_modules_and_stubs_but_no_sources(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    for name in NATIVE:
        assert any(n.startswith(f"tach/_native/{name}.") and n.endswith(".so") for n in names), name
        assert f"tach/_native/{name}.pyi" in names
    assert "tach/bench/__main__.py" in names
    assert "tach/reporter/events.schema.json" in names  # the NDJSON schema is package data
    for init in sorted((ROOT / "tach").rglob("__init__.py")):
        assert str(init.relative_to(ROOT)) in names, (
            f"package {init.parent.name} is not in the wheel"
        )
    leaked = [n for n in names if n.endswith((".pyx", ".pxd", ".c", ".h"))]
    assert not leaked, f"sources in the wheel: {leaked}"


def test_wheel_installs_and_runs_without_cython_or_compiler(wheel, tmp_path):
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", str(venv)])
    python = str(venv / "bin" / "python")
    env = {**os.environ, "CC": "/bin/false", "CXX": "/bin/false"}
    env.pop("PYTHONPATH", None)
    run([python, "-m", "pip", "install", "-q", str(wheel)], env=env, cwd=tmp_path)
    probe = (
        "import importlib.util, sys\n"
        "assert importlib.util.find_spec('Cython') is None, 'Cython is installed'\n"
        "import tach\n"
        "assert tach.__file__.startswith(sys.prefix), tach.__file__\n"
        "from tach._native import frame, memfd, proc, ring\n"
        "assert frame.decode(frame.encode(1, {'ok': True}))[2] == {'ok': True}\n"
        "from tach.reporter.json import schema\n"
        "assert schema()['oneOf'], 'the NDJSON schema is not readable'\n"
    )
    run([python, "-c", probe], env=env, cwd=tmp_path)
    version = run([str(venv / "bin" / "tach"), "--version"], env=env, cwd=tmp_path).stdout
    assert version.startswith("tach ") and "pytest " in version and "Python " in version
    run([python, "-m", "tach", "--version"], env=env, cwd=tmp_path)
    listing = run([str(venv / "bin" / "tach-bench"), "--list"], env=env, cwd=tmp_path).stdout
    assert "frame" in listing and "ring" in listing
