"""The source tree itself: lint-clean, and every native module shipped with its stub."""

from __future__ import annotations

import ast
import pathlib
import shutil
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
NATIVE = ("proc", "memfd", "ring", "frame")


def test_ruff_is_clean():
    ruff = shutil.which("ruff") or str(pathlib.Path(sys.executable).with_name("ruff"))
    if not pathlib.Path(ruff).exists():
        pytest.fail("ruff is not installed: pip install -e '.[test]'")
    result = subprocess.run(
        [ruff, "check", "tach", "tests", "benchmarks", "setup.py"],
        cwd=ROOT, capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("name", NATIVE)
def test_native_module_has_stub_and_docstrings(name):
    stub = ROOT / "tach" / "_native" / f"{name}.pyi"
    assert stub.exists(), f"{stub} is missing"
    ast.parse(stub.read_text())  # the stub is valid Python
    module = __import__(f"tach._native.{name}", fromlist=["_"])
    assert module.__doc__ and len(module.__doc__) > 40
    for attr in dir(module):
        obj = getattr(module, attr)
        is_exception = isinstance(obj, type) and issubclass(obj, BaseException)
        if attr.startswith("_") or not callable(obj) or is_exception:
            continue
        if getattr(obj, "__module__", module.__name__) != module.__name__:
            continue
        assert obj.__doc__, f"tach._native.{name}.{attr} has no docstring"


def test_python_modules_have_docstrings():
    missing = [
        str(path.relative_to(ROOT))
        for path in sorted((ROOT / "tach").rglob("*.py"))
        if path.name != "__main__.py" and ast.get_docstring(ast.parse(path.read_text())) is None
    ]
    assert not missing, f"modules without a docstring: {missing}"
