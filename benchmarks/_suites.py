"""Generated pytest projects for the end-to-end benchmark (:mod:`.bench_e2e`).

Each generator writes a real pytest project (``pyproject.toml`` with ``[tool.pytest.ini_options]``,
tests under ``tests/``) and returns a :class:`Suite`: where it is, how many tests pytest collects
and the outcome counts pytest's closing summary line must show. The generators are
deterministic; sizes are keyword arguments so that a unit test can write tiny instances.

* ``trivial``: 4,000 one-line tests over 40 modules: per-test overhead and nothing else.
* ``heavy_imports``: test modules that import heavy third-party modules (numpy and hypothesis
  when the interpreter under test has them) and much of the standard library, plus a generated
  project package of 200 plain-Python modules (enums, dataclasses, classes, lookup tables)
  under ``src/`` that every test module imports.
* ``costly_fixture``: a 1 s session fixture (``time.sleep``: it stands for real set-up cost,
  e.g. starting a database) and a module fixture per module (25 ms asleep + 25 ms of CPU), 40
  modules. The session fixture drops a marker file per set-up and per teardown in
  ``.setups/`` so the benchmark can count how many processes set it up.
* ``cpu_bound``: 200 tests that each do a fixed amount of pure-Python work, calibrated when
  the suite is generated to take about 20 ms on this machine.
* ``mixed``: a realistic mix: fixtures of every scope, tmp_path/monkeypatch/capsys,
  parametrize with ids and marks, classes, unittest.TestCase, failures (assertion rewriting),
  skips (mark, skipif, run time, module level), xfail, xpass, strict xpass, set-up errors and
  teardown errors.

Tests never depend on state left by other tests, so every isolation mode must agree with
pytest on every count.
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

#: The outcome words of pytest's closing summary line, in the order pytest prints them.
OUTCOMES = ("failed", "passed", "skipped", "xfailed", "xpassed", "errors")

#: Third-party modules the heavy-imports suite uses when the interpreter under test has them.
HEAVY_THIRD_PARTY = ("numpy", "hypothesis")

#: Standard-library modules every heavy-imports test module imports.
HEAVY_STDLIB = (
    "asyncio",
    "concurrent.futures",
    "decimal",
    "email.mime.multipart",
    "email.mime.text",
    "http.client",
    "json",
    "sqlite3",
    "unittest.mock",
    "urllib.request",
    "xml.etree.ElementTree",
)


@dataclasses.dataclass
class Suite:
    """A generated project and what pytest must report for it."""

    name: str
    root: Path
    #: Tests pytest collects (node ids after parametrize expansion).
    tests: int
    #: Outcome counts of pytest's closing summary line (``OUTCOMES`` keys; zeros included).
    expected: dict[str, int]
    description: str
    #: Heavy third-party modules the suite imports (heavy_imports only).
    heavy_modules: list[str] = dataclasses.field(default_factory=list)
    #: Where the session fixture drops its set-up/teardown markers (costly_fixture only).
    marker_dir: Path | None = None
    #: Anything else worth recording (calibration, sizes).
    params: dict[str, object] = dataclasses.field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "root": str(self.root),
            "tests": self.tests,
            "expected": self.expected,
            "description": self.description,
            "heavy_modules": self.heavy_modules,
            "params": self.params,
        }


def _counts(**kw: int) -> dict[str, int]:
    counts = dict.fromkeys(OUTCOMES, 0)
    for key, value in kw.items():
        if key not in counts:
            raise KeyError(key)
        counts[key] = value
    return counts


def _project(root: Path, extra_ini: str = "") -> Path:
    """Create ``root`` with a pyproject.toml and an empty ``tests/``; return ``tests/``."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "pyproject.toml").write_text(
        "[project]\n"
        f'name = "bench-{root.name.replace("_", "-")}"\n'
        'version = "0"\n\n'
        "[tool.pytest.ini_options]\n"
        'testpaths = ["tests"]\n' + extra_ini
    )
    tests = root / "tests"
    tests.mkdir(exist_ok=True)
    return tests


# --------------------------------------------------------------------------------------------
# trivial


