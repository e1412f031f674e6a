"""``--changed-since REF`` through the real CLI, on a git repository made by each test: which
tests a change selects (by imports, conftests, configuration, data files), that a change which
breaks a module fails nothing outside the selection, and the errors."""

from __future__ import annotations

import os
import subprocess
import textwrap
from pathlib import Path

import jsonschema
import pytest

from tach.reporter.json import schema

from ._run import outcomes, run_tach

FILES = {
    "pyproject.toml": """
        [tool.pytest.ini_options]
        testpaths = ["tests"]
        pythonpath = ["src"]
    """,
    "README.md": "A shop.\n",
    "src/shop/__init__.py": "",
    "src/shop/prices.py": "def price():\n    return 10\n",
    "src/shop/cart.py": """
        from shop.prices import price


        def total(n):
            return price() * n
    """,
    "src/shop/tax.py": "RATE = 0.25\n",
    "src/shop/registry.py": """
        import importlib


        def load(name):
            return importlib.import_module("shop.plugins." + name)
    """,
    "src/shop/plugins/__init__.py": "",
    "src/shop/plugins/card.py": "NAME = 'card'\n",
    "src/shop/unused.py": "X = 1\n",
    "tests/__init__.py": "",
    "tests/test_prices.py": """
        from shop.prices import price


        def test_price():
            assert price() == 10
    """,
    "tests/test_cart.py": """
        from shop import cart


        def test_total():
            assert cart.total(3) == 30
    """,
    "tests/test_plain.py": """
        import pytest


        @pytest.mark.parametrize("n", [1, 2, 3])
        def test_plain(n):
            assert n
    """,
    "tests/test_dynamic.py": """
        from shop.registry import load


        def test_plugin():
            assert load("card").NAME == "card"
    """,
    "tests/test_data.py": """
        from pathlib import Path


        def test_data():
            assert (Path(__file__).parent / "data" / "expected.txt").read_text() == "42\\n"
    """,
    "tests/data/expected.txt": "42\n",
    "tests/api/__init__.py": "",
    "tests/api/conftest.py": """
        import pytest

        from shop.tax import RATE


        @pytest.fixture
        def rate():
            return RATE
    """,
    "tests/api/test_api.py": """
        def test_rate(rate):
            assert rate == 0.25


        def test_other():
            pass
    """,
}

ALL = {
    "tests/test_prices.py::test_price",
    "tests/test_cart.py::test_total",
    "tests/test_plain.py::test_plain[1]",
    "tests/test_plain.py::test_plain[2]",
    "tests/test_plain.py::test_plain[3]",
    "tests/test_dynamic.py::test_plugin",
    "tests/test_data.py::test_data",
    "tests/api/test_api.py::test_rate",
    "tests/api/test_api.py::test_other",
}


def git(root: Path, *args: str) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@localhost",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@localhost",
    }
    done = subprocess.run(
        ["git", *args], cwd=root, env=env, capture_output=True, text=True, check=True
    )
    return done.stdout


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    """The project above, committed on ``main``."""
    root = tmp_path / "shop"
    for name, text in FILES.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"))
    (root / ".gitignore").write_text(".tach/\n.pytest_cache/\n__pycache__/\n")
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "shop")
    return root


def changed(root: Path, *args: str) -> tuple[dict, dict[str, str], subprocess.CompletedProcess]:
    """A ``--changed-since`` run: its ``changed_since`` of ``run_start``, outcomes, process."""
    events, result = run_tach(root, "-n", "2", *args)
    assert events, result.stderr
    return events[0].get("changed_since"), outcomes(events), result


def append(path: Path, text: str) -> None:
    with path.open("a") as file:
        file.write(text)


def test_nothing_changed_runs_nothing_and_is_no_failure(shop):
    selection, found, result = changed(shop, "--changed-since", "main")
    assert result.returncode == 0, result.stderr
    assert found == {}
    assert selection["tests"] == 0 and selection["of_tests"] == len(ALL)
    assert selection["changed"] == {} and selection["everything"] == {}
    assert "0 changed files select 0 of 9 tests, in 0 of 6 test files" in result.stderr


def test_a_module_selects_the_tests_its_importers_reach(shop):
    append(shop / "src/shop/prices.py", "# a comment\n")
    events, result = run_tach(shop, "-n", "2", "--changed-since", "main")
    assert result.returncode == 0, result.stderr
    validator = jsonschema.Draft202012Validator(schema())
    for event in events:
        validator.validate(event)
    selection, found = events[0]["changed_since"], outcomes(events)
    assert set(found) == {"tests/test_prices.py::test_price", "tests/test_cart.py::test_total"}
    assert selection["changed"] == {"src/shop/prices.py": "imported by 2 test modules"}
    assert (selection["tests"], selection["modules"], selection["of_modules"]) == (2, 2, 6)
    assert selection["ref"] == "main" and selection["merge_base"] is True
    assert selection["base"] == git(shop, "rev-parse", "main").strip()


