"""Session-wide pytest plugins under Tach against pytest (``pytest -n 2`` where the plugin's
behaviour depends on parallelism): the same outcome for every test and the same artefacts, in
the isolation modes where the plugin's state lives in a different process.

pytest-randomly, pytest-rerunfailures, pytest-env, pytest-mock, freezegun and time-machine need
nothing of Tach's adapters; pytest-benchmark, syrupy and pytest-html gather results over the
whole session, which ``tach.adapters`` hands from the workers and test processes to the zygote.
pytest's run of a project is made once per module (``baseline``) where several tests compare
with it.
"""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.e2e._run import MODES
from tests.e2e.conftest import PROJECTS
from tests.e2e.plugin_env import plugin_python
from tests.e2e.plugin_runs import pytest_outcomes, run, tach_outcomes

QUIET = ["-p", "no:cacheprovider"]


@pytest.fixture(scope="module")
def python() -> Path:
    return plugin_python()


@pytest.fixture(scope="module")
def copies(tmp_path_factory: pytest.TempPathFactory):
    """``copies(name)``: a fresh copy of project ``name``, in a directory of this module's."""

    def copy(name: str) -> Path:
        dest = tmp_path_factory.mktemp(name) / name
        shutil.copytree(PROJECTS / name, dest)
        return dest

    return copy


def summary_counts(output: str) -> str:
    """The counts of pytest's closing line, less its time (``1 failed, 4 passed, 6 rerun``)."""
    lines = [line for line in output.splitlines() if re.match(r"=+ .* in [\d.]+s", line)]
    assert lines, output
    return re.sub(r"=+ (.*) in [\d.]+s.*", r"\1", lines[-1])


def tach_report(result: subprocess.CompletedProcess[str]) -> str:
    """Tach's terminal report: on stderr with ``--format=json``."""
    return result.stderr


# -- pytest-randomly -----------------------------------------------------------------------------


def records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def order_per_module(found: list[dict]) -> dict[str, list[str]]:
    """The order tests ran in, per module (modules may run in any order, and in parallel)."""
    per_module: dict[str, list[str]] = {}
    for record in found:
        per_module.setdefault(record["id"].partition("::")[0], []).append(record["id"])
    return per_module


@pytest.fixture(scope="module")
def randomly_baseline(python, copies):
    project = copies("plugins_randomly")
    record = project / "pytest.jsonl"
    expected, result = pytest_outcomes(
        python, project, *QUIET, "--randomly-seed=1234", env={"RECORD_FILE": str(record)}
    )
    assert result.returncode == 0, result.stdout
    return expected, records(record)


@pytest.mark.parametrize("isolation", MODES)
def test_randomly_seed_gives_pytest_order_within_modules_and_reseeds_per_test(
    python, copies, randomly_baseline, isolation
):
    expected, pytest_records = randomly_baseline
    project = copies("plugins_randomly")
    record = project / "tach.jsonl"
    found, result = tach_outcomes(
        python,
        project,
        *QUIET,
        "-n",
        "2",
        "--isolation",
        isolation,
        "--randomly-seed=1234",
        env={"RECORD_FILE": str(record)},
    )
    assert found == expected, tach_report(result)
    start = json.loads(result.stdout.splitlines()[0])
    assert "Using --randomly-seed=1234" in start["report_header"]
    tach_records = records(record)
    # pytest-randomly shuffles modules by the seed too; Tach schedules whole modules itself
    assert order_per_module(tach_records) == order_per_module(pytest_records)
    assert order_per_module(pytest_records)["tests/test_alpha.py"] != sorted(
        order_per_module(pytest_records)["tests/test_alpha.py"]
    )
    # random, numpy and Faker reseeded from the seed and the test's id before each test
    by_id = {record["id"]: record for record in pytest_records}
    assert {record["id"]: record for record in tach_records} == by_id


def test_randomly_off_runs_tests_in_file_order_without_a_seed(python, copies):
    project = copies("plugins_randomly")
    runs = {}
    for tool, runner in (("pytest", pytest_outcomes), ("tach", tach_outcomes)):
        record = project / f"{tool}.jsonl"
        outcomes, result = runner(
            python, project, *QUIET, "-p", "no:randomly", env={"RECORD_FILE": str(record)}
        )
        runs[tool] = (outcomes, order_per_module(records(record)), result)
    assert runs["tach"][:2] == runs["pytest"][:2]
    order = runs["tach"][1]["tests/test_beta.py"]
    assert order[:3] == [f"tests/test_beta.py::test_{name}" for name in ("one", "two", "three")]
    start = json.loads(runs["tach"][2].stdout.splitlines()[0])
    assert not [line for line in start["report_header"] if "randomly" in line]


