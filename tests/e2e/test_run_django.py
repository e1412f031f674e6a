"""Tach on a Django project tested with pytest-django (``projects/django_app``).

Each test runs Tach with two workers on a fresh copy of the project and compares every test's
outcome with pytest's serial run of the same copy: on SQLite in memory, on SQLite files and on
PostgreSQL (a throwaway cluster for the session, ``tests/postgres.py``), in each isolation mode.
On PostgreSQL it also checks the test databases themselves, as pytest-xdist's workers have them:
one per worker, named with the worker's id, made once, dropped at the end (also when the run
is interrupted) or kept with ``--reuse-db``.

pytest-django and Django are not in Tach's own test environment: the runs use the interpreter
of the plugins' virtualenv (``plugin_env.py``), with pytest-randomly (installed there) off.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.e2e.plugin_env import plugin_python
from tests.postgres import Postgres, cluster

from ._run import MODES, outcomes

HERE = Path(__file__).parent
PROJECT = HERE / "projects" / "django_app"
KINDS = ("sqlite-memory", "sqlite-file", "postgres")
NAMES = {"default": "library", "secondary": "library_secondary"}
TEST_DATABASE = re.compile(r"test_library(_secondary)?(_gw\d+)?")
COMMON = ("-p", "no:randomly")  # installed in the plugins' virtualenv; it would shuffle the order
# The modules the checks of one feature run: the whole project is for the comparisons above.
SUBSET = (
    "tests/test_models.py",
    "tests/test_testcase.py",
    "tests/test_migrations.py",
    "tests/test_views.py",
)


# -- running ----------------------------------------------------------------------------------


def clean_env(extra: dict[str, str]) -> dict[str, str]:
    """This process's environment without what would change the project's run (the settings
    module, an outer run's worker identity, pytest's extra options), plus ``extra``."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("DJANGO_SETTINGS_MODULE", "PYTEST_ADDOPTS", "PYTEST_PLUGINS")
        and not key.startswith(("PYTEST_XDIST_", "TACH_"))
    }
    env.update(extra)
    return env


