"""``python -m tach list`` in a subprocess on copies of real mini projects, against pytest."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from ._helpers import collected_ids, run

features = pytest.mark.parametrize("project", ["features"], indirect=True)
broken = pytest.mark.parametrize("project", ["broken"], indirect=True)


def _dynamic(doc: dict) -> list[dict]:
    return [t for t in doc["tests"] if t["dynamic"]]


@features
def test_quiet_ids_equal_collected_ids(project: Path) -> None:
    proc = run(["-m", "tach", "list", "-q"], project)
    assert proc.returncode == 0, proc.stderr
    static = proc.stdout.splitlines()
    collected = collected_ids(project)
    doc = json.loads(run(["-m", "tach", "--format=json", "list"], project).stdout)
    dynamic = {t["id"] for t in _dynamic(doc)}
    assert dynamic == {"tests/test_basics.py::test_dynamic_values"}
    exact = [i for i in static if i not in dynamic]
    covered = [i for i in collected if i.startswith("tests/test_basics.py::test_dynamic_values[")]
    assert exact == [i for i in collected if i not in covered]  # same ids, same order


@features
@pytest.mark.parametrize(
    ("args", "pytest_args"),
    [
        (["-k", "stacked or Nested"], ["-k", "stacked or Nested"]),
        (["-m", "slow"], ["-m", "slow"]),
        (["-m", "not fast"], ["-m", "not fast"]),
        (["tests/test_basics.py::TestParametrizedClass"],
         ["tests/test_basics.py::TestParametrizedClass"]),
        (["tests/sub"], ["tests/sub"]),
        (["tests/test_basics.py::test_values[\\xfc]"],
         ["tests/test_basics.py::test_values[\\xfc]"]),
    ],
)
def test_selection_matches_pytest(project: Path, args: list[str],
                                  pytest_args: list[str]) -> None:
    proc = run(["-m", "tach", "list", "-q", *args], project)
    static = [i for i in proc.stdout.splitlines() if "test_dynamic_values" not in i]
    assert static == [i for i in collected_ids(project, *pytest_args)
                      if "test_dynamic_values" not in i]
    assert static


@features
def test_json_document_shape(project: Path) -> None:
    proc = run(["-m", "tach", "--format=json", "list"], project)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert set(doc) >= {"tests", "fixtures", "errors"}
    by_id = {t["id"]: t for t in doc["tests"]}
    t = by_id["tests/test_basics.py::test_async_def"]
    assert t["is_async"] is True
    assert t["file"] == "tests/test_basics.py"
    assert t["line"] == 15
    plain = by_id["tests/test_basics.py::test_values[1]"]
    assert plain["marks"] == ["parametrize", "slow", "fast"]  # bottom decorator first
    assert by_id["tests/test_basics.py::test_uses_letter[ex]"]["fixtures"] == ["letter", "db"]
    assert by_id["tests/test_basics.py::test_usefixtures"]["fixtures"] == ["db"]
    assert by_id["tests/test_basics.py::test_stacked[a-1]"]["fixtures"] == []
    assert by_id["tests/sub/test_sub.py::TestSub::test_override"]["widest_scope"] == "session"
    names = {(f["name"], f["file"]) for f in doc["fixtures"]}
    assert ("db", "tests/conftest.py") in names
    assert ("db", "tests/sub/test_sub.py") in names
    assert "tmp_path" in {f["name"] for f in doc["fixtures"]}
    db = next(f for f in doc["fixtures"] if f["name"] == "db" and f["file"] == "tests/conftest.py")
    assert (db["scope"], db["line"], db["autouse"], db["deps"]) == ("session", 7, False, [])
    imports = {i["module"]: i["file"] for i in doc["imports"]["tests/pkg/test_in_package.py"]}
    assert imports[".helper"] == "tests/pkg/helper.py"


@broken
def test_syntax_error_reported_and_other_files_listed(project: Path) -> None:
    # written here rather than kept in the tree, where linters would trip over it
    (project / "tests" / "test_syntax.py").write_text("def test_broken(:\n    pass\n")
    proc = run(["-m", "tach", "--format=json", "list"], project)
    doc = json.loads(proc.stdout)
    assert [t["id"] for t in doc["tests"]] == ["tests/test_ok.py::test_fine"]
    assert len(doc["errors"]) == 1
    err = doc["errors"][0]
    assert (err["file"], err["line"]) == ("tests/test_syntax.py", 1)
    assert "SyntaxError" in err["message"]
    assert proc.returncode == 1
    human = run(["-m", "tach", "list", "-q"], project)
    assert "tests/test_syntax.py:1" in human.stderr
    assert human.stdout.splitlines() == ["tests/test_ok.py::test_fine"]


@broken
@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["list", "no/such/path.py"], "no/such/path.py"),
        (["list", "-k", "a and"], "-k"),
        (["list", "-m", "(slow"], "-m"),
        (["list", "--rootdir", "missing-dir"], "missing-dir"),
        (["list", "-c", "nope.ini"], "nope.ini"),
        # (an option list does not know is pytest's: test_options_pytest_takes_...)
    ],
)
def test_usage_errors_exit_4(project: Path, args: list[str], needle: str) -> None:
    proc = run(["-m", "tach", *args], project)
    assert proc.returncode == 4
    assert needle in proc.stderr


@features
def test_second_run_parses_nothing(project: Path) -> None:
    first = run(["-m", "tach", "list", "-q"], project)
    assert (project / ".tach").is_dir()
    second = run(["-m", "tach", "list", "-q"], project)
    assert first.stdout == second.stdout
    (project / ".tach" / "discovery-v1.json").write_bytes(b'{"schema": "tach-disc')
    third = run(["-m", "tach", "list", "-q"], project)
    assert third.stdout == first.stdout


@features
@pytest.mark.parametrize("fmt", [[], ["--format=json"]])
def test_second_run_answers_from_the_whole_run_cache(project: Path, fmt: list[str]) -> None:
    # ``python -m tach`` puts the project directory on the import path, and the first run
    # creates ``.tach/`` there: that must not change the whole-run cache's key
    for _ in range(2):
        proc = run(["-m", "tach", *fmt, "list", "-q"], project)
        assert proc.returncode == 0, proc.stderr
    assert len(list((project / ".tach").glob("list-*.cache"))) == 1


@features
def test_collect_compares_with_pytest(project: Path) -> None:
    proc = run(["-m", "tach", "list", "-q", "--collect"], project)
    assert "missing 0, extra 0" in proc.stdout
    assert "dynamic 2" in proc.stdout
    assert proc.returncode == 0


def test_version_still_works(tmp_path: Path) -> None:
    proc = run(["-m", "tach", "--version"], tmp_path)
    assert proc.returncode == 0
    assert "tach " in proc.stdout and "pytest " in proc.stdout and "Python" in proc.stdout


@features
def test_python_option_reads_fixtures_of_that_interpreters_plugins(
    project: Path, tmp_path: Path
) -> None:
    # An "interpreter" whose import path adds a site directory with a pytest11 plugin that
    # this interpreter does not have.
    site = tmp_path / "site"
    dist = site / "fakeplug-1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: fakeplug\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[pytest11]\nfakeplug = fakeplug_plugin\n")
    (site / "fakeplug_plugin.py").write_text(
        "import pytest\n\n\n@pytest.fixture(scope='module')\ndef only_there():\n    return 1\n"
    )
    paths = [str(site), *(p for p in sys.path if p)]
    python = tmp_path / "python"
    python.write_text(f"#!/bin/sh\necho '{json.dumps(paths)}'\n")
    python.chmod(0o755)

    def fixtures(*extra: str) -> dict[str, dict]:
        proc = run(["-m", "tach", "--format=json", "list", *extra], project)
        assert proc.returncode == 0, proc.stderr
        return {f["name"]: f for f in json.loads(proc.stdout)["fixtures"]}

    assert "only_there" not in fixtures()
    there = fixtures("--python", str(python))["only_there"]
    assert (there["scope"], there["file"]) == ("module", str(site / "fakeplug_plugin.py"))
    assert "tmp_path" in fixtures("--python", str(python))  # pytest's own, from its paths
    proc = run(["-m", "tach", "--format=json", "list", "--python", str(tmp_path / "none")],
               project)
    assert proc.returncode == 4
    assert "--python" in proc.stderr and "cannot run it" in proc.stderr


@features
def test_format_is_taken_before_or_after_list(project: Path) -> None:
    before = run(["-m", "tach", "--format=json", "list"], project)
    after = run(["-m", "tach", "list", "--format", "json"], project)
    assert after.returncode == before.returncode
    assert json.loads(after.stdout) == json.loads(before.stdout)


@pytest.mark.parametrize("project", ["list_misses"], indirect=True)
def test_doctests_star_imports_and_own_decorators_are_listed_or_dynamic(
    project: Path,
) -> None:
    # addopts has --doctest-modules: docstrings with examples are items, and so is
    # tests/test_guide.txt; a star import, a project's own parametrizing decorator and a
    # module whose doctest function is wrapped by a decorator are dynamic.
    proc = run(["-m", "tach", "list", "-q", "--collect"], project)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "static equal 8, dynamic 4, missing 0, extra 0" in proc.stdout
    listed = proc.stdout.split("\n\n")[0].splitlines()
    assert listed[:2] == ["src/shapes/__init__.py::shapes", "src/shapes/helpers.py"]
    assert "tests/test_guide.txt::test_guide.txt" in listed
    doc = json.loads(run(["-m", "tach", "--format=json", "list"], project).stdout)
    reasons = {t["id"]: t["dynamic"] for t in _dynamic(doc)}
    assert "decorated by logged" in reasons["src/shapes/helpers.py"]
    assert "import *" in reasons["tests/test_star.py"]
    assert "bools" in reasons["tests/test_shapes.py::test_area"]
    # a new docstring with examples is listed by the next run (the whole-run cache sees it)
    square = project / "src" / "shapes" / "square.py"
    square.write_text(square.read_text() + '\n\ndef zero():\n    """\n    >>> 0\n    0\n    """\n')
    again = run(["-m", "tach", "list", "-q"], project).stdout.splitlines()
    assert "src/shapes/square.py::shapes.square.zero" in again


@features
def test_options_pytest_takes_are_accepted_by_list(project: Path) -> None:
    # a plugin's option with a separate value, and one of pytest's that list has no flag for:
    # what they select is pytest's business; the listing is the same as without them
    plain = run(["-m", "tach", "list", "-q", "tests"], project)
    proc = run(
        ["-m", "tach", "list", "-q", "--cov", "pkg", "--continue-on-collection-errors", "tests"],
        project,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == plain.stdout and proc.stdout
