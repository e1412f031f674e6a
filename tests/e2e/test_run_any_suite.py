"""Any command line pytest takes, on suites that depend on pytest's own rules: the failure
classes seen on real projects, each on a fixture project, each compared with pytest.

* options are pytest's to parse: builtin ones (``--doctest-modules``, ``--runxfail``), a
  conftest's (one that takes a value as a separate word), a plugin's, ``addopts``; what pytest
  refuses is refused with its message and exit code 4;
* a file or directory pytest's walk leaves out (``collect_ignore`` computed at run time,
  ``collect_ignore_glob``, a ``pytest_ignore_collect`` hook, ``norecursedirs``) never runs;
* modules are imported from where pytest's collection order imports them (a src layout whose
  package is also installed, with ``--doctest-modules`` and ``testpaths = ["src", "tests"]``);
* a long module is not sliced unless asked, so order-dependent unittest classes see each
  other's state;
* ``run_start``'s count is the number of tests reported; a test that raises
  ``KeyboardInterrupt`` in ``--isolation none`` leaves its fixtures torn down.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ._run import MODES, outcomes, pytest_outcomes, run_tach


@pytest.mark.parametrize(
    ("args", "greeting"),
    [
        ([], "addopts"),
        # a conftest's option whose value is a separate word, then a path
        (["--greeting", "from cli", "tests"], "from cli"),
        (["--greeting=x", "--only-fast", "--runxfail"], "x"),
        (["--doctest-modules"], "addopts"),
        (["--setup-show", "--hypothesis-seed=0", "-p", "no:randomly", "-rA"], "addopts"),
        (["-k", "greeting or doctest", "--doctest-modules"], "addopts"),
    ],
)
@pytest.mark.parametrize("project", ["cmdline"], indirect=True)
def test_any_option_pytest_accepts_is_accepted_with_its_meaning(project, args, greeting):
    env = {"EXPECTED_GREETING": greeting}
    expected = pytest_outcomes(project, *args, env=env)
    events, result = run_tach(project, *args, env=env)
    assert outcomes(events) == expected, result.stderr
    assert result.returncode == (1 if "fail" in expected.values() else 0), result.stderr


@pytest.mark.parametrize("workers", ["0", "auto", "logical", "2"])
@pytest.mark.parametrize("project", ["cmdline"], indirect=True)
def test_xdists_worker_counts_are_accepted(project, workers):
    expected = pytest_outcomes(project)
    events, result = run_tach(project, "-n", workers)
    assert outcomes(events) == expected, result.stderr
    start = next(e for e in events if e["event"] == "run_start")
    assert start["workers"] >= 1


def run_plain(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``python -m tach ARGS`` in ``project``, without the NDJSON stream."""
    return subprocess.run(
        [sys.executable, "-m", "tach", *args],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("project", ["cmdline"], indirect=True)
def test_an_option_pytest_refuses_is_refused_with_its_message(project):
    events, result = run_tach(project, "--no-such-option", "tests")
    assert result.returncode == 4
    assert "unrecognized arguments: --no-such-option" in result.stderr
    assert "pytest" in result.stderr
    assert not [e for e in events if e["event"] == "test_finished"]


@pytest.mark.parametrize("project", ["cmdline"], indirect=True)
def test_help_shows_tachs_options_then_pytests_with_the_conftests(project):
    result = run_plain(project, "--help")
    assert result.returncode == 0, result.stderr
    tach_part, _, pytest_part = result.stdout.partition("pytest's options")
    assert "--isolation" in tach_part
    assert "--greeting" in pytest_part and "--doctest-modules" in pytest_part


@pytest.mark.parametrize("project", ["cmdline"], indirect=True)
def test_pytests_informational_options_show_pytests_answer(project):
    result = run_plain(project, "--markers")
    assert result.returncode == 0, result.stderr
    assert "@pytest.mark.slow: a slow test" in result.stdout


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["tests"],
        ["--ignore=tests/test_kept.py"],
        ["--ignore-glob=*walked*"],
        ["--deselect", "tests/test_kept.py::test_kept_too"],
        # named explicitly, a file is collected whatever the ignore rules say
        ["tests/test_py2_only.py", "tests/walked"],
    ],
)
@pytest.mark.parametrize("isolation", MODES)
@pytest.mark.parametrize("project", ["ignore_rules"], indirect=True)
def test_nothing_runs_that_pytests_walk_leaves_out(project, isolation, args):
    expected = pytest_outcomes(project, *args)
    events, result = run_tach(project, "--isolation", isolation, *args)
    assert outcomes(events) == expected, result.stderr
    start = next(e for e in events if e["event"] == "run_start")
    finished = [e for e in events if e["event"] == "test_finished"]
    assert result.returncode == (1 if "fail" in expected.values() else 0), result.stderr
    assert len(finished) == len(expected)
    assert start["count"] == len(finished)


