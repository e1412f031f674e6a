"""Static discovery never silently misses a test pytest collects, and never lists one it does
not: each scenario is a small project collected by ``pytest --collect-only -q`` in a
subprocess and by :func:`discover`; every pytest id must be listed exactly or covered by a
dynamic record, and no exact id may be one pytest does not have."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from tach.discovery.model import TestDef
from tach.listing import discover_tests as discover

#: a library "installed" outside the project: its classes and decorators are not the
#: project's, so static discovery cannot read what they are.
SITE = {
    "somelib/__init__.py": "",
    "somelib/fixtures.py": """
        import pytest

        @pytest.fixture(params=[1, 2])
        def lib_number(request):
            return request.param
    """,
    "somelib/more.py": """
        import pytest

        @pytest.fixture(params=["p", "q"])
        def lib_letter(request):
            return request.param
    """,
    "somelib/testing.py": """
        import unittest

        class SomeTestCase(unittest.TestCase):
            pass

        def parametrize(name, values):
            def deco(f):
                return f
            return deco
    """,
}


def _write(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(textwrap.dedent(text))


def _pytest_ids(root: Path, args: list[str], site: Path | None,
                allow_errors: bool = False) -> list[str]:
    env = dict(os.environ)
    if site is not None:
        env["PYTHONPATH"] = str(site)
    proc = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q",
                           "-p", "no:cacheprovider", *args], cwd=root, capture_output=True,
                          text=True, check=False, env=env)
    if not allow_errors:
        assert "error" not in proc.stdout.lower().rpartition("\n\n")[2], proc.stdout
    return [ln for ln in proc.stdout.splitlines() if "::" in ln]


def _agree(tmp_path: Path, files: dict[str, str], args: list[str] | None = None,
           with_plugins: bool = False,
           allow_errors: bool = False) -> tuple[list[TestDef], list[str]]:
    """Write the project (and :data:`SITE` beside it), compare, return (static, pytest)."""
    root = tmp_path / "project"
    site = tmp_path / "site"
    _write(root, files)
    _write(site, SITE)
    args = args or []
    d = discover(args, invocation_dir=root,
                 use_cache=False, with_plugins=with_plugins, closures=with_plugins,
                 site_packages=[site, *(Path(p) for p in sys.path if p and Path(p).is_dir())])
    collected = _pytest_ids(root, args, site, allow_errors)
    exact = [t.id for t in d.result.tests if not t.dynamic]
    dynamic = [t for t in d.result.tests if t.dynamic]
    uncovered = [i for i in collected if i not in exact and not any(t.covers(i)
                                                                    for t in dynamic)]
    assert uncovered == [], "missing"
    assert sorted(set(exact) - set(collected)) == [], "extra"
    return d.result.tests, collected


def _dynamic(tests: list[TestDef]) -> dict[str, str]:
    return {t.id: t.dynamic for t in tests if t.dynamic}


def test_testcase_base_from_an_installed_library_whatever_the_class_name(
        tmp_path: Path) -> None:
    tests, collected = _agree(tmp_path, {
        "tests/helpers.py": """
            from somelib.testing import SomeTestCase

            class ProjectBase(SomeTestCase):
                def check_helper(self):
                    pass

            class NotATestCase(Exception):
                pass
        """,
        "tests/test_unit.py": """
            import somelib.testing
            from somelib.testing import SomeTestCase
            from helpers import ProjectBase, NotATestCase

            class WidgetChecks(SomeTestCase):
                def test_one(self):
                    pass

                def check_two(self):
                    pass

            class TestGadget(somelib.testing.SomeTestCase):
                def helper_b(self):
                    pass

            class MoreChecks(ProjectBase):
                def test_more(self):
                    pass

            class Error(NotATestCase):
                def test_not_collected(self):
                    pass

            class Disabled(SomeTestCase):
                __test__ = False

                def test_never(self):
                    pass
        """,
    })
    assert "tests/test_unit.py::WidgetChecks::test_one" in collected
    assert "tests/test_unit.py::MoreChecks::test_more" in collected
    dyn = _dynamic(tests)
    assert "may be a unittest.TestCase" in dyn["tests/test_unit.py::WidgetChecks"]
    assert "somelib.testing.SomeTestCase" in dyn["tests/test_unit.py::MoreChecks"]
    # a builtin base is known not to be a TestCase; __test__ = False is respected
    assert "tests/test_unit.py::Error" not in dyn
    assert "tests/test_unit.py::Disabled" not in dyn


def test_decorators_that_are_not_pytest_marks_make_the_test_dynamic(tmp_path: Path) -> None:
    tests, collected = _agree(tmp_path, {
        "tests/helpers.py": """
            import pytest

            def bools(name):
                return pytest.mark.parametrize(name, [False, True])
        """,
        "tests/test_decorated.py": """
            import os
            import unittest
            import pytest
            from somelib.testing import parametrize
            from helpers import bools

            if os.environ.get("NEVER_SET_ANYWHERE"):
                maybe = pytest.mark.parametrize("z", [1, 2])
            else:
                maybe = lambda f: f

            @parametrize("x", [False, True])
            def test_other_lib(x=None):
                pass

            @bools("flag")
            def test_own_decorator(flag):
                pass

            @maybe
            def test_conditional_mark(z=None):
                pass

            @pytest.mark.parametrize("y", [1, 2])
            @unittest.skipIf(False, "never")
            def test_real(y):
                pass
        """,
    })
    assert "tests/test_decorated.py::test_other_lib" in collected
    assert "tests/test_decorated.py::test_own_decorator[True]" in collected
    dyn = _dynamic(tests)
    assert "somelib.testing.parametrize" in dyn["tests/test_decorated.py::test_other_lib"]
    assert "bools" in dyn["tests/test_decorated.py::test_own_decorator"]
    assert "maybe" in dyn["tests/test_decorated.py::test_conditional_mark"]
    exact = [t.id for t in tests if not t.dynamic]
    assert exact == ["tests/test_decorated.py::test_real[1]",
                     "tests/test_decorated.py::test_real[2]"]


def test_star_import_makes_the_module_dynamic(tmp_path: Path) -> None:
    tests, collected = _agree(tmp_path, {
        "tests/helpers.py": "def test_from_helpers():\n    pass\n",
        "tests/test_star.py": "from helpers import *\n\ndef test_own():\n    pass\n",
    })
    assert "tests/test_star.py::test_from_helpers" in collected
    assert "import *" in _dynamic(tests)["tests/test_star.py"]
    assert "tests/test_star.py::test_own" in [t.id for t in tests if not t.dynamic]


#: installed plugins (``pytest11`` entry points): one with fixtures that have ``params``, and
#: one that does what anyio's does (coroutine tests marked ``anyio`` request
#: ``anyio_backend``, whose default has no params).
PLUGINS = {
    "paramplug-1.0.dist-info/METADATA": "Metadata-Version: 2.1\nName: paramplug\nVersion: 1.0\n",
    "paramplug-1.0.dist-info/entry_points.txt": "[pytest11]\nparamplug = paramplug\n",
    "paramplug.py": """
        import pytest

        @pytest.fixture(params=["x", "y"])
        def plugin_flavour(request):
            return request.param

        @pytest.fixture(params=[n * 2 for n in range(3)])
        def plugin_numbers(request):
            return request.param
    """,
    "anyio-9.0.dist-info/METADATA": "Metadata-Version: 2.1\nName: anyio\nVersion: 9.0\n",
    "anyio-9.0.dist-info/entry_points.txt": "[pytest11]\nanyio = anyio.pytest_plugin\n",
    "anyio/__init__.py": "",
    "anyio/pytest_plugin.py": """
        import inspect

        import pytest

        def pytest_configure(config):
            config.addinivalue_line("markers", "anyio: run with anyio")

        @pytest.hookimpl(tryfirst=True)
        def pytest_pycollect_makeitem(collector, name, obj):
            if collector.istestfunction(obj, name) and inspect.iscoroutinefunction(obj):
                marker = collector.get_closest_marker("anyio")
                own = getattr(obj, "pytestmark", ())
                if marker or any(m.name == "anyio" for m in own):
                    pytest.mark.usefixtures("anyio_backend")(obj)

        @pytest.fixture(scope="module")
        def anyio_backend():
            return "asyncio"
    """,
}


def test_plugin_fixture_params_and_conftest_overrides(tmp_path: Path) -> None:
    _write(tmp_path / "site", PLUGINS)
    tests, collected = _agree(tmp_path, {
        "tests/conftest.py": """
            import pytest

            @pytest.fixture(params=["asyncio", "trio"])
            def anyio_backend(request):
                return request.param
        """,
        "tests/test_plugged.py": """
            import pytest

            def test_flavour(plugin_flavour):
                pass

            def test_numbers(plugin_numbers):
                pass

            @pytest.mark.anyio
            async def test_backends():
                pass

            async def test_not_marked():
                pass
        """,
        "other/test_default_backend.py": """
            import pytest

            pytestmark = pytest.mark.anyio

            async def test_default():
                pass
        """,
    })
    assert "tests/test_plugged.py::test_backends[trio]" in collected
    exact = [t.id for t in tests if not t.dynamic]
    assert exact == [
        "other/test_default_backend.py::test_default",
        "tests/test_plugged.py::test_flavour[x]",
        "tests/test_plugged.py::test_flavour[y]",
        "tests/test_plugged.py::test_backends[asyncio]",
        "tests/test_plugged.py::test_backends[trio]",
        "tests/test_plugged.py::test_not_marked",
    ]
    assert "plugin_numbers" in _dynamic(tests)["tests/test_plugged.py::test_numbers"]


DOCTESTS = {
    "pkg/__init__.py": '''
        """The package.

        >>> 1 + 1
        2
        """
    ''',
    "pkg/sub/__init__.py": "",
    "pkg/sub/shapes.py": '''
        """No examples in this one."""
        import pytest

        from pkg.sub.other import imported_here

        def zeta():
            """
            >>> zeta()
            """

        zeta_again = zeta  # found once, as zeta (the name bound first)

        class Widget:
            """
            >>> Widget() is not None
            True
            """

            def method(self):
                """>>> 1
                1
                """

            @property
            def size(self):
                """
                >>> 2
                2
                """

            @staticmethod
            def make():
                """
                >>> 3
                3
                """

            class Inner:
                def deep(self):
                    """
                    >>> 4
                    4
                    """

        @pytest.mark.slow
        def alpha():
            """
            >>> 5
            5
            """

        def no_examples():
            """Mentions the >>> prompt mid-line only."""
    ''',
    "pkg/sub/other.py": '''
        import functools

        def imported_here():
            """
            >>> 6
            6
            """

        def deco(f):
            @functools.wraps(f)
            def wrapper(*a):
                return f(*a)
            return wrapper

        @deco
        def wrapped():
            """
            >>> 7
            7
            """
    ''',
    "pkg/__main__.py": '"""\n>>> 1\n1\n"""\n',
    "setup.py": 'from setuptools import setup\n"""\n>>> 1\n1\n"""\n',
    "tests/conftest.py": '''
        def helper():
            """
            >>> 8
            8
            """
    ''',
    "tests/test_mixed.py": '''
        def helper():
            """
            >>> 9
            9
            """

        def test_plain():
            pass
    ''',
    "tests/test_guide.txt": "A guide.\n\n>>> 1 + 1\n2\n",
    "tests/notes.txt": ">>> 1\n1\n",
    "docs/howto.rst": "How to.\n\n>>> 3\n3\n",
}


def test_doctest_modules_from_addopts(tmp_path: Path) -> None:
    files = {**DOCTESTS, "pytest.ini": "[pytest]\naddopts = --doctest-modules\n"}
    tests, collected = _agree(tmp_path, files)
    exact = [t.id for t in tests if not t.dynamic]
    assert exact == [
        "pkg/__init__.py::pkg",
        "pkg/sub/shapes.py::pkg.sub.shapes.Widget",
        "pkg/sub/shapes.py::pkg.sub.shapes.Widget.Inner.deep",
        "pkg/sub/shapes.py::pkg.sub.shapes.Widget.make",
        "pkg/sub/shapes.py::pkg.sub.shapes.Widget.method",
        "pkg/sub/shapes.py::pkg.sub.shapes.Widget.size",
        "pkg/sub/shapes.py::pkg.sub.shapes.alpha",
        "pkg/sub/shapes.py::pkg.sub.shapes.zeta",
        "tests/conftest.py::conftest.helper",
        "tests/test_guide.txt::test_guide.txt",
        "tests/test_mixed.py::test_mixed.helper",
        "tests/test_mixed.py::test_plain",
    ]
    assert exact == [i for i in collected if i in set(exact)]  # pytest's order
    # a decorator from elsewhere may replace the function: the module's doctests are dynamic
    assert "decorated by deco" in _dynamic(tests)["pkg/sub/other.py"]


def test_doctest_modules_and_glob_from_pytest_addopts(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("PYTEST_ADDOPTS", "--doctest-modules --doctest-glob=*.rst")
    tests, collected = _agree(tmp_path, {**DOCTESTS, "pkg/sub/other.py": '''
        def imported_here():
            pass

        __test__ = {"extra": ">>> 1\\n1\\n"}
    '''})
    assert "docs/howto.rst::howto.rst" in [t.id for t in tests if not t.dynamic]
    assert "tests/test_guide.txt::test_guide.txt" not in collected  # the glob replaces test*.txt
    assert "__test__" in _dynamic(tests)["pkg/sub/other.py"]


def test_doctest_text_files_without_doctest_modules(tmp_path: Path) -> None:
    tests, _ = _agree(tmp_path, DOCTESTS)
    assert [t.id for t in tests if not t.dynamic] == [
        "tests/test_guide.txt::test_guide.txt", "tests/test_mixed.py::test_plain"]


def test_doctest_modules_on_the_command_line(tmp_path: Path) -> None:
    _, collected = _agree(tmp_path, DOCTESTS, ["--doctest-modules", "pkg/sub/shapes.py"])
    assert len(collected) == 7


def test_doctests_of_a_package_also_installed_are_dynamic(tmp_path: Path) -> None:
    # pytest imports an installed copy when something imported it first (pytest itself
    # imports ``packaging``): every doctest module of the project copy then fails with an
    # "import file mismatch" (packaging's own suite under --doctest-modules does).
    root = tmp_path / "project"
    installed = tmp_path / "venv" / "lib" / "python3" / "site-packages"
    _write(root, {"pytest.ini": "[pytest]\naddopts = --doctest-modules\n",
                  "src/pkg/__init__.py": '"""\n>>> 1\n1\n"""\n',
                  "tool.py": 'def f():\n    """\n    >>> 2\n    2\n    """\n'})
    _write(installed, {"pkg/__init__.py": ""})
    d = discover(invocation_dir=root, use_cache=False, with_plugins=False, closures=False,
                 site_packages=[installed])
    assert [(t.id, bool(t.dynamic)) for t in d.result.tests] == [
        ("src/pkg/__init__.py", True), ("tool.py::tool.f", False)]
    assert "pkg is also installed" in d.result.tests[0].dynamic


def test_fixtures_of_installed_modules_named_by_pytest_plugins_and_p(tmp_path: Path) -> None:
    tests, _ = _agree(tmp_path, {
        "pytest.ini": "[pytest]\naddopts = -p somelib.more\n",
        "conftest.py": 'pytest_plugins = ["somelib.fixtures"]\n',
        "test_lib.py": "def test_number(lib_number):\n    pass\n\n"
                       "def test_letter(lib_letter):\n    pass\n",
    })
    assert [t.id for t in tests if not t.dynamic] == [
        "test_lib.py::test_number[1]", "test_lib.py::test_number[2]",
        "test_lib.py::test_letter[p]", "test_lib.py::test_letter[q]"]


def test_a_docstring_the_doctest_parser_rejects_makes_the_module_dynamic(
        tmp_path: Path) -> None:
    # pytest reports the module's collection error and collects none of its doctests
    tests, collected = _agree(tmp_path, {
        "pytest.ini": "[pytest]\naddopts = --doctest-modules\n",
        "bad.py": 'def f():\n    """\n    >>>1\n    """\n\ndef g():\n    """\n    >>> 2\n'
                  '    2\n    """\n',
        "good.py": 'def h():\n    """\n    >>> 3\n    3\n    """\n',
    }, allow_errors=True)
    assert collected == ["good.py::good.h"]
    assert "not a valid doctest" in _dynamic(tests)["bad.py"]