# -- pytest-rerunfailures ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def rerun_baseline(python, copies):
    project = copies("plugins_rerun")
    counters = project / "pytest-counters"
    counters.mkdir()
    expected, result = pytest_outcomes(
        python,
        project,
        *QUIET,
        "--reruns",
        "2",
        "--reruns-delay",
        "0.05",
        "tests/test_flaky.py",
        env={"COUNTER_DIR": str(counters)},
    )
    assert result.returncode == 1, result.stdout
    return expected, summary_counts(result.stdout)


@pytest.mark.parametrize("isolation", MODES)
def test_rerunfailures_same_outcomes_and_rerun_counts(python, copies, rerun_baseline, isolation):
    expected, counts = rerun_baseline
    assert counts == "1 failed, 4 passed, 6 rerun"
    project = copies("plugins_rerun")
    counters = project / "tach-counters"
    counters.mkdir()
    found, result = tach_outcomes(
        python,
        project,
        *QUIET,
        "--isolation",
        isolation,
        "--reruns",
        "2",
        "--reruns-delay",
        "0.05",
        "tests/test_flaky.py",
        env={"COUNTER_DIR": str(counters)},
    )
    assert found == expected, tach_report(result)
    assert result.returncode == 1
    assert summary_counts(tach_report(result)) == counts
    # each test ran as often as under pytest (the mark's reruns=3 left one unused)
    attempts = {path.name: path.read_text() for path in counters.iterdir()}
    assert attempts == {
        "test_fails_twice": "3",
        "test_marked_flaky": "2",
        "test_always_fails": "3",
        "test_setup_fails_once": "2",
    }


@pytest.mark.parametrize("project", ["plugins_rerun"], indirect=True)
def test_rerunfailures_reruns_a_crashed_test_as_under_xdist(python, project):
    # `pytest -n 2 tests/test_crash.py` (pytest serial dies with the test): each crashing test
    # is rerun once and passes, "3 passed, 2 rerun"
    xdist = {
        f"tests/test_crash.py::test_{name}": "pass"
        for name in ("exits_once", "killed_once", "after_crashes")
    }
    counters = project / "tach-counters"
    counters.mkdir()
    found, result = tach_outcomes(
        python,
        project,
        *QUIET,
        "--isolation",
        "test",
        "tests/test_crash.py",
        env={"COUNTER_DIR": str(counters)},
    )
    assert found == xdist, tach_report(result)
    assert "3 passed, 2 rerun" in result.stderr, tach_report(result)


# -- pytest-env, pytest-mock, freezegun, time-machine --------------------------------------------

PRESET = {"APP_DEFAULT": "preset", "EXPECTED_DEFAULT": "preset"}


@pytest.fixture(scope="module")
def plain_baseline(python, copies):
    project = copies("plugins_plain")
    expected, result = pytest_outcomes(python, project, *QUIET, env=PRESET)
    assert result.returncode == 1, result.stdout
    assert expected["tests/test_env.py::test_default_keeps_an_existing_value"] == "pass"
    assert sorted(expected.values()).count("fail") == 2  # the two deliberate failures
    return expected


@pytest.mark.parametrize("isolation", MODES)
def test_env_mock_and_clocks_give_pytest_outcomes(python, copies, plain_baseline, isolation):
    project = copies("plugins_plain")
    found, result = tach_outcomes(
        python, project, *QUIET, "-n", "2", "--isolation", isolation, env=PRESET
    )
    assert found == plain_baseline, tach_report(result)
    assert result.returncode == 1


# -- pytest-benchmark ----------------------------------------------------------------------------


def benchmarks(path: Path) -> dict[str, tuple]:
    """Per benchmark of a ``--benchmark-json`` file: what does not depend on timing."""
    found = {}
    for bench in json.loads(path.read_text())["benchmarks"]:
        stats = bench["stats"]
        fixed_rounds = stats["rounds"] if bench["name"] == "test_pedantic" else None
        found[bench["fullname"]] = (
            bench["group"],
            bench["name"],
            json.dumps(bench["params"], sort_keys=True),
            bench["param"],
            json.dumps(bench["extra_info"], sort_keys=True),
            sorted(bench["options"]),
            sorted(key for key in stats if key != "data"),  # autosave keeps no data
            fixed_rounds,
        )
    return found


def table_titles(output: str) -> list[str]:
    return sorted(re.findall(r"-+ (benchmark[^-]*?) -+", output))


@pytest.fixture(scope="module")
def benchmark_baseline(python, copies):
    project = copies("plugins_benchmark")
    expected, result = pytest_outcomes(python, project, *QUIET, "--benchmark-json=pytest.json")
    assert result.returncode == 0, result.stdout
    return expected, benchmarks(project / "pytest.json"), table_titles(result.stdout)