def test_a_module_that_breaks_fails_nothing_outside_the_selection(shop):
    """The selection is a superset of the tests whose outcome the change alters: compared
    with a full run of the changed tree."""
    (shop / "src/shop/prices.py").write_text("raise RuntimeError('broken')\n")
    _, selected, _ = changed(shop, "--changed-since", "main")
    events, _ = run_tach(shop, "-n", "2")
    full = outcomes(events)
    altered = {test for test, status in full.items() if status != "pass"}
    assert altered and altered <= set(selected)
    assert {test: full[test] for test in selected} == selected


def test_a_module_a_conftest_imports_selects_the_tests_below_it(shop):
    append(shop / "src/shop/tax.py", "OTHER = 1\n")
    selection, found, _ = changed(shop, "--changed-since", "main")
    assert set(found) == {"tests/api/test_api.py::test_rate", "tests/api/test_api.py::test_other"}
    assert selection["changed"] == {"src/shop/tax.py": "imported by 1 test module"}


def test_a_conftest_selects_its_directory(shop):
    append(shop / "tests/api/conftest.py", "\n")
    _, found, _ = changed(shop, "--changed-since", "main")
    assert set(found) == {"tests/api/test_api.py::test_rate", "tests/api/test_api.py::test_other"}


def test_staged_unstaged_and_untracked_files_count(shop):
    append(shop / "tests/test_plain.py", "\n")
    git(shop, "add", "tests/test_plain.py")
    append(shop / "tests/api/test_api.py", "\n")
    (shop / "tests/test_new.py").write_text("def test_new():\n    pass\n")
    selection, found, _ = changed(shop, "--changed-since", "HEAD")
    assert {test.split("::")[0] for test in found} == {
        "tests/test_plain.py",
        "tests/api/test_api.py",
        "tests/test_new.py",
    }
    assert set(selection["changed"]) == {
        "tests/test_plain.py",
        "tests/api/test_api.py",
        "tests/test_new.py",
    }


def test_a_branch_is_compared_with_its_merge_base(shop):
    """What the branch committed counts; what main did since the branch left it does not."""
    git(shop, "checkout", "-q", "-b", "feature")
    append(shop / "tests/test_plain.py", "\n")
    git(shop, "commit", "-q", "-am", "feature")
    git(shop, "checkout", "-q", "main")
    append(shop / "src/shop/prices.py", "\n")
    git(shop, "commit", "-q", "-am", "main moves on")
    git(shop, "checkout", "-q", "feature")
    selection, found, _ = changed(shop, "--changed-since", "main")
    assert {test.split("::")[0] for test in found} == {"tests/test_plain.py"}
    assert selection["base"] == git(shop, "merge-base", "main", "feature").strip()


def test_a_deleted_module_selects_the_tests_that_import_it(shop):
    (shop / "src/shop/prices.py").unlink()
    selection, found, result = changed(shop, "--changed-since", "main")
    # both modules fail to import: pytest's collection errors
    assert found == {"tests/test_prices.py": "collect_error", "tests/test_cart.py": "collect_error"}
    assert result.returncode == 1  # as a full run (docs/engine.md: collection errors)
    assert selection["changed"] == {"src/shop/prices.py": "imported by 2 test modules"}


def test_a_deleted_test_module_runs_nothing(shop):
    (shop / "tests/test_plain.py").unlink()
    selection, found, result = changed(shop, "--changed-since", "main")
    assert found == {} and result.returncode == 0
    assert selection["changed"] == {
        "tests/test_plain.py": "a test module deleted: its tests are gone"
    }


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("pyproject.toml", "pytest's or Tach's configuration"),
        ("uv.lock", "the installed packages"),
        ("tests/data/expected.txt", "no test is known to depend on it (imports only are followed)"),
        ("src/shop/unused.py", "no test is known to depend on it (imports only are followed)"),
    ],
)
def test_what_the_graph_cannot_place_runs_every_test(shop, name, why):
    append(shop / name, "\n" if not name.endswith(".txt") else "")
    if name.endswith(".txt"):
        (shop / name).write_text("43\n")
    selection, found, result = changed(shop, "--changed-since", "main")
    assert set(found) == ALL
    assert selection["everything"] == {name: why}
    assert f"every test runs: {name}: {why}" in result.stderr