def make_trivial(root: Path, modules: int = 40, per_module: int = 100) -> Suite:
    """``modules`` × ``per_module`` tests that do nothing."""
    tests = _project(root)
    for m in range(modules):
        body = ["\n"]
        for t in range(per_module):
            body.append(f"\ndef test_t{m:03d}_{t:04d}():\n    assert {t} == {t}\n\n")
        (tests / f"test_trivial_{m:03d}.py").write_text("".join(body))
    n = modules * per_module
    return Suite(
        "trivial", root, n, _counts(passed=n),
        f"{n:,} trivial tests over {modules} modules",
        params={"modules": modules, "per_module": per_module},
    )


# --------------------------------------------------------------------------------------------
# heavy imports

_PKG_MODULE = '''\
"""Generated project module {i}: records, services and lookup tables."""

from __future__ import annotations

import dataclasses
import enum
import functools
import re
{parent_import}
TABLE = {{f"k{i}_{{k}}": k * 7 for k in range({table})}}
NAMES = tuple(f"name-{i}-{{k}}" for k in range({names}))
PATTERN = re.compile(r"item-(\\d+)-{i}-[a-z]+")


class Kind(enum.Enum):
    ALPHA = 1
    BETA = 2
    GAMMA = 3
    DELTA = 4


@dataclasses.dataclass(frozen=True)
class Record:
    """An immutable record of module {i}."""

    name: str
    value: int
    kind: Kind = Kind.ALPHA
    tags: tuple[str, ...] = ()

    def score(self) -> int:
        return self.value * {i1} + len(self.tags)


@dataclasses.dataclass
class Settings:
    """Mutable settings of module {i}."""

    level: int = {i}
    label: str = "m{i}"
    ratio: float = {ratio}
    extra: list[str] = dataclasses.field(default_factory=list)

    def merged(self, other: Settings) -> Settings:
        return Settings(max(self.level, other.level), self.label + other.label,
                        (self.ratio + other.ratio) / 2, [*self.extra, *other.extra])


class Service:
    """A stateful service of module {i}."""

    def __init__(self, scale: int = 1) -> None:
        self.scale = scale
        self.calls = 0

{methods}

{functions}

@functools.lru_cache(maxsize=None)
def lookup(key: str) -> int:
    return TABLE.get(key, -1)


def parent_value() -> int:
    return {parent_value}
'''

_API_MODULE = '''\
"""The generated project's API: imports every module of the package."""

from __future__ import annotations

{imports}

MODULES = [{names}]


def total() -> int:
    return sum(len(m.TABLE) for m in MODULES)


def records() -> list:
    return [m.Record(f"r{{i}}", i) for i, m in enumerate(MODULES)]
'''

_HEAVY_TEST = '''\
"""Heavy-imports test module {m}."""

{stdlib_imports}

{third_party_imports}
from bigpkg import api
from bigpkg import mod_{k:03d} as target
from bigpkg.mod_{k2:03d} import Record, Service, Settings


def test_api_total():
    assert api.total() == {api_total}


def test_records():
    recs = api.records()
    assert len(recs) == {pkg_modules}
    assert recs[3].score() == recs[3].value * 4 + 0


def test_target_functions():
    assert [target.f0(x) for x in range(3)] == [target.f0(x) for x in range(3)]
    assert target.lookup("k{k}_3") == 21


def test_service():
    s = Service(scale=2)
    assert s.m0(1) == 2
    assert s.calls == 1


def test_settings_merge():
    merged = Settings(level=1).merged(Settings(level=5, extra=["x"]))
    assert merged.level == 5 and merged.extra == ["x"]


def test_record_frozen():
    rec = Record("a", 1)
    try:
        rec.value = 2
    except Exception as exc:
        assert type(exc).__name__ == "FrozenInstanceError"
    else:
        raise AssertionError("not frozen")


def test_stdlib():
    assert json.loads(json.dumps({{"a": [1, 2]}})) == {{"a": [1, 2]}}
    assert decimal.Decimal("0.1") + decimal.Decimal("0.2") == decimal.Decimal("0.3")
    db = sqlite3.connect(":memory:")
    db.execute("create table t (x)")
    db.executemany("insert into t values (?)", [(i,) for i in range(10)])
    assert db.execute("select sum(x) from t").fetchone()[0] == 45
    db.close()
    assert xml.etree.ElementTree.fromstring("<a><b/></a>")[0].tag == "b"
{third_party_tests}
'''