def test_benchmark_json_and_table_from_kept_warm_runs(
    python, copies, benchmark_baseline, tmp_path
):
    # A run zygote forked from a kept session layer is the run's zygote: it takes the
    # workers' benchmarks over and writes the file, every run (the hand-over is per run).
    expected, pytest_benchmarks, titles = benchmark_baseline
    project = copies("plugins_benchmark")
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    env = {"XDG_RUNTIME_DIR": str(runtime)}
    try:
        for _ in range(2):
            found, result = tach_outcomes(
                python, project, *QUIET, "-n", "2", "--keep-warm", "--benchmark-json=tach.json",
                env=env,
            )
            assert found == expected, tach_report(result)
            assert benchmarks(project / "tach.json") == pytest_benchmarks
            assert table_titles(tach_report(result)) == titles
            (project / "tach.json").unlink()
    finally:
        run(python, project, "tach", "server", "stop", "--all", env=env)


@pytest.mark.parametrize("isolation", MODES)
def test_benchmark_json_and_table_hold_every_benchmark(
    python, copies, benchmark_baseline, isolation
):
    expected, pytest_benchmarks, titles = benchmark_baseline
    assert titles == ["benchmark 'text': 2 tests", "benchmark: 4 tests"]
    project = copies("plugins_benchmark")
    found, result = tach_outcomes(
        python,
        project,
        *QUIET,
        "-n",
        "2",
        "--isolation",
        isolation,
        "--benchmark-json=tach.json",
        "--benchmark-autosave",
    )
    assert found == expected, tach_report(result)
    assert result.returncode == 0
    assert benchmarks(project / "tach.json") == pytest_benchmarks
    assert table_titles(tach_report(result)) == titles
    assert "Wrote benchmark data in: tach.json" in tach_report(result)
    # --benchmark-autosave: one file, the whole run's (written by the zygote, not per worker)
    (saved,) = project.glob(".benchmarks/*/*.json")
    assert benchmarks(saved) == pytest_benchmarks


def test_benchmark_disable_runs_the_tests_once_without_a_table(python, copies):
    project = copies("plugins_benchmark")
    expected, baseline = pytest_outcomes(python, project, *QUIET, "--benchmark-disable")
    found, result = tach_outcomes(python, project, *QUIET, "--benchmark-disable")
    assert found == expected, tach_report(result)
    assert result.returncode == baseline.returncode == 0
    assert table_titles(baseline.stdout) == table_titles(tach_report(result)) == []


# -- syrupy --------------------------------------------------------------------------------------


def snapshot_files(project: Path) -> dict[str, str]:
    """Every file under the snapshot directories (lock files included), with its text."""
    return {
        str(path.relative_to(project)): path.read_text()
        for path in sorted(project.glob("tests/**/__snapshots__/**/*"))
        if path.is_file()
    }


def outdate(project: Path) -> None:
    """Leave snapshots no test uses: one in a used file, and a file whose module is gone."""
    snapshots = project / "tests" / "__snapshots__"
    with open(snapshots / "test_words.ambr", "a") as file:
        file.write("# name: test_removed\n  'gone'\n# ---\n")
    shutil.copy(snapshots / "test_more.ambr", snapshots / "test_deleted_module.ambr")


def snapshot_summary(output: str) -> list[str]:
    lines = output.splitlines()
    start = lines.index(next(line for line in lines if "snapshot report summary" in line))
    return [line for line in lines[start + 1 : start + 4] if line.strip() and "====" not in line]


@pytest.fixture(scope="module")
def syrupy_baseline(python, copies):
    """pytest's snapshots, its report of a run against them, and of a run with unused ones."""
    project = copies("plugins_syrupy")
    update = run(python, project, "pytest", *QUIET, "--snapshot-update")
    assert update.returncode == 0, update.stdout
    written = snapshot_files(project)
    expected, check = pytest_outcomes(python, project, *QUIET)
    assert check.returncode == 0, check.stdout
    outdate(project)
    unused = run(python, project, "pytest", *QUIET)
    assert unused.returncode == 1, unused.stdout
    cleaned = run(python, project, "pytest", *QUIET, "--snapshot-update")
    return {
        "written": written,
        "outcomes": expected,
        "summaries": [snapshot_summary(r.stdout) for r in (update, check, unused, cleaned)],
        "cleaned": snapshot_files(project),
    }