def test_autouse_fixture_params_do_not_parametrize_doctest_items(tmp_path: Path) -> None:
    files = {
        "pytest.ini": "[pytest]\naddopts = --doctest-modules\n",
        "conftest.py": "import pytest\n\n@pytest.fixture(autouse=True, params=[1, 2])\n"
                       "def each(request):\n    return request.param\n",
        "mod.py": 'def f():\n    """\n    >>> 1\n    1\n    """\n',
        "test_mod.py": "def test_x():\n    pass\n",
        "test_text.txt": ">>> 2\n2\n",
    }
    expected = ["mod.py::mod.f", "test_mod.py::test_x[1]", "test_mod.py::test_x[2]",
                "test_text.txt::test_text.txt"]
    for full in (False, True):  # ``tach list -q``, then ``tach --format=json list``
        tests, collected = _agree(tmp_path / str(full), files, with_plugins=full)
        assert [t.id for t in tests if not t.dynamic] == expected == collected


def test_callables_bound_to_expressions_and_test_attributes(tmp_path: Path) -> None:
    tests, collected = _agree(tmp_path, {"test_bound.py": """
        import functools
        import unittest

        def test_off():
            pass

        test_off.__test__ = False

        def check_on():
            pass

        check_on.__test__ = True

        def _base(x=1):
            pass

        test_partial = functools.partial(_base, x=2)
        test_data = [1, 2]  # not callable: not a test

        class TestWithLambda:
            test_lambda = lambda self: None  # noqa: E731

            def test_ok(self):
                pass

        class Case(unittest.TestCase):
            test_also = lambda self: None  # noqa: E731
    """})
    assert {"test_bound.py::check_on", "test_bound.py::test_partial",
            "test_bound.py::TestWithLambda::test_lambda",
            "test_bound.py::Case::test_also"} <= set(collected)
    assert "test_bound.py::test_off" not in collected
    dyn = _dynamic(tests)
    assert "__test__ is assigned" in dyn["test_bound.py::test_off"]
    assert "test_bound.py::test_data" not in dyn
    assert [t.id for t in tests if not t.dynamic] == ["test_bound.py::TestWithLambda::test_ok"]