_NUMPY_TESTS = '''

def test_numpy_sum():
    a = numpy.arange(1000)
    assert int(a.sum()) == 499500


def test_numpy_linalg():
    m = numpy.eye(4) * 2.0
    assert numpy.allclose(numpy.linalg.inv(m) @ m, numpy.eye(4))
'''

_HYPOTHESIS_TESTS = '''

@hypothesis.settings(max_examples=20, deadline=None, derandomize=True, database=None)
@hypothesis.given(hypothesis.strategies.integers(min_value=0, max_value=10_000))
def test_property(x):
    assert 0 <= target.f1(x) < 97
'''

_PKG_PARENT = "\nfrom bigpkg import mod_{p:03d} as parent\n"


def available_modules(python: str, names: Sequence[str]) -> list[str]:
    """Those of ``names`` that ``python`` can import."""
    found = []
    for name in names:
        probe = subprocess.run([python, "-c", f"import {name}"], capture_output=True, check=False)
        if probe.returncode == 0:
            found.append(name)
    return found


def make_heavy_imports(
    root: Path,
    test_modules: int = 20,
    pkg_modules: int = 200,
    table: int = 400,
    python: str | None = None,
    third_party: Sequence[str] | None = None,
) -> Suite:
    """Test modules importing heavy third-party modules and a ``pkg_modules``-module package.

    ``third_party`` defaults to those of :data:`HEAVY_THIRD_PARTY` that ``python`` imports.
    """
    if third_party is None:
        third_party = available_modules(python or sys.executable, HEAVY_THIRD_PARTY)
    tests = _project(root, 'pythonpath = ["src"]\n')
    pkg = root / "src" / "bigpkg"
    pkg.mkdir(parents=True, exist_ok=True)
    (pkg / "__init__.py").write_text('"""A large generated project package."""\n')
    for i in range(pkg_modules):
        methods = "\n".join(
            f"    def m{k}(self, x: int) -> int:\n"
            f"        self.calls += 1\n"
            f"        return x * self.scale + {k}\n"
            for k in range(10)
        )
        functions = "\n".join(
            f"def f{k}(x: int) -> int:\n    return (x * {i + k + 1} + {k}) % 97\n\n"
            for k in range(10)
        )
        parent = (i - 1) // 2
        (pkg / f"mod_{i:03d}.py").write_text(
            _PKG_MODULE.format(
                i=i,
                i1=i + 1,
                ratio=round(i / 7, 3),
                table=table,
                names=table // 2,
                methods=methods,
                functions=functions,
                parent_import=_PKG_PARENT.format(p=parent) if i else "",
                parent_value="parent.f0(1)" if i else "0",
            )
        )
    names = [f"mod_{i:03d}" for i in range(pkg_modules)]
    (pkg / "api.py").write_text(
        _API_MODULE.format(
            imports="\n".join(f"from bigpkg import {n}" for n in names),
            names=", ".join(names),
        )
    )
    stdlib = "\n".join(f"import {name}" for name in HEAVY_STDLIB)
    per_module = 7
    for m in range(test_modules):
        extra = ""
        imports = []
        if "numpy" in third_party:
            imports.append("import numpy")
            extra += _NUMPY_TESTS
        if "hypothesis" in third_party:
            imports += ["import hypothesis", "import hypothesis.strategies"]
            extra += _HYPOTHESIS_TESTS
        imports += [f"import {n}" for n in third_party if n not in ("numpy", "hypothesis")]
        k = (m * 37) % pkg_modules
        (tests / f"test_heavy_{m:03d}.py").write_text(
            _HEAVY_TEST.format(
                m=m,
                k=k,
                k2=(m * 11 + 5) % pkg_modules,
                stdlib_imports=stdlib,
                third_party_imports="\n".join(imports),
                api_total=table * pkg_modules,
                pkg_modules=pkg_modules,
                third_party_tests=extra,
            )
        )
    per_module += 2 * ("numpy" in third_party) + ("hypothesis" in third_party)
    n = test_modules * per_module
    return Suite(
        "heavy_imports", root, n, _counts(passed=n),
        f"{n} tests in {test_modules} modules importing "
        f"{', '.join(third_party) or 'no third-party module'}"
        f" + stdlib + a {pkg_modules}-module project package",
        heavy_modules=list(third_party),
        params={"test_modules": test_modules, "pkg_modules": pkg_modules, "table": table},
    )


# --------------------------------------------------------------------------------------------
# costly fixture