def run_pytest(python: Path, project: Path, *args: str, env: dict[str, str]) -> dict[str, str]:
    """pytest's outcome per test id (``_run.pytest_outcomes``, with the plugins' interpreter)."""
    out = project / ".pytest-outcomes.json"
    env = clean_env({**env, "OUTCOME_RECORDER_FILE": str(out), "PYTHONPATH": str(HERE)})
    result = subprocess.run(
        [str(python), "-m", "pytest", "-p", "outcome_recorder", "-p", "no:cacheprovider", "-q",
         *COMMON, *args],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.exists(), f"pytest recorded nothing:\n{result.stdout[-3000:]}{result.stderr[-3000:]}"
    return json.loads(out.read_text())


def run_tach(
    python: Path, project: Path, *args: str, env: dict[str, str]
) -> tuple[list[dict], subprocess.CompletedProcess[str]]:
    """``python -m tach --format=json ARGS`` in ``project``: its events and the process."""
    result = subprocess.run(
        [str(python), "-m", "tach", "--format=json", *COMMON, *args],
        cwd=project,
        env=clean_env(env),
        capture_output=True,
        text=True,
        timeout=300,
    )
    events = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    return events, result


def differences(events: list[dict], expected: dict[str, str]) -> dict[str, tuple]:
    """Tests whose outcome under Tach is not pytest's: id -> (Tach's, pytest's, Tach's message)."""
    messages = {
        event["id"]: (event.get("message") or "")[:300]
        for event in events
        if event["event"] in ("test_finished", "collect_error")
    }
    got = outcomes(events)
    return {
        test: (got.get(test), expected.get(test), messages.get(test, ""))
        for test in sorted(set(got) | set(expected))
        if got.get(test) != expected.get(test)
    }


def copy_project(tmp_path: Path) -> Path:
    dest = tmp_path / "django_app"
    shutil.copytree(PROJECT, dest, ignore=shutil.ignore_patterns("__pycache__", "*.sqlite3*"))
    return dest


def read_records(path: Path) -> list[dict]:
    """What each database test saw (``_record_database_names`` in the project's conftest)."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


LOG_LINE = re.compile(r"\[(\d+)\] \S* *(LOG|ERROR):  (.*)")


def created(log: str) -> list[str]:
    """The databases a PostgreSQL log says were created, in order. A CREATE DATABASE that
    failed (Django tries one before it drops a database that exists) is not counted."""
    made: list[str | None] = []
    last: dict[str, int] = {}  # backend pid -> its last statement's index in made, if a CREATE
    for line in log.splitlines():
        found = LOG_LINE.search(line)
        if not found:
            continue
        pid, level, text = found.groups()
        if level == "LOG" and text.startswith("statement: "):
            last.pop(pid, None)
            create = re.match(r'statement: CREATE DATABASE "?(\w+)"?', text)
            if create:
                last[pid] = len(made)
                made.append(create.group(1))
        elif level == "ERROR" and pid in last:
            made[last.pop(pid)] = None
    return [name for name in made if name]


def project_databases(pg: Postgres) -> set[str]:
    """The project's test databases in the cluster."""
    return {name for name in pg.databases() if TEST_DATABASE.fullmatch(name)}


def processes_with(marker: str) -> list[str]:
    """Processes (other than this one) whose environment holds ``marker``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if marker.encode() in (entry / "environ").read_bytes():
                found.append(f"{entry.name}: {(entry / 'cmdline').read_bytes()[:200]!r}")
        except OSError:
            continue  # gone, or not ours to read
    return found


# -- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def python() -> Path:
    return plugin_python()


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    """One throwaway PostgreSQL cluster for the session's tests."""
    with cluster() as pg:
        yield pg


@pytest.fixture
def pg(postgres: Postgres) -> Iterator[Postgres]:
    """The session's cluster, with no test database of this project before or after the test
    (one a failed test left behind does not fail the next)."""
    yield postgres
    for name in project_databases(postgres):
        postgres.psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def database_env(kind: str, pg: Postgres | None) -> dict[str, str]:
    env = {"TACH_TEST_DB": kind}
    if kind == "postgres":
        assert pg is not None
        env.update(
            TACH_TEST_PG_HOST=pg.host, TACH_TEST_PG_PORT=str(pg.port), TACH_TEST_PG_USER=pg.user
        )
    return env


@pytest.fixture
def kind_env(request: pytest.FixtureRequest, kind: str) -> dict[str, str]:
    """The environment that points the project's settings at ``kind``'s databases."""
    pg = request.getfixturevalue("pg") if kind == "postgres" else None
    return database_env(kind, pg)


@pytest.fixture(scope="session")
def pytest_reference(
    python: Path, tmp_path_factory: pytest.TempPathFactory
) -> Callable[..., dict[str, str]]:
    """pytest's outcomes for a database kind and arguments, each run once per session."""
    cache: dict[tuple, dict[str, str]] = {}

    def reference(env: dict[str, str], *args: str) -> dict[str, str]:
        key = (env["TACH_TEST_DB"], *args)
        if key not in cache:
            project = copy_project(tmp_path_factory.mktemp("pytest-reference"))
            cache[key] = run_pytest(python, project, *args, env=env)
            assert cache[key], "pytest ran no test"
            assert set(cache[key].values()) <= {"pass", "skip"}, cache[key]
        return cache[key]

    return reference


# -- every database, every isolation mode -----------------------------------------------------


def expected_name(kind: str, alias: str, worker: str, project: Path) -> str:
    """The test database name pytest-django gives ``alias`` in pytest-xdist's ``worker``."""
    if kind == "sqlite-memory":  # in memory: no suffix
        return f"file:memorydb_{alias}?mode=memory&cache=shared"
    if kind == "sqlite-file":
        return f"{project / ('test_' + NAMES[alias])}.sqlite3_{worker}"
    return f"test_{NAMES[alias]}_{worker}"


@pytest.mark.parametrize("isolation", MODES)
@pytest.mark.parametrize("kind", KINDS)
def test_same_outcomes_as_pytest(
    python, pytest_reference, kind, kind_env, isolation, tmp_path, request
):
    expected = pytest_reference(kind_env)
    project = copy_project(tmp_path)
    records = tmp_path / "records.jsonl"
    pg = request.getfixturevalue("pg") if kind == "postgres" else None
    since = pg.log_position() if pg else 0

    events, result = run_tach(
        python, project, "-n", "2", "--isolation", isolation,
        env={**kind_env, "TACH_TEST_RECORD": str(records)},
    )

    assert differences(events, expected) == {}, result.stderr[-4000:]
    assert result.returncode == 0
    # Each worker used its own test databases, named as pytest-xdist's worker would name them.
    seen = read_records(records)
    assert {record["worker_id"] for record in seen} == {"gw0", "gw1"}
    for record in seen:
        assert record["xdist_worker"] == record["worker_id"], record
        worker = record["worker_id"]
        assert record["names"] == {
            alias: expected_name(kind, alias, worker, project) for alias in record["names"]
        }, record
    if kind == "sqlite-file":
        assert not list(project.glob("test_*.sqlite3*")), "a test database file was left behind"
    if pg is not None:
        assert project_databases(pg) == set(), "a test database was left behind"
        made = created(pg.log(since))
        assert sorted(made) == sorted(set(made)), f"a test database was made twice: {made}"
        assert {"test_library_gw0", "test_library_gw1"} <= set(made)


# -- PostgreSQL: the test databases' life ------------------------------------------------------


def test_reuse_db_keeps_the_databases_and_create_db_makes_them_again(
    python, pg, pytest_reference, tmp_path
):
    env = database_env("postgres", pg)
    expected = {
        test: outcome
        for test, outcome in pytest_reference(env).items()
        if test.startswith(SUBSET)
    }
    project = copy_project(tmp_path)

    def run(*args: str) -> list[str]:
        since = pg.log_position()
        events, result = run_tach(python, project, "-n", "2", *args, *SUBSET, env=env)
        assert differences(events, expected) == {}, result.stderr[-4000:]
        return created(pg.log(since))

    # --reuse-db: the databases are made, and kept
    first = run("--reuse-db")
    kept = project_databases(pg)
    assert kept, "--reuse-db kept no test database"
    assert kept == set(first)
    for name in kept:
        pg.psql("CREATE TABLE left_by_the_first_run (id int)", dbname=name)

    # a second run uses them as they are
    assert not set(run("--reuse-db")) & kept, "--reuse-db made a kept database again"
    assert kept <= project_databases(pg)
    for name in kept:
        assert pg.psql("SELECT to_regclass('left_by_the_first_run')", dbname=name) == [
            "left_by_the_first_run"
        ]

    # --create-db makes them again (and --reuse-db still keeps them)
    again = run("--reuse-db", "--create-db")
    assert kept <= set(again)
    assert sorted(again) == sorted(set(again)), f"a test database was made twice: {again}"
    for name in kept:
        assert pg.psql("SELECT to_regclass('left_by_the_first_run')", dbname=name) == [""]


@pytest.mark.parametrize("isolation", MODES)
def test_an_interrupted_run_leaves_no_database_and_no_process(python, pg, isolation, tmp_path):
    project = copy_project(tmp_path)
    wait = tmp_path / "wait"
    wait.mkdir()
    env = {**database_env("postgres", pg), "TACH_TEST_WAIT_DIR": str(wait)}
    args = ["-n", "2", "--isolation", isolation, "tests/test_wait.py", *SUBSET]
    with open(tmp_path / "stdout", "w") as out, open(tmp_path / "stderr", "w") as err:
        proc = subprocess.Popen(
            [str(python), "-m", "tach", "--format=json", *COMMON, *args],
            cwd=project,
            env=clean_env(env),
            stdout=out,
            stderr=err,
        )
        try:
            # tests/test_wait.py writes "started" once it has used its test database, then
            # waits for "release", which is written only after the signal was sent
            deadline = time.monotonic() + 120
            while not (wait / "started").exists():
                assert proc.poll() is None, "the run ended before the waiting test started:\n" + (
                    tmp_path / "stderr"
                ).read_text()[-4000:]
                assert time.monotonic() < deadline, "the waiting test never started"
                time.sleep(0.01)
            assert project_databases(pg), "no test database while a test uses one"
            proc.send_signal(signal.SIGINT)
            (wait / "release").touch()
            assert proc.wait(timeout=60) == 2
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    events = [
        json.loads(line)
        for line in (tmp_path / "stdout").read_text().splitlines()
        if line.startswith("{")
    ]
    assert events[-1]["event"] == "run_finished"
    assert outcomes(events).get("tests/test_wait.py::test_waits_for_release") != "pass"
    assert project_databases(pg) == set(), "the interrupted run left a test database"
    assert processes_with(f"TACH_TEST_WAIT_DIR={wait}") == []


def test_no_migrations(python, pg, pytest_reference, tmp_path):
    env = database_env("postgres", pg)
    expected = pytest_reference(env, "--no-migrations", *SUBSET)
    events, result = run_tach(
        python, copy_project(tmp_path), "-n", "2", "--no-migrations", *SUBSET, env=env
    )
    assert differences(events, expected) == {}, result.stderr[-4000:]
    assert project_databases(pg) == set()


@pytest.mark.parametrize("given_by", ["--ds", "DJANGO_SETTINGS_MODULE"])
def test_settings_module_from_the_command_line_or_the_environment(
    python, pg, pytest_reference, given_by, tmp_path
):
    env = database_env("postgres", pg)
    expected = {
        test: outcome
        for test, outcome in pytest_reference(env).items()
        if test.startswith(SUBSET)
    }
    project = copy_project(tmp_path)
    ini = project / "pytest.ini"
    ini.write_text(
        "".join(
            line
            for line in ini.read_text().splitlines(keepends=True)
            if not line.startswith("DJANGO_SETTINGS_MODULE")
        )
    )
    args: list[str] = ["-n", "2", *SUBSET]
    if given_by == "--ds":
        args += ["--ds", "djproject.settings"]
    else:
        env["DJANGO_SETTINGS_MODULE"] = "djproject.settings"
    events, result = run_tach(python, project, *args, env=env)
    assert differences(events, expected) == {}, result.stderr[-4000:]
    assert result.returncode == 0


def test_the_project_needs_settings(python, tmp_path):
    """Without a settings module nothing runs: the tests above pass only with theirs read."""
    project = copy_project(tmp_path)
    (project / "pytest.ini").write_text("[pytest]\ntestpaths = tests\n")
    events, result = run_tach(python, project, "-n", "1", "tests/test_migrations.py", env={})
    assert result.returncode != 0
    assert "settings are not configured" in result.stdout + result.stderr
    assert "pass" not in outcomes(events).values()


# -- what the zygote builds once --------------------------------------------------------------

CACHE_PROBE = """
import json
import os

from django.core.validators import URLValidator
from django.template import engines
from django.urls.resolvers import _get_cached_resolver
from django.utils.functional import empty


def test_what_the_process_found_built():
    built = sorted(engines._engines)  # before anything here builds one
    record = {
        "engines": built,
        "templates": sorted(
            name
            for backend in engines.all()
            for loader in backend.engine.template_loaders
            for name in getattr(loader, "get_template_cache", {})
        ),
        "engine_debug": [backend.engine.debug for backend in engines.all()],
        "url_regex": URLValidator.regex._wrapped is not empty,
        "resolvers": _get_cached_resolver.cache_info().currsize,
    }
    with open(os.environ["TACH_TEST_PROBE"], "w") as f:
        json.dump(record, f)
"""


@pytest.mark.parametrize("isolation", MODES)
def test_django_caches_are_built_once_before_the_fork(python, isolation, tmp_path):
    """Template engines, templates, the URL resolver and Django's lazily compiled regular
    expressions are built in the zygote: every test process inherits them instead of building
    them again (once per module in module mode). The engines are made with the DEBUG the tests
    run with (pytest-django's False), not the settings file's True."""
    project = copy_project(tmp_path)
    (project / "tests" / "test_cache_probe.py").write_text(CACHE_PROBE)
    probe = tmp_path / "probe.json"
    env = {"TACH_TEST_DB": "sqlite-memory", "TACH_TEST_DEBUG": "1", "TACH_TEST_PROBE": str(probe)}

    run_pytest(python, project, "tests/test_cache_probe.py", env=env)
    under_pytest = json.loads(probe.read_text())
    events, result = run_tach(
        python, project, "-n", "1", "--isolation", isolation, "tests/test_cache_probe.py", env=env
    )
    assert outcomes(events) == {
        "tests/test_cache_probe.py::test_what_the_process_found_built": "pass"
    }, result.stderr[-3000:]
    under_tach = json.loads(probe.read_text())

    assert under_pytest["engines"] == []  # pytest builds them in the first test that renders
    assert under_tach["engines"] == ["django"]
    assert "library/shelf.html" in under_tach["templates"]
    assert under_tach["url_regex"] is True
    assert under_tach["resolvers"] >= 1
    assert under_tach["engine_debug"] == under_pytest["engine_debug"] == [False]