def test_class_decorators_that_are_not_marks_make_the_class_dynamic(tmp_path: Path) -> None:
    tests, collected = _agree(tmp_path, {"test_decorated_class.py": """
        import dataclasses
        import functools
        import pytest

        def add_tests(cls):
            cls.test_added = lambda self: None
            return cls

        @add_tests
        class TestExtended:
            def test_own(self):
                pass

        @dataclasses.dataclass
        class TestData:  # has __init__ now: pytest does not collect it
            def test_never(self):
                pass

        @functools.total_ordering
        @pytest.mark.slow
        class TestPlain:
            def __lt__(self, other):
                return False

            def test_plain(self):
                pass
    """})
    assert "test_decorated_class.py::TestExtended::test_added" in collected
    dyn = _dynamic(tests)
    assert "add_tests" in dyn["test_decorated_class.py::TestExtended"]
    assert "dataclass" in dyn["test_decorated_class.py::TestData"]
    assert [t.id for t in tests if not t.dynamic] == [
        "test_decorated_class.py::TestPlain::test_plain"]


def test_hypothesis_given_arguments_are_not_fixtures(tmp_path: Path) -> None:
    # a conftest fixture of the same name as a @given argument does not parametrize the test:
    # hypothesis hides the arguments its strategies fill (the rightmost ones, and by keyword)
    tests, collected = _agree(tmp_path, {
        "tests/conftest.py": """
            import pytest

            @pytest.fixture(params=[False, True])
            def slots(request):
                return request.param

            @pytest.fixture(params=["a", "b"])
            def flavour(request):
                return request.param
        """,
        "tests/test_given.py": """
            from hypothesis import given
            from hypothesis.strategies import booleans

            class TestHash:
                @given(booleans(), booleans())
                def test_positional(self, slots, cache_hash):
                    pass

            @given(cache_hash=booleans())
            def test_keyword(slots, cache_hash):
                pass

            @given(booleans())
            def test_fixture_and_strategy(flavour, cache_hash):
                pass
        """,
    }, with_plugins=True)
    assert "tests/test_given.py::TestHash::test_positional" in collected
    assert "tests/test_given.py::test_keyword[False]" in collected
    assert "tests/test_given.py::test_fixture_and_strategy[a]" in collected
    exact = {t.id for t in tests if not t.dynamic}
    assert "tests/test_given.py::TestHash::test_positional" in exact
    assert "tests/test_given.py::test_keyword[True]" in exact