_COSTLY_CONFTEST = '''\
import os
import time
from pathlib import Path

import pytest

MARKERS = Path(__file__).resolve().parent.parent / ".setups"


def _mark(kind):
    MARKERS.mkdir(exist_ok=True)
    (MARKERS / f"{{kind}}-{{os.getpid()}}-{{time.monotonic_ns()}}").touch()


@pytest.fixture(scope="session")
def engine():
    """Stands for an expensive session resource (a database server, a model)."""
    _mark("setup")
    time.sleep({session_s})
    yield {{"name": "engine", "pid": os.getpid()}}
    _mark("teardown")
'''

_COSTLY_HELPERS = '''\
import time


def burn(seconds):
    """Busy-loop for ``seconds`` of this process's CPU time."""
    end = time.process_time() + seconds
    x = 0
    while time.process_time() < end:
        x += 1
    return x
'''

_COSTLY_TEST = '''\
import time

import pytest

from _helpers import burn


@pytest.fixture(scope="module")
def table(engine):
    """Stands for per-module set-up (tables, files): part waiting, part work."""
    time.sleep({module_sleep})
    burn({module_cpu})
    rows = [{{"id": i, "module": {m}}} for i in range(100)]
    yield rows
    rows.clear()


@pytest.fixture
def row(table):
    return table[0]

{tests}
'''


def make_costly_fixture(
    root: Path,
    modules: int = 40,
    per_module: int = 10,
    session_s: float = 1.0,
    module_sleep_s: float = 0.025,
    module_cpu_s: float = 0.025,
) -> Suite:
    """A ``session_s`` session fixture and a module fixture per module that everything uses."""
    tests = _project(root)
    (tests / "conftest.py").write_text(_COSTLY_CONFTEST.format(session_s=session_s))
    (tests / "_helpers.py").write_text(_COSTLY_HELPERS)
    for m in range(modules):
        body = []
        for t in range(per_module):
            if t % 2:
                body.append(f"\ndef test_row_{t}(row, engine):\n"
                            f"    assert row['module'] == {m} and engine['name'] == 'engine'\n")
            else:
                body.append(f"\ndef test_table_{t}(table):\n    assert len(table) == 100\n")
        (tests / f"test_costly_{m:03d}.py").write_text(
            _COSTLY_TEST.format(m=m, module_sleep=module_sleep_s, module_cpu=module_cpu_s,
                                tests="\n".join(body))
        )
    n = modules * per_module
    return Suite(
        "costly_fixture", root, n, _counts(passed=n),
        f"{n} tests, {modules} modules; {session_s:g} s session fixture, "
        f"{(module_sleep_s + module_cpu_s) * 1000:g} ms module fixtures",
        marker_dir=root / ".setups",
        params={"modules": modules, "per_module": per_module, "session_s": session_s,
                "module_sleep_s": module_sleep_s, "module_cpu_s": module_cpu_s},
    )


def count_markers(marker_dir: Path | None) -> dict[str, int]:
    """Set-ups and teardowns the costly session fixture recorded (and in how many processes)."""
    if marker_dir is None or not marker_dir.is_dir():
        return {"setup": 0, "teardown": 0, "processes": 0}
    names = [p.name for p in marker_dir.iterdir()]
    return {
        "setup": sum(n.startswith("setup-") for n in names),
        "teardown": sum(n.startswith("teardown-") for n in names),
        "processes": len({n.split("-")[1] for n in names if n.startswith("setup-")}),
    }


def clear_markers(marker_dir: Path | None) -> None:
    if marker_dir is not None and marker_dir.is_dir():
        for p in marker_dir.iterdir():
            p.unlink()


# --------------------------------------------------------------------------------------------
# cpu bound

_CPU_HELPERS = '''\
def work(n):
    """Fixed pure-Python work: n rounds of integer arithmetic."""
    x = 0
    for i in range(n):
        x = (x * 31 + i) % 1000003
    return x
'''

_CPU_TEST = '''\
import pytest

from _helpers import work

N = {n}


@pytest.mark.parametrize("seed", range({per_module}))
def test_burn(seed):
    assert work(N + seed) >= 0
'''


def _work(n: int) -> int:
    x = 0
    for i in range(n):
        x = (x * 31 + i) % 1000003
    return x


