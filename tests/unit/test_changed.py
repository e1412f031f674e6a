"""The selection of ``--changed-since`` (:mod:`tach.changed`) and the import graph it reads
(:mod:`tach.graph`), on files written by each test."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

from tach.changed import GitChange, _glob, select
from tach.discovery.model import ModuleImport
from tach.graph import ImportGraph


def write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))


def graph_of(root: Path, imports: dict[str, list[tuple[str, str | None]]]) -> ImportGraph:
    return ImportGraph(
        root, {test: [ModuleImport(m, f) for m, f in found] for test, found in imports.items()}
    )


@pytest.mark.parametrize(
    ("pattern", "path", "matches"),
    [
        ("*.md", "README.md", True),
        ("*.md", "docs/guide/index.md", True),
        ("docs/*.md", "docs/guide/index.md", False),
        ("docs/**", "docs/guide/index.md", True),
        ("docs/", "docs/guide/index.md", True),
        ("tests/data/**/*.json", "tests/data/a.json", True),
        ("tests/data/**/*.json", "tests/data/x/y/a.json", True),
        ("tests/data/?.txt", "tests/data/ab.txt", False),
        ("src/pkg/plugins/*.py", "src/pkg/plugins/x.py", True),
        ("../other/**", "../other/lib/a.py", True),
        ("a+b.txt", "a+b.txt", True),
    ],
)
def test_glob(pattern, path, matches):
    assert _glob(pattern)(path) is matches


def test_a_deleted_module_is_found_by_the_names_imports_give(tmp_path):
    write(
        tmp_path,
        {
            "src/shop/__init__.py": "",
            "src/shop/cart.py": "from . import prices\nfrom .gone import X\n",
            "src/helpers.py": "",
            "tests/test_cart.py": "",
            "tests/test_top.py": "",
        },
    )
    graph = graph_of(
        tmp_path,
        {
            "tests/test_cart.py": [("shop.cart", "src/shop/cart.py")],
            "tests/test_top.py": [("helpers", "src/helpers.py")],
        },
    )
    graph.prime()
    (tmp_path / "src/helpers.py").unlink()  # a top-level module, named by `import helpers`
    deleted = {
        tmp_path / "src/shop/prices.py",
        tmp_path / "src/shop/gone/__init__.py",
        tmp_path / "src/helpers.py",
    }
    reached, conftests = graph.importers(deleted)
    assert conftests == set()
    assert reached == {
        tmp_path / "src/shop/prices.py": {tmp_path / "tests/test_cart.py"},
        tmp_path / "src/shop/gone/__init__.py": {tmp_path / "tests/test_cart.py"},
        tmp_path / "src/helpers.py": {tmp_path / "tests/test_top.py"},  # as discovery saw it
    }
    # a new graph reads the test module again: `import helpers` names a file that is gone
    (tmp_path / "tests/test_top.py").write_text("import helpers\n")
    fresh = graph_of(tmp_path, {"tests/test_top.py": [("helpers", None)]})
    fresh.roots = [tmp_path / "src"]
    assert fresh.importers({tmp_path / "src/helpers.py"})[0] == {
        tmp_path / "src/helpers.py": {tmp_path / "tests/test_top.py"}
    }


def test_pytest_plugins_are_imports(tmp_path):
    write(
        tmp_path,
        {
            "src/shop/__init__.py": "",
            "src/shop/fixtures.py": "",
            "src/shop/more.py": "",
            "tests/conftest.py": 'pytest_plugins = ["shop.fixtures"]\n',
            "tests/sub/conftest.py": 'pytest_plugins: tuple = ("shop.more",)\n',
            "tests/test_a.py": "",
            "tests/sub/test_b.py": "",
        },
    )
    graph = graph_of(
        tmp_path,
        {
            "tests/test_a.py": [("shop", "src/shop/__init__.py")],
            "tests/sub/test_b.py": [("shop", "src/shop/__init__.py")],
        },
    )
    assert graph.conftests() == {tmp_path / "tests/conftest.py", tmp_path / "tests/sub/conftest.py"}
    fixtures, more = tmp_path / "src/shop/fixtures.py", tmp_path / "src/shop/more.py"
    reached, conftests = graph.importers({fixtures, more})
    assert reached == {
        fixtures: {tmp_path / "tests/test_a.py", tmp_path / "tests/sub/test_b.py"},
        more: {tmp_path / "tests/sub/test_b.py"},
    }
    assert conftests == {tmp_path / "tests/conftest.py", tmp_path / "tests/sub/conftest.py"}
    tests, unseen = graph.affected([more])
    assert tests == {tmp_path / "tests/sub/test_b.py"} and unseen == []


def test_select_rules(tmp_path):
    write(
        tmp_path,
        {
            "src/shop/__init__.py": "",
            "src/shop/prices.py": "",
            "tests/__init__.py": "",
            "tests/test_prices.py": "",
            "tests/test_other.py": "",
            "tests/doc.txt": "",
        },
    )
    graph = graph_of(
        tmp_path,
        {
            "tests/test_prices.py": [("shop.prices", "src/shop/prices.py")],
            "tests/test_other.py": [],
        },
    )
    files = {tmp_path / "tests/test_prices.py", tmp_path / "tests/test_other.py"}
    files.add(tmp_path / "tests/doc.txt")

    def run(*names: str, deps=()):
        paths = [Path(os.path.normpath(tmp_path / name)) for name in names]
        change = GitChange("main", "0" * 40, True, paths)
        return select(change, graph, files, deps)

    selection = run("src/shop/prices.py", "tests/doc.txt")
    assert not selection.all
    assert selection.files == {tmp_path / "tests/test_prices.py", tmp_path / "tests/doc.txt"}
    selection = run("tests/__init__.py")
    assert selection.dirs == {tmp_path / "tests"} and not selection.all
    selection = run("setup.cfg")
    assert selection.everything == {tmp_path / "setup.cfg": "pytest's or Tach's configuration"}
    # what --watch never watches, and a file outside the rootdir no test imports: nothing
    selection = run("src/shop/__pycache__/prices.cpython-311.pyc", "../elsewhere/notes.txt")
    assert not selection.all and not selection.files and not selection.dirs
    selection = run("requirements-dev.txt")
    assert selection.everything == {tmp_path / "requirements-dev.txt": "the installed packages"}
    # what the user names stands, even for a file that would run every test
    selection = run("setup.cfg", deps=[("setup.cfg", ["tests/test_other.py"])])
    assert not selection.all and selection.dirs == {tmp_path / "tests/test_other.py"}
    selection = run("src/shop/prices.py", deps=[("src/**", [])])
    assert selection.files == {tmp_path / "tests/test_prices.py"}
    assert selection.why[tmp_path / "src/shop/prices.py"] == (
        "--changed-dep src/**; imported by 1 test module"
    )


def test_modules_loaded_by_name_are_what_the_name_can_reach(tmp_path):
    """``import_module``/``__import__``: a constant names its module; a name built from a
    constant beginning, that package's modules; any other name, the loader's own package."""
    write(
        tmp_path,
        {
            "src/app/__init__.py": "",
            "src/app/const.py": "import importlib\nimportlib.import_module('app.extra')\n",
            "src/app/extra.py": "",
            "src/app/prefixed.py": "def load(n):\n    return __import__('app.plugins.' + n)\n",
            "src/app/fstring.py": "from importlib import import_module\n"
            "def load(n):\n    return import_module(f'app.plugins.{n}')\n",
            "src/app/plugins/__init__.py": "",
            "src/app/plugins/one.py": "",
            "src/app/plugins/deep/two.py": "",
            "src/app/styles/__init__.py": "def load(n):\n    return __import__(n)\n",
            "src/app/styles/dark.py": "",
            "tests/test_a.py": "",
        },
    )
    graph = graph_of(tmp_path, {"tests/test_a.py": [("app", "src/app/__init__.py")]})
    src = tmp_path / "src/app"
    assert graph.imports_of(src / "const.py") >= {src / "extra.py"}
    plugins = {src / "plugins/__init__.py", src / "plugins/one.py", src / "plugins/deep/two.py"}
    assert graph.imports_of(src / "prefixed.py") >= plugins
    assert graph.imports_of(src / "fstring.py") >= plugins
    assert src / "extra.py" not in graph.imports_of(src / "prefixed.py")
    styles = graph.imports_of(src / "styles/__init__.py")
    assert src / "styles/dark.py" in styles and src / "plugins/one.py" not in styles