@pytest.mark.parametrize("isolation", MODES)
def test_syrupy_writes_pytest_snapshots_and_passes_against_them(
    python, copies, syrupy_baseline, isolation
):
    project = copies("plugins_syrupy")
    args = [*QUIET, "-n", "2", "--isolation", isolation]
    update = run(python, project, "tach", *args, "--snapshot-update")
    assert update.returncode == 0, update.stdout + update.stderr
    assert snapshot_files(project) == syrupy_baseline["written"]  # no lock file left either
    found, check = tach_outcomes(python, project, *args)
    assert found == syrupy_baseline["outcomes"], tach_report(check)
    # each worker used some of the snapshots: none is unused over the whole run
    assert check.returncode == 0, tach_report(check)
    summaries = [snapshot_summary(update.stdout), snapshot_summary(tach_report(check))]
    assert summaries == syrupy_baseline["summaries"][:2]


def test_syrupy_unused_snapshots_fail_the_run_and_are_deleted_on_update(
    python, copies, syrupy_baseline
):
    project = copies("plugins_syrupy")
    args = [*QUIET, "-n", "2", "--isolation", "test"]
    assert run(python, project, "tach", *args, "--snapshot-update").returncode == 0
    outdate(project)
    unused = run(python, project, "tach", *args)
    assert unused.returncode == 1, unused.stdout + unused.stderr
    cleaned = run(python, project, "tach", *args, "--snapshot-update")
    assert cleaned.returncode == 0, cleaned.stdout + cleaned.stderr
    summaries = [snapshot_summary(r.stdout) for r in (unused, cleaned)]
    assert summaries == syrupy_baseline["summaries"][2:]
    assert snapshot_files(project) == syrupy_baseline["cleaned"]


# -- pytest-html ---------------------------------------------------------------------------------


def html_report(path: Path) -> dict:
    """What pytest-html's report shows: each test's rows (its JSON data) and the counts."""
    text = path.read_text()
    blob = re.search(r'data-jsonblob="([^"]*)"', text)
    assert blob is not None, text[:2000]
    data = json.loads(html.unescape(blob.group(1)))
    rows = {
        nodeid: sorted(row["result"] for row in found) for nodeid, found in data["tests"].items()
    }
    run_count = re.search(r'<p class="run-count">(\d+) tests? took', text)
    return {
        "rows": rows,
        "counts": re.findall(r'<span class="(\w+)">(\d+) ', text),
        "run_count": run_count and run_count.group(1),
    }


def rendered_rows(path: Path) -> int:
    """The result rows a real browser renders from the report (headless Chromium, Debian's
    ``chromium`` package, which ``.ci/run`` installs)."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    assert chromium is not None, "install Debian's chromium package (.ci/run does)"
    dom = subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom", path.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    dom = re.sub(r"<template.*?</template>", "", dom, flags=re.DOTALL)  # the rows' templates
    return len(re.findall(r'<tbody class="results-table-row', dom))


@pytest.fixture(scope="module")
def html_baseline(python, copies):
    project = copies("plugins_html")
    expected, result = pytest_outcomes(python, project, *QUIET, "--html=pytest.html")
    assert result.returncode == 1, result.stdout
    report = html_report(project / "pytest.html")
    assert report["run_count"] == "13" and len(report["rows"]) == 15
    rendered = rendered_rows(project / "pytest.html")
    assert rendered == sum(len(rows) for rows in report["rows"].values())
    return expected, report, rendered


@pytest.mark.parametrize("isolation", MODES)
def test_html_one_report_lists_every_test(python, copies, html_baseline, isolation):
    expected, pytest_report, pytest_rendered = html_baseline
    project = copies("plugins_html")
    found, result = tach_outcomes(
        python, project, *QUIET, "-n", "2", "--isolation", isolation, "--html=tach.html"
    )
    assert found == expected, tach_report(result)
    assert html_report(project / "tach.html") == pytest_report
    assert rendered_rows(project / "tach.html") == pytest_rendered
    assert "Generated html report: " in tach_report(result)
    assert (project / "assets" / "style.css").is_file()


@pytest.mark.parametrize("isolation", ["module", "test"])
def test_html_lists_a_test_whose_process_died(python, tmp_path, isolation):
    # the worker makes the report of a dead test process; it goes through pytest's report hook
    # like every other, so pytest-html (in that worker) has its row
    project = tmp_path / "crash"
    project.mkdir()
    (project / "pytest.ini").write_text("[pytest]\naddopts = -p no:randomly\n")
    (project / "test_dies.py").write_text(
        "import os\n\ndef test_dies():\n    os._exit(3)\n\ndef test_lives():\n    pass\n"
    )
    found, result = tach_outcomes(
        python, project, *QUIET, "--isolation", isolation, "--html=report.html"
    )
    expected = {"test_dies.py::test_dies": "fail", "test_dies.py::test_lives": "pass"}
    assert found == expected, tach_report(result)
    rows = html_report(project / "report.html")["rows"]
    assert rows == {"test_dies.py::test_dies": ["Failed"], "test_dies.py::test_lives": ["Passed"]}
    assert rendered_rows(project / "report.html") == 2