def calibrate_work(target_ms: float, probe: int = 50_000, trials: int = 5) -> int:
    """Rounds of :func:`_work` that take ``target_ms`` here (fastest of ``trials`` probes)."""
    best = min(_timed(lambda: _work(probe)) for _ in range(trials))
    return max(1, round(probe * target_ms / 1000 / best))


def _timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def make_cpu_bound(
    root: Path, modules: int = 10, per_module: int = 20, target_ms: float = 20.0,
    rounds: int | None = None,
) -> Suite:
    """``modules`` × ``per_module`` tests of ~``target_ms`` of CPU each."""
    if rounds is None:
        rounds = calibrate_work(target_ms)
    tests = _project(root)
    (tests / "_helpers.py").write_text(_CPU_HELPERS)
    for m in range(modules):
        (tests / f"test_cpu_{m:03d}.py").write_text(
            _CPU_TEST.format(n=rounds, per_module=per_module))
    n = modules * per_module
    return Suite(
        "cpu_bound", root, n, _counts(passed=n),
        f"{n} tests of ~{target_ms:g} ms CPU each ({rounds:,} rounds), {modules} modules",
        params={"modules": modules, "per_module": per_module, "target_ms": target_ms,
                "rounds": rounds},
    )


# --------------------------------------------------------------------------------------------
# mixed

_MIXED_CONFTEST = '''\
import os

import pytest


@pytest.fixture(scope="session")
def settings():
    return {"env": "bench", "pid": os.getpid()}


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    monkeypatch.delenv("TACH_BENCH_FLAG", raising=False)
'''

_MIXED_TEST = '''\
"""Generated mixed module {i}."""

import os
import sys
import unittest
import warnings

import pytest

{pytestmark}

@pytest.fixture(scope="module")
def resource():
    data = {{"n": {i}, "items": list(range(100))}}
    yield data
    data.clear()


@pytest.fixture
def counter(resource, settings):
    assert settings["env"] == "bench"
    return len(resource["items"])


def _work(n):
    return sum(k * k for k in range(n))


def test_plain():
    assert _work(300) == {work}


def test_fixture(counter):
    assert counter == 100


def test_tmp_path(tmp_path):
    p = tmp_path / "f.txt"
    p.write_text("x" * {i})
    assert len(p.read_text()) == {i}


def test_monkeypatch(monkeypatch):
    monkeypatch.setenv("TACH_BENCH_FLAG", "{i}")
    assert os.environ["TACH_BENCH_FLAG"] == "{i}"


def test_capsys(capsys):
    print("hello {i}")
    assert capsys.readouterr().out == "hello {i}\\n"


def test_warns():
    with pytest.warns(UserWarning, match="careful"):
        warnings.warn("careful {i}", UserWarning)
    warnings.warn("uncaught {i}", DeprecationWarning)


@pytest.mark.parametrize("n", range(8))
def test_param(n, resource):
    assert n != {fail_at}, f"case {{n}} of module {i} is broken"


@pytest.mark.parametrize(
    "a, b",
    [(1, 2), (2, 3), pytest.param(3, 4, id="three"),
     pytest.param(0, 0, marks=pytest.mark.skip(reason="not yet"))],
)
def test_pairs(a, b):
    assert b == a + 1


@pytest.mark.skip(reason="generated skip")
def test_skipped():
    raise AssertionError("never runs")


@pytest.mark.skipif(sys.platform.startswith("linux"), reason="not on linux")
def test_skipif():
    raise AssertionError("never runs on linux")


def test_runtime_skip():
    pytest.skip("decided at run time")


@pytest.mark.xfail(reason="known bug")
def test_xfail():
    assert {{"a": 1}} == {{"a": 2}}
{optional}

@pytest.fixture(scope="class")
def shared():
    return []


class TestGroup:
    def test_a(self, shared):
        assert shared == []

    def test_b(self, resource):
        assert resource["n"] == {i}

    @pytest.mark.parametrize("x", ["a", "b"])
    def test_c(self, x):
        assert x.isalpha()


class UnitTests(unittest.TestCase):
    def setUp(self):
        self.value = {i}

    def test_one(self):
        self.assertEqual(self.value, {i})

    def test_skip(self):
        self.skipTest("unittest skip")
'''

_MIXED_XPASS = '''

@pytest.mark.xfail(reason="fixed already")
def test_xpass():
    assert True
'''

_MIXED_STRICT = '''

@pytest.mark.xfail(strict=True, reason="strict")
def test_strict_xpass():
    assert True
'''