def test_files_a_run_time_ignore_list_may_leave_out_are_dynamic(tmp_path: Path) -> None:
    # collect_ignore_glob filled under Python-version conditions: static discovery cannot tell
    # which branch runs, so the files any branch names are covered by dynamic records, and
    # the others are listed exactly
    tests, collected = _agree(tmp_path, {
        "tests/conftest.py": """
            import sys

            collect_ignore_glob = []
            if sys.version_info < (3, 99):
                collect_ignore_glob.append("test_*_future.py")
            if sys.version_info < (3, 0):
                collect_ignore_glob.append("test_now.py")
        """,
        "tests/test_syntax_future.py": "def test_future():\n    pass\n",
        "tests/test_now.py": "def test_now():\n    pass\n",
        "tests/test_plain.py": "def test_plain():\n    pass\n",
    })
    assert "tests/test_syntax_future.py::test_future" not in collected
    exact = {t.id for t in tests if not t.dynamic}
    assert exact == {"tests/test_plain.py::test_plain"}
    assert "may be left out at run time" in _dynamic(tests)["tests/test_now.py::test_now"]


def test_a_module_as_a_parameter_is_named_by_its_dotted_name(tmp_path: Path) -> None:
    # pytest names a module parameter by its __name__: a package's is not "__init__"
    tests, collected = _agree(tmp_path, {
        "tests/conftest.py": "",
        "mypkg/__init__.py": "",
        "mypkg/sub.py": "",
        "tests/test_mods.py": """
            import pytest
            import mypkg
            import mypkg.sub as sub
            from mypkg import sub as sub_too

            @pytest.mark.parametrize("mod", [mypkg, sub])
            def test_named(mod):
                pass

            @pytest.mark.parametrize("mod", [sub_too])
            def test_reached_otherwise(mod):
                pass
        """,
    })
    assert "tests/test_mods.py::test_named[mypkg]" in collected
    assert "tests/test_mods.py::test_named[mypkg.sub]" in collected
    exact = {t.id for t in tests if not t.dynamic}
    named = {"tests/test_mods.py::test_named[mypkg]", "tests/test_mods.py::test_named[mypkg.sub]"}
    assert named <= exact