@pytest.mark.parametrize("import_mode", ["prepend", "append", "importlib"])
@pytest.mark.parametrize("isolation", MODES)
@pytest.mark.parametrize("project", ["src_doctest"], indirect=True)
def test_modules_are_imported_where_pytests_collection_order_imports_them(
    project, isolation, import_mode
):
    env = {"PYTHONPATH": str(project / "installed")}  # the package's installed copy
    # (append mode: the doctest of the src copy fails to collect; Tach runs the rest)
    args = [f"--import-mode={import_mode}", "--continue-on-collection-errors"]
    expected = pytest_outcomes(project, *args, env=env)
    events, result = run_tach(project, "--isolation", isolation, "-n", "2", *args, env=env)
    assert outcomes(events) == expected, result.stderr
    if import_mode == "prepend":  # pytest's own result, checked so the case cannot go stale
        assert set(expected.values()) == {"pass"} and len(expected) == 4


@pytest.mark.parametrize("import_mode", ["prepend", "importlib"])
@pytest.mark.parametrize("isolation", MODES)
@pytest.mark.parametrize("project", ["dup_basenames"], indirect=True)
def test_duplicate_basenames_without_init_files_collect_as_under_pytest(
    project, isolation, import_mode
):
    # prepend: the second test_same.py fails with "import file mismatch", as in pytest;
    # importlib: both run
    args = [f"--import-mode={import_mode}", "--continue-on-collection-errors"]
    expected = pytest_outcomes(project, *args)
    events, result = run_tach(project, "--isolation", isolation, "-n", "2", *args)
    assert outcomes(events) == expected, result.stderr
    same = [outcome for test_id, outcome in expected.items() if "test_same" in test_id]
    assert ("collect_error" in same) == (import_mode == "prepend")


def _record_heavy(project: Path, events: list[dict]) -> None:
    """Durations an earlier run would leave, long enough for the module to be worth slicing."""
    ids = [e["id"] for e in events if e["event"] == "test_finished"]
    durations = {i: (0.001 if "test_small" in i else 0.5) for i in ids}
    (project / ".tach").mkdir(exist_ok=True)
    (project / ".tach" / "durations.json").write_text(json.dumps(durations))


@pytest.mark.parametrize("slicing", [None, "never", "safe"])
# (``--isolation test`` gives each test a process of its own: by design, a test there does
# not see what an earlier test changed)
@pytest.mark.parametrize("isolation", ["none", "module"])
@pytest.mark.parametrize("project", ["ordered_unittest"], indirect=True)
def test_a_module_runs_whole_in_pytests_order_unless_slicing_is_asked(project, isolation, slicing):
    expected = pytest_outcomes(project)
    assert set(expected.values()) == {"pass"}
    first, _ = run_tach(project, "-n", "4")
    _record_heavy(project, first)
    args = ["--slice", slicing] if slicing else []
    events, result = run_tach(project, "--isolation", isolation, "-n", "4", *args)
    assert outcomes(events) == expected, result.stderr
    if isolation == "module":  # one process for the whole module
        pids = {e["pid"] for e in events if e["event"] == "test_start" and "modes" in e["id"]}
        assert len(pids) == 1


@pytest.mark.parametrize(("args", "reported"), [([], 5), (["-k", "f1 or squares"], 4)])
@pytest.mark.parametrize("isolation", MODES)
@pytest.mark.parametrize("project", ["counts"], indirect=True)
def test_run_start_counts_the_tests_the_run_reports(project, isolation, args, reported):
    # tests below a conftest that fails to import are not counted; -k is; a test parametrized
    # by code counts as the items an earlier run recorded for it (the first run cannot know)
    expected = pytest_outcomes(project, *args)
    run_tach(project, "--isolation", isolation, *args)
    events, result = run_tach(project, "--isolation", isolation, *args)
    assert outcomes(events) == expected, result.stderr
    start = next(e for e in events if e["event"] == "run_start")
    finished = [e for e in events if e["event"] == "test_finished"]
    assert start["count"] == len(finished) == reported