def test_a_module_loaded_by_a_computed_name_selects_the_loaders_tests(shop):
    """``import_module("shop.plugins." + name)``: every module of shop.plugins may be loaded."""
    (shop / "src/shop/plugins/card.py").write_text("raise RuntimeError('broken')\n")
    selection, found, _ = changed(shop, "--changed-since", "main")
    assert found == {"tests/test_dynamic.py::test_plugin": "fail"}
    assert selection["changed"] == {"src/shop/plugins/card.py": "imported by 1 test module"}


def test_changed_dep_names_what_a_data_file_affects(shop):
    (shop / "tests/data/expected.txt").write_text("43\n")
    append(shop / "README.md", "More.\n")
    selection, found, result = changed(
        shop,
        "--changed-since",
        "main",
        "--changed-dep",
        "tests/data/**=tests/test_data.py",
        "--changed-dep",
        "*.md=",
    )
    assert found == {"tests/test_data.py::test_data": "fail"}
    assert result.returncode == 1
    assert selection["everything"] == {}
    assert selection["changed"] == {
        "README.md": "--changed-dep *.md",
        "tests/data/expected.txt": "--changed-dep tests/data/**",
    }


def test_changed_deps_in_the_config_file(shop):
    append(
        shop / "pyproject.toml",
        '\n[tool.tach.changed_deps]\n"src/shop/unused.py" = ["tests/test_dynamic.py"]\n',
    )
    git(shop, "commit", "-q", "-am", "deps")
    append(shop / "src/shop/unused.py", "\n")
    _, found, _ = changed(shop, "--changed-since", "main")
    assert set(found) == {"tests/test_dynamic.py::test_plugin"}


def test_shards_of_a_selection_make_the_selection(shop):
    append(shop / "src/shop/prices.py", "\n")
    append(shop / "tests/test_plain.py", "\n")
    _, whole, _ = changed(shop, "--changed-since", "main")
    # every shard cuts by the same durations (each run records its own in .tach/)
    export = [os.sys.executable, "-m", "tach", "durations", "--export", "durations.json"]
    subprocess.run(export, cwd=shop, check=True, capture_output=True, timeout=300)
    union: dict[str, str] = {}
    for k in (1, 2):
        sharding = [f"--shard={k}/2", "--durations-file=durations.json"]
        _, found, result = changed(shop, "--changed-since", "main", *sharding)
        assert result.returncode == 0, result.stderr
        assert not set(found) & set(union)
        union.update(found)
    assert union == whole and len(whole) == 5


def test_merged_shards_of_an_empty_selection_are_no_failure(shop):
    streams = []
    for k in (1, 2):
        _, result = run_tach(shop, "--changed-since", "main", f"--shard={k}/2")
        assert result.returncode == 0, result.stderr
        # outside the work tree: an untracked stream would be a change of the next shard's
        (shop.parent / f"shard{k}.ndjson").write_text(result.stdout)
        streams.append(str(shop.parent / f"shard{k}.ndjson"))
    merged = subprocess.run(
        [os.sys.executable, "-m", "tach", "merge", *streams],
        cwd=shop,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert merged.returncode == 0, merged.stdout + merged.stderr


def test_the_terminal_report_says_what_the_selection_is(shop):
    append(shop / "src/shop/prices.py", "\n")
    result = subprocess.run(
        [os.sys.executable, "-m", "tach", "-v", "--changed-since", "main"],
        cwd=shop,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "changed since main (merge base " in result.stdout
    assert "1 changed file select 2 of 9 tests, in 2 of 6 test files" in result.stdout
    assert "  src/shop/prices.py: imported by 2 test modules" in result.stdout
    assert "2 passed" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--changed-since", "nosuchbranch"], "'nosuchbranch' is not a revision"),
        (["--changed-since", "main", "--watch"], "cannot be used with --watch"),
        (["--changed-since", "main", "--changed-dep", "nothing"], "--changed-dep takes GLOB="),
    ],
)
def test_errors_are_usage_errors_that_say_what_to_do(shop, args, message):
    _, result = run_tach(shop, *args)
    assert result.returncode == 4
    assert message in result.stderr


def test_outside_a_git_work_tree_is_a_usage_error(tmp_path):
    (tmp_path / "test_a.py").write_text("def test_a():\n    pass\n")
    _, result = run_tach(tmp_path, "--changed-since", "main")
    assert result.returncode == 4
    assert "needs a git work tree" in result.stderr