def test_a_module_that_must_fail_to_import_is_one_dynamic_record(tmp_path: Path) -> None:
    # pytest collects nothing from a module whose import fails (a collection error): a module
    # that imports a module found nowhere, or reads a missing file while it is imported (a
    # source distribution without its test data), is covered by one dynamic record; guarded
    # imports and files that exist leave the module's tests listed exactly
    tests, collected = _agree(tmp_path, {
        "tests/helpers.py": "VALUE = 1\n",
        "tests/present.txt": "here\n",
        "tests/test_missing_module.py": """
            import helpers
            from not_a_module_anywhere.sub import thing

            def test_a():
                pass
        """,
        "tests/test_missing_data.py": """
            import pathlib

            import pytest

            @pytest.mark.parametrize("text", [pathlib.Path("tests/data/gone.txt").read_text()])
            def test_b(text):
                pass
        """,
        "tests/test_missing_beside.py": """
            import os

            class TestData:
                with_data = open(os.path.join(os.path.dirname(__file__), "absent.json"))

                def test_c(self):
                    pass
        """,
        "tests/test_present_data.py": """
            from pathlib import Path

            import helpers

            TEXT = (Path(__file__).resolve().parent / "present.txt").read_text()
            try:
                import not_a_module_anywhere
            except ImportError:
                not_a_module_anywhere = None

            def later():
                return open("tests/never/read.txt").read()

            def test_d():
                assert TEXT == "here\\n"
        """,
    }, allow_errors=True)
    assert [i for i in collected if "missing" in i] == []
    dynamic = _dynamic(tests)
    assert "imports not_a_module_anywhere.sub (line 3)" in dynamic["tests/test_missing_module.py"]
    assert "reads tests/data/gone.txt" in dynamic["tests/test_missing_data.py"]
    assert "reads absent.json" in dynamic["tests/test_missing_beside.py"]
    assert [t.id for t in tests if not t.dynamic] == ["tests/test_present_data.py::test_d"]


