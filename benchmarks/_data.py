"""Synthetic inputs for the benchmarks: generated pytest suites for discovery.

:func:`make_suite` writes ``n_files`` test modules (in packages of 50) with 11 tests each
(node ids after parametrize expansion): plain functions, a test class, a literal
``parametrize`` and a conftest with a fixture per package, so that discovery, parametrize
ids and fixture resolution all do work.
Deterministic for a given seed.
"""

from __future__ import annotations

import random
from pathlib import Path

_MODULE = '''\
import pytest


@pytest.fixture
def local_{i}(pkg_fixture):
    return pkg_fixture + {i}


def test_plain_{i}():
    assert True


def test_uses_fixture_{i}(local_{i}, tmp_path):
    assert local_{i}


@pytest.mark.parametrize("x, y", [(1, "a"), (2, "b"), (3, None), pytest.param(4, "d", id="four")])
def test_param_{i}(x, y):
    assert x


@pytest.mark.slow
@pytest.mark.parametrize("v", [True, False, 1.5])
def test_marked_{i}(v):
    assert v is not None


class TestGroup{i}:
    def test_method_a(self):
        assert True

    def test_method_b(self, local_{i}):
        assert local_{i}
'''

_CONFTEST = '''\
import pytest


@pytest.fixture(scope="module")
def pkg_fixture():
    return {n}
'''


def make_suite(root: Path, n_files: int, seed: int = 0) -> int:
    """Write a suite of ``n_files`` modules under ``root``; return the number of tests."""
    rng = random.Random(seed)
    root.mkdir(parents=True, exist_ok=True)
    (root / "pytest.ini").write_text("[pytest]\ntestpaths = tests\nmarkers =\n    slow: slow\n")
    tests = 0
    for i in range(n_files):
        pkg = root / "tests" / f"pkg_{i // 50:04d}"
        if not pkg.exists():
            pkg.mkdir(parents=True)
            (pkg / "__init__.py").write_text("")
            (pkg / "conftest.py").write_text(_CONFTEST.format(n=rng.randrange(1, 100)))
        (pkg / f"test_mod_{i:05d}.py").write_text(_MODULE.format(i=i))
        tests += 11
    return tests