_MIXED_SETUP_ERROR = '''

@pytest.fixture
def broken():
    raise RuntimeError("fixture set-up failed")


def test_setup_error(broken):
    raise AssertionError("never runs")
'''

_MIXED_TEARDOWN_ERROR = '''

@pytest.fixture
def leaky():
    yield 1
    raise RuntimeError("fixture teardown failed")


def test_teardown_error(leaky):
    assert leaky == 1
'''

_MIXED_MODULE_SKIP = '''\
import pytest

pytest.skip("this platform has no frobnicator", allow_module_level=True)


def test_never():
    raise AssertionError("never collected")
'''


def make_mixed(root: Path, modules: int = 30) -> Suite:
    """``modules`` modules of ~29 tests with every outcome, plus a module-level skip."""
    tests = _project(root, 'markers = ["slow: slow tests"]\nxfail_strict = false\n')
    (tests / "conftest.py").write_text(_MIXED_CONFTEST)
    counts = _counts()
    n = 0
    for i in range(modules):
        fails = i % 5 == 0
        xpass = i % 3 == 0
        strict = i % 10 == 1
        setup_error = i % 7 == 3
        teardown_error = i % 11 == 4
        optional = ""
        # test_plain, fixture, tmp_path, monkeypatch, capsys, warns; pairs 3; TestGroup 4;
        # UnitTests.test_one
        passed = 6 + 3 + 4 + 1 + (7 if fails else 8)
        failed = 1 if fails else 0
        skipped = 1 + 3 + 1  # pairs' skip mark; skip, skipif, runtime; unittest skipTest
        errors = 0
        xpassed = 0
        n_tests = 6 + 8 + 4 + 3 + 1 + 4 + 2
        if xpass:
            optional += _MIXED_XPASS
            xpassed += 1
            n_tests += 1
        if strict:
            optional += _MIXED_STRICT
            failed += 1
            n_tests += 1
        if setup_error:
            optional += _MIXED_SETUP_ERROR
            errors += 1
            n_tests += 1
        if teardown_error:
            optional += _MIXED_TEARDOWN_ERROR
            passed += 1
            errors += 1
            n_tests += 1
        (tests / f"test_mixed_{i:03d}.py").write_text(
            _MIXED_TEST.format(
                i=i,
                work=sum(k * k for k in range(300)),
                fail_at=5 if fails else -1,
                optional=optional,
                pytestmark="pytestmark = pytest.mark.slow\n" if i % 4 == 2 else "",
            )
        )
        for key, value in (("passed", passed), ("failed", failed), ("skipped", skipped),
                           ("errors", errors), ("xpassed", xpassed), ("xfailed", 1)):
            counts[key] += value
        n += n_tests
    (tests / "test_mixed_platform.py").write_text(_MIXED_MODULE_SKIP)
    counts["skipped"] += 1
    return Suite(
        "mixed", root, n, counts,
        f"{n} tests in {modules + 1} modules: failures, skips, xfail/xpass, errors, parametrize",
        params={"modules": modules},
    )


# --------------------------------------------------------------------------------------------

#: name -> generator(root, **sizes) -> Suite
GENERATORS: dict[str, Callable[..., Suite]] = {
    "trivial": make_trivial,
    "heavy_imports": make_heavy_imports,
    "costly_fixture": make_costly_fixture,
    "cpu_bound": make_cpu_bound,
    "mixed": make_mixed,
}

#: Sizes small enough for a unit test that runs pytest on every suite.
TINY: dict[str, dict[str, object]] = {
    "trivial": {"modules": 3, "per_module": 4},
    "heavy_imports": {"test_modules": 2, "pkg_modules": 5, "table": 10},
    "costly_fixture": {"modules": 2, "per_module": 3, "session_s": 0.01,
                       "module_sleep_s": 0.0, "module_cpu_s": 0.001},
    "cpu_bound": {"modules": 2, "per_module": 3, "rounds": 100},
    "mixed": {"modules": 12},
}


def generate(name: str, root: Path, **sizes: object) -> Suite:
    """Write suite ``name`` into ``root`` (``root`` must not hold another suite)."""
    try:
        generator = GENERATORS[name]
    except KeyError:
        raise ValueError(f"unknown suite {name!r}; known: {', '.join(GENERATORS)}") from None
    return generator(root, **sizes)