@pytest.mark.parametrize("project", ["interrupt"], indirect=True)
def test_keyboard_interrupt_in_a_test_leaves_its_fixtures_torn_down(project, tmp_path):
    log = tmp_path / "teardown.log"
    events, result = run_tach(
        project, "--isolation", "none", "-n", "1", env={"TEARDOWN_LOG": str(log)}
    )
    assert result.returncode != 0, result.stderr
    assert log.read_text().split() == ["function", "module", "session"]
    assert outcomes(events) == {"tests/test_interrupt.py::test_raises_keyboard_interrupt": "fail"}


@pytest.mark.parametrize("isolation", MODES)
@pytest.mark.parametrize("project", ["collect_error"], indirect=True)
def test_a_collection_error_is_reported_for_its_file_while_the_rest_runs(project, isolation):
    # pytest stops before running any test; Tach runs the rest, as pytest's
    # --continue-on-collection-errors does (docs/engine.md)
    expected = pytest_outcomes(project, "--continue-on-collection-errors")
    assert expected["tests/test_broken.py"] == "collect_error" and len(expected) == 4
    events, result = run_tach(project, "--isolation", isolation, "-n", "2")
    assert outcomes(events) == expected, result.stderr
    assert result.returncode == 1


@pytest.mark.parametrize("isolation", MODES)
@pytest.mark.parametrize("project", ["skipped_class"], indirect=True)
def test_a_skipped_unittest_class_is_skipped_in_every_mode(project, isolation):
    # --isolation test sets a class's fixtures up in the worker before each fork: a skip
    # raised there (unittest's skipUnless) is the tests' skip, not the worker's death
    expected = pytest_outcomes(project)
    assert sorted(expected.values()) == ["pass", "skip", "skip"]
    events, result = run_tach(project, "--isolation", isolation)
    assert outcomes(events) == expected, result.stderr


@pytest.mark.parametrize("isolation", MODES)
@pytest.mark.parametrize("project", ["class_fixture"], indirect=True)
def test_a_class_scoped_fixture_outside_a_class_lives_as_long_as_its_test(project, isolation):
    # pytest hangs such a fixture's finalizers on the test itself (pytest-django's autouse
    # class fixture is one): --isolation test must set it up in the test process
    expected = pytest_outcomes(project)
    assert sorted(expected.values()) == ["pass"] * 4
    events, result = run_tach(project, "--isolation", isolation)
    assert outcomes(events) == expected, result.stderr


@pytest.mark.parametrize("isolation", MODES)
@pytest.mark.parametrize("project", ["nested_conftests"], indirect=True)
def test_a_later_units_conftest_fixtures_are_found(project, isolation):
    # pytest 9.1+ parses a conftest when its directory is collected and forgets the ones a
    # collection did not reach; one worker collects the units one after the other
    expected = pytest_outcomes(project)
    assert sorted(expected.values()) == ["pass"] * 3
    events, result = run_tach(project, "--isolation", isolation, "-n", "1")
    assert outcomes(events) == expected, result.stderr


def _setup_show_lines(output: str) -> list[str]:
    """The lines ``--setup-show`` writes (fixture set-ups and teardowns, each test with its
    fixtures) and what a fixture wrote to the terminal (part of its test's captured output,
    shown by ``-rP``), without progress letters."""
    kept = []
    for line in output.splitlines():
        line = line.rstrip().removesuffix("[100%]").rstrip().rstrip(".").rstrip()
        if line.strip().startswith(
            ("SETUP", "TEARDOWN", "note from", "test_setup_show.py::", "_____", "=====")
        ) and "passed in" not in line:
            kept.append(line)
    return kept


@pytest.mark.parametrize("isolation", MODES)
@pytest.mark.parametrize("project", ["setup_show"], indirect=True)
def test_setup_show_prints_what_pytest_prints(project, isolation):
    # what pytest writes to its terminal while tests run is written by the test processes
    # (and the workers, which set up wider fixtures): it reaches the terminal as under pytest
    def run(*command: str) -> str:
        result = subprocess.run(
            [sys.executable, "-m", *command, "--setup-show", "-rP"],
            cwd=project,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout

    expected = _setup_show_lines(run("pytest"))
    assert "        SETUP    F row (fixtures used: table)" in expected
    assert expected.count("note from a fixture") == 2
    got = _setup_show_lines(run("tach", "-n", "1", "--isolation", isolation))
    assert got == expected
