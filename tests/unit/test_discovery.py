"""Static discovery against pytest itself: each scenario is a small project written to a tmp
dir, collected by ``pytest --collect-only -q`` in a subprocess and by :func:`discover`."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tach.discovery import CollectOptions
from tach.discovery.model import TestDef
from tach.listing import discover_tests as discover


def _write(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(textwrap.dedent(text))


def _pytest_ids(root: Path, args: list[str]) -> list[str]:
    proc = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q",
                           "-p", "no:cacheprovider", *args], cwd=root, capture_output=True,
                          text=True, check=False)
    return [ln for ln in proc.stdout.splitlines() if "::" in ln]


def _agree(root: Path, args: list[str] | None = None) -> tuple[list[TestDef], list[str]]:
    args = args or []
    d = discover([a for a in args if not a.startswith("-")], invocation_dir=root,
                 use_cache=False, with_plugins=False)
    collected = _pytest_ids(root, args)
    exact = [t.id for t in d.result.tests if not t.dynamic]
    dynamic = [t for t in d.result.tests if t.dynamic]
    uncovered = [i for i in collected if i not in exact and not any(t.covers(i)
                                                                    for t in dynamic)]
    assert uncovered == [], "missing"
    assert sorted(set(exact) - set(collected)) == [], "extra"
    assert exact == [i for i in collected if i in set(exact)], "order"
    return d.result.tests, collected


SCENARIOS: dict[str, dict[str, str]] = {
    "inheritance_and_imports": {
        "pytest.ini": "[pytest]\n",
        "tests/test_base.py": """
            class TestBase:
                def test_base(self):
                    pass

                def test_overridden(self):
                    pass

            def test_shared():
                pass
        """,
        "tests/test_child.py": """
            from test_base import TestBase, test_shared
            from test_base import test_shared as test_alias_import

            class TestChild(TestBase):
                def test_overridden(self):
                    pass

                def test_child(self):
                    pass

            class TestGrand(TestChild):
                class TestInner:
                    def test_deep(self):
                        pass

            check = test_shared
            test_again = test_shared
        """,
    },
    "unittest_and_config_globs": {
        "pytest.ini": """
            [pytest]
            python_files = check_*.py
            python_classes = *Suite
            python_functions = check_* verify
        """,
        "check_things.py": """
            import unittest
            from unittest import TestCase

            class Base(TestCase):
                def test_from_base(self):
                    pass

            class Whatever(Base):
                def test_z(self):
                    pass

                def test_a(self):
                    pass

                def check_not_unittest(self):
                    pass

            class OnlyRunTest(unittest.TestCase):
                def runTest(self):
                    pass

            class MySuite:
                def check_one(self):
                    pass

                def verify_two(self):
                    pass

                def test_not_matched(self):
                    pass

            def check_fn():
                pass

            def test_fn():
                pass
        """,
        "test_ignored_by_python_files.py": "def test_x():\n    pass\n",
    },
    "not_collected": {
        "pytest.ini": "[pytest]\nfilterwarnings = ignore\n",
        "test_nc.py": """
            import abc
            import pytest

            class TestInit:
                def __init__(self):
                    pass

                def test_x(self):
                    pass

            class WithInitBase:
                def __init__(self):
                    pass

            class TestInheritsInit(WithInitBase):
                def test_x(self):
                    pass

            class TestOff:
                __test__ = False

                def test_x(self):
                    pass

            class TestAbstract(abc.ABC):
                @abc.abstractmethod
                def helper(self): ...

                def test_x(self):
                    pass

            @pytest.fixture
            def test_looks_like_test():
                return 1

            test_value = 3

            def test_real():
                pass
        """,
        "test_module_off.py": "__test__ = False\ndef test_x():\n    pass\n",
    },
    "params": {
        "pytest.ini": "[pytest]\n",
        "test_p.py": """
            import enum
            import pytest

            CASES = [(1, "a"), (2, "b")]
            NAMES = "x, y"

            def helper():
                pass

            class Thing:
                pass

            pytestmark = pytest.mark.parametrize("m", [0])

            @pytest.mark.parametrize(NAMES, CASES)
            def test_constants(m, x, y):
                pass

            @pytest.mark.parametrize("v", [helper, Thing, int, "€", b"\\xff", 1e400, -0.5,
                                           3j, "", "a-b", [1], {"k": 1}, Thing()])
            def test_value_kinds(m, v):
                pass

            @pytest.mark.parametrize("v", ["1", "1", "1_0", 1])
            def test_dupes(m, v):
                pass

            @pytest.mark.parametrize("a,", [(1,), (2,)])
            def test_trailing_comma(m, a):
                pass

            @pytest.mark.parametrize("v", range(3))
            def test_range(m, v):
                pass

            @pytest.mark.parametrize("v", [pytest.param(1, marks=[pytest.mark.skip]),
                                           pytest.param(2, id="två")])
            def test_param(m, v):
                pass

            @pytest.mark.parametrize("v", [1, 2], ids=["a", None])
            @pytest.mark.parametrize("w", [1, 2], ids=str)
            def test_ids_callable_is_dynamic(m, v, w):
                pass

            class TestCls:
                pytestmark = [pytest.mark.parametrize("c", ["p", "q"])]

                @pytest.mark.parametrize("d", [True, None])
                def test_method(self, m, c, d):
                    pass
        """,
    },
    "walk": {
        "pytest.ini": "[pytest]\nnorecursedirs = skipme\n",
        "conftest.py": "collect_ignore = ['tests/test_ign.py']\n"
                       "collect_ignore_glob = ['*_glob.py']\n",
        "tests/test_a.py": "def test_a():\n    pass\n",
        "tests/test_ign.py": "def test_a():\n    pass\n",
        "tests/test_b_glob.py": "def test_a():\n    pass\n",
        "tests/skipme/test_c.py": "def test_a():\n    pass\n",
        "tests/venvlike/pyvenv.cfg": "",
        "tests/venvlike/test_d.py": "def test_a():\n    pass\n",
        "tests/pkg/__init__.py": "",
        "tests/pkg/test_e.py": "def test_a():\n    pass\n",
        "tests/pkg/sub/test_f.py": "def test_a():\n    pass\n",
        "tests/z_test.py": "def test_z():\n    pass\n",
        "tests/Test_upper.py": "def test_u():\n    pass\n",
    },
    "dynamic_module": {
        "pytest.ini": "[pytest]\n",
        "test_skip.py": """
            import pytest
            pytest.importorskip("module_that_does_not_exist_anywhere")

            def test_x():
                pass
        """,
        "test_gen.py": """
            def pytest_generate_tests(metafunc):
                if "n" in metafunc.fixturenames:
                    metafunc.parametrize("n", [1, 2])

            def test_n(n):
                pass
        """,
        "test_cond.py": """
            import sys
            if sys.version_info >= (3, 0):
                def test_new():
                    pass
            else:
                def test_old():
                    pass
        """,
    },
}


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_scenario_agrees_with_pytest(tmp_path: Path, name: str) -> None:
    _write(tmp_path, SCENARIOS[name])
    _agree(tmp_path)


def test_inherited_and_imported_tests_have_their_def_lines(tmp_path: Path) -> None:
    _write(tmp_path, SCENARIOS["inheritance_and_imports"])
    tests, _ = _agree(tmp_path)
    by_id = {t.id: t for t in tests}
    child = by_id["tests/test_child.py::TestChild::test_base"]
    assert (child.line, child.def_file, child.classes) == (3, "tests/test_base.py",
                                                           ("TestChild",))
    alias = by_id["tests/test_child.py::test_again"]
    assert (alias.name, alias.line, alias.def_file) == ("test_again", 9, "tests/test_base.py")
    assert "tests/test_child.py::TestGrand::TestInner::test_deep" in by_id


def test_param_scenario_dynamic_reasons(tmp_path: Path) -> None:
    _write(tmp_path, SCENARIOS["params"])
    tests, _ = _agree(tmp_path)
    dyn = {t.id: t.dynamic for t in tests if t.dynamic}
    assert list(dyn) == ["test_p.py::test_ids_callable_is_dynamic"]
    assert "callable" in dyn["test_p.py::test_ids_callable_is_dynamic"]


def test_dynamic_module_reasons(tmp_path: Path) -> None:
    _write(tmp_path, SCENARIOS["dynamic_module"])
    tests, _ = _agree(tmp_path)
    reasons = {t.id: t.dynamic for t in tests}
    assert "importorskip" in reasons["test_skip.py::test_x"]
    assert "pytest_generate_tests" in reasons["test_gen.py::test_n"]
    assert "conditional" in reasons["test_cond.py::test_new"]


@pytest.mark.parametrize(
    "args",
    [
        ["tests/test_child.py::TestChild"],
        ["tests/test_child.py::TestChild::test_base", "tests/test_base.py::test_shared"],
        ["tests/test_base.py", "tests"],
    ],
)
def test_node_id_arguments(tmp_path: Path, args: list[str]) -> None:
    _write(tmp_path, SCENARIOS["inheritance_and_imports"])
    _agree(tmp_path, args)


@pytest.mark.parametrize(("option", "expr"), [("-k", "TestChild and not base"),
                                               ("-k", "test_child.py"),
                                               ("-m", "parametrize and not skip")])
def test_keyword_and_mark_expressions(tmp_path: Path, option: str, expr: str) -> None:
    _write(tmp_path, {**SCENARIOS["inheritance_and_imports"], **{
        "tests/test_marks.py": """
            import pytest

            @pytest.mark.parametrize("v", [1, pytest.param(2, marks=pytest.mark.skip)])
            def test_m(v):
                pass
        """}})
    opts = CollectOptions(keyword=expr if option == "-k" else None,
                          markexpr=expr if option == "-m" else None)
    d = discover(invocation_dir=tmp_path, options=opts, use_cache=False, with_plugins=False)
    assert [t.id for t in d.result.tests] == _pytest_ids(tmp_path, [option, expr])


def test_syntax_error_is_an_error_and_others_still_listed(tmp_path: Path) -> None:
    _write(tmp_path, {"pytest.ini": "[pytest]\n", "test_ok.py": "def test_ok():\n    pass\n",
                      "test_bad.py": "x = 1\ndef test_bad(:\n    pass\n"})
    d = discover(invocation_dir=tmp_path, use_cache=False, with_plugins=False)
    assert [t.id for t in d.result.tests] == ["test_ok.py::test_ok"]
    [err] = d.result.errors
    assert (err.file, err.line) == ("test_bad.py", 2) and "SyntaxError" in err.message


def test_conftest_collect_file_hook_is_a_dynamic_directory(tmp_path: Path) -> None:
    _write(tmp_path, {"pytest.ini": "[pytest]\n", "data/conftest.py": """
        import pytest

        class Item(pytest.Item):
            def runtest(self):
                pass

        def pytest_collect_file(parent, file_path):
            if file_path.suffix == ".txt":
                return pytest.File.from_parent(parent, path=file_path)
        """, "data/a.txt": "x"})
    d = discover(invocation_dir=tmp_path, use_cache=False, with_plugins=False)
    [t] = d.result.tests
    assert t.id == "data/" and "pytest_collect_file" in (t.dynamic or "")
    assert t.covers("data/a.txt::x")


def test_imports_are_resolved_to_project_files(tmp_path: Path) -> None:
    _write(tmp_path, {"pytest.ini": "[pytest]\n", "src/lib/__init__.py": "",
                      "src/lib/core.py": "", "tests/test_i.py": """
        import os
        import lib.core
        from lib import core
        def test_x():
            import json
    """})
    d = discover(invocation_dir=tmp_path, use_cache=False, with_plugins=False)
    got = {(i.module, i.file) for i in d.result.imports["tests/test_i.py"]}
    assert ("os", None) in got and ("json", None) in got
    assert ("lib.core", "src/lib/core.py") in got
    assert ("lib.core", "src/lib/core.py") in got and ("lib", "src/lib/__init__.py") in got