def test_files_an_ignore_hook_names_are_dynamic(tmp_path: Path) -> None:
    # a conftest's pytest_ignore_collect decides at run time: the files whose path holds a
    # string its body names, or lies below a path it builds from __file__, may be left out
    # (dynamic); the others are listed exactly. A hook that names nothing may leave out any.
    tests, collected = _agree(tmp_path, {
        "tests/conftest.py": """
            import os
            from pathlib import Path

            def pytest_ignore_collect(collection_path, config):
                if Path(__file__).parent / "extras" / "saml" in collection_path.parents:
                    return os.environ.get("WITH_SAML") != "1"
                if collection_path.name == "test_legacy.py":
                    return True
                return None
        """,
        "tests/extras/saml/test_saml.py": "def test_saml():\n    pass\n",
        "tests/extras/test_oauth.py": "def test_oauth():\n    pass\n",
        "tests/test_legacy.py": "def test_legacy():\n    pass\n",
        "tests/test_plain.py": "def test_plain():\n    pass\n",
        "other/conftest.py": """
            def pytest_ignore_collect(collection_path, config):
                return collection_path.stat().st_size > 10**6
        """,
        "other/test_other.py": "def test_other():\n    pass\n",
    })
    assert "tests/extras/saml/test_saml.py::test_saml" not in collected
    assert "tests/test_legacy.py::test_legacy" not in collected
    exact = {t.id for t in tests if not t.dynamic}
    assert exact == {"tests/extras/test_oauth.py::test_oauth", "tests/test_plain.py::test_plain"}
    dynamic = _dynamic(tests)
    assert "names 'extras/saml'" in dynamic["tests/extras/saml/test_saml.py::test_saml"]
    assert "names 'test_legacy.py'" in dynamic["tests/test_legacy.py::test_legacy"]
    other = dynamic["other/test_other.py::test_other"]
    assert "pytest_ignore_collect (other/conftest.py:2)" in other
