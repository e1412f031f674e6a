"""``--keep-warm``: later runs borrow the server's warm layers and give what a cold run gives;
the server is private, survives its clients, and ends when told or when idle."""

from __future__ import annotations

import os
import re
import select
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from tach._native import proc
from tests.e2e._run import edit, marked_processes, outcomes, pytest_outcomes, run_tach


@pytest.fixture
def server_env(tmp_path: Path) -> dict[str, str]:
    """A runtime directory of the test's own, and a mark every process of its servers has."""
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    env = {"XDG_RUNTIME_DIR": str(runtime), "TACH_SERVER_TEST_MARK": uuid.uuid4().hex}
    yield env
    subprocess.run(
        [sys.executable, "-m", "tach", "server", "stop", "--all"],
        env={**os.environ, **env},
        capture_output=True,
        timeout=60,
    )
    assert leftovers(env) == []


def leftovers(env: dict[str, str]) -> list[int]:
    return marked_processes("TACH_SERVER_TEST_MARK", env["TACH_SERVER_TEST_MARK"])


def warm_run(project: Path, env: dict[str, str], *args: str) -> tuple[dict, dict[str, str]]:
    events, result = run_tach(project, "--keep-warm", *args, env=env)
    start = next((e for e in events if e["event"] == "run_start"), None)
    assert start is not None, result.stderr
    return start["warm"], outcomes(events)


def server(project: Path, env: dict[str, str], *words: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "tach", "server", *words],
        cwd=project,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.parametrize("project", ["watch_app"], indirect=True)
def test_kept_warm_runs_give_what_cold_runs_give_and_reuse_the_layers(
    project: Path, server_env: dict[str, str]
) -> None:
    expected = pytest_outcomes(project)
    cold_events, _ = run_tach(project, env=server_env)
    assert outcomes(cold_events) == expected
    assert "warm" not in next(e for e in cold_events if e["event"] == "run_start")

    warm, found = warm_run(project, server_env)
    assert warm == {"base": "started", "session": "started"}
    assert found == expected
    warm, found = warm_run(project, server_env)
    assert warm == {"base": "reused", "session": "reused"}
    assert found == expected

    # a test module: the kept session imports it again in the run
    edit(project / "tests/test_labels.py", '"#3 EUR"', '"#3 USD"')
    warm, found = warm_run(project, server_env)
    assert warm == {"base": "reused", "session": "reused"}
    assert found == pytest_outcomes(project)
    assert found["tests/test_labels.py::test_label"] == "fail"

    # a project module the session imported: the run forgets it and the modules that refer
    # to it (cart imports prices), never the old code
    edit(project / "src/shop/prices.py", "units * 2", "units * 3")
    warm, found = warm_run(project, server_env)
    assert warm == {"base": "reused", "session": "reused"}
    assert found == pytest_outcomes(project)
    assert found["tests/test_cart.py::test_total"] == "fail"

    # a module a conftest refers to: pytest holds the conftest's fixtures, so a new session
    edit(project / "src/shop/currency.py", '"EUR"', '"USD"')
    warm, found = warm_run(project, server_env)
    assert warm == {"base": "reused", "session": "started"}
    assert found == pytest_outcomes(project)
    assert found["tests/test_labels.py::test_label"] == "pass"  # "#3 USD" now

    # other arguments: a session of their own, from the same base
    warm, found = warm_run(project, server_env, "tests/sub")
    assert warm == {"base": "reused", "session": "started"}
    assert found == {"tests/sub/test_sub.py::test_greeting": "pass"}

    status = server(project, server_env, "status")
    assert f"{project} " in status
    assert status.count("  session ") == 2, status
    assert "stopped the server" in server(project, server_env, "stop")
    assert "no Tach server is running" in server(project, server_env, "status")
    assert leftovers(server_env) == []


@pytest.mark.parametrize("project", ["watch_app"], indirect=True)
def test_the_server_survives_a_client_killed_mid_run(
    project: Path, server_env: dict[str, str]
) -> None:
    warm_run(project, server_env)  # the server and its session
    started = project / "started"
    (project / "tests/test_wait.py").write_text(
        "import pathlib, time\n\n"
        "def test_wait():\n"
        f"    pathlib.Path({str(started)!r}).write_text('')\n"
        "    time.sleep(600)\n"
    )
    client = subprocess.Popen(
        [sys.executable, "-m", "tach", "--keep-warm", "--format=json"],
        cwd=project,
        env={**os.environ, **server_env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while not started.exists():
        assert client.poll() is None, "the run ended before the waiting test started"
        assert time.monotonic() < deadline, "the waiting test never started"
        time.sleep(0.05)
    client.kill()
    client.wait()
    (project / "tests/test_wait.py").unlink()

    warm, found = warm_run(project, server_env)
    assert warm == {"base": "reused", "session": "reused"}
    assert found == pytest_outcomes(project)
    assert "[idle]" in server(project, server_env, "status")
    # the killed run's test process did not outlive it
    assert not any(
        b"test_wait" in Path(f"/proc/{pid}/cmdline").read_bytes()
        for pid in leftovers(server_env)
        if Path(f"/proc/{pid}/cmdline").exists()
    )


@pytest.mark.parametrize("project", ["watch_app"], indirect=True)
def test_another_environment_gets_a_base_of_its_own(
    project: Path, server_env: dict[str, str]
) -> None:
    warm, _ = warm_run(project, {**server_env, "SHOP_REGION": "eu"})
    assert warm["base"] == "started"
    warm, _ = warm_run(project, {**server_env, "SHOP_REGION": "us"})
    assert warm["base"] == "started"
    warm, _ = warm_run(project, {**server_env, "SHOP_REGION": "eu", "COLUMNS": "99"})
    assert warm == {"base": "reused", "session": "reused"}  # the terminal does not count
    assert server(project, server_env, "status").count("server ") == 2


@pytest.mark.parametrize("project", ["watch_app"], indirect=True)
def test_a_socket_directory_others_can_open_is_refused(
    project: Path, server_env: dict[str, str]
) -> None:
    (Path(server_env["XDG_RUNTIME_DIR"]) / "tach").mkdir(mode=0o755)
    os.chmod(Path(server_env["XDG_RUNTIME_DIR"]) / "tach", 0o755)
    events, result = run_tach(project, "--keep-warm", env=server_env)
    assert result.returncode == 4
    assert "can be opened by other users" in result.stderr and "chmod 700" in result.stderr
    assert events == []


@pytest.mark.parametrize("project", ["watch_app"], indirect=True)
def test_an_idle_server_ends_by_itself(project: Path, server_env: dict[str, str]) -> None:
    with open(project / "pyproject.toml", "a") as file:
        file.write("\n[tool.tach]\nkeep_warm_idle = 1\n")
    warm_run(project, server_env)
    pid = int(re.search(r"server (\d+)", server(project, server_env, "status")).group(1))
    pidfd = proc.pidfd_open(pid)
    try:
        readable, _, _ = select.select([pidfd], [], [], 60)  # readable once it has exited
        assert readable, "the idle server did not end"
    finally:
        os.close(pidfd)
    assert list((Path(server_env["XDG_RUNTIME_DIR"]) / "tach").glob("*.sock")) == []


@pytest.mark.skipif(os.getuid() != 0, reason="becoming another user needs root")
def test_a_connection_from_another_user_is_closed_unanswered() -> None:
    import shutil
    import tempfile

    from tach.base import BaseLayer

    directory = Path(tempfile.mkdtemp(prefix="tach-peer-test-", dir="/tmp"))
    directory.chmod(0o755)  # pytest's own temp root is private to this user
    path = directory / "server.sock"
    base = BaseLayer({})
    base.listen(str(path))
    path.chmod(0o777)  # reachable, so that only the peer check keeps the stranger out
    pid = os.fork()
    if pid == 0:
        code = 2
        try:
            os.setgid(65534)
            os.setuid(65534)
            stranger = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            stranger.connect(str(path))
            stranger.settimeout(60)
            code = 0 if stranger.recv(4096) == b"" else 1
        finally:
            os._exit(code)
    assert base.listener is not None
    base.listener.settimeout(60)
    base._accept()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0  # closed without a word
    assert base.clients == {}
    base.listener.close()
    shutil.rmtree(directory)


def test_an_import_that_fails_in_the_base_is_not_done_twice(
    tmp_path: Path, server_env: dict[str, str]
) -> None:
    # A library outside the project whose import counts itself, then fails until the
    # project's pytest_configure has run: in a base warmed before pytest configures, it fails
    # part-way, and its count must not carry into the run.
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "counter.py").write_text("count = 0\nconfigured = False\n")
    (lib / "needs_config.py").write_text(
        "import counter\n\n"
        "counter.count += 1\n"
        "if not counter.configured:\n"
        "    raise ImportError('pytest has not configured yet')\n"
    )
    project = tmp_path / "project"
    (project / "tests").mkdir(parents=True)
    (project / "pyproject.toml").write_text('[tool.pytest.ini_options]\ntestpaths = ["tests"]\n')
    (project / "tests/conftest.py").write_text(
        "def pytest_configure(config):\n    import counter\n\n    counter.configured = True\n"
    )
    (project / "tests/test_once.py").write_text(
        "import counter\nimport needs_config\n\n\n"
        "def test_imported_once():\n    assert counter.count == 1\n"
    )
    env = {**server_env, "PYTHONPATH": str(lib)}
    assert pytest_outcomes(project, env={"PYTHONPATH": str(lib)}) == {
        "tests/test_once.py::test_imported_once": "pass"
    }
    for _ in range(2):
        _, found = warm_run(project, env)
        assert found == {"tests/test_once.py::test_imported_once": "pass"}


def _project(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_a_plugin_distribution_the_tests_import_is_left_for_pytest_to_rewrite(
    tmp_path: Path, server_env: dict[str, str]
) -> None:
    # hypothesis is a pytest plugin's distribution: pytest marks it for assertion rewriting as
    # it configures, and warns (here: fails) when it was imported before
    project = _project(
        tmp_path / "project",
        {
            "pyproject.toml": "[tool.pytest.ini_options]\n"
            'filterwarnings = ["error::pytest.PytestAssertRewriteWarning"]\n',
            "tests/test_property.py": "import hypothesis\n\n\n"
            "def test_imported():\n    assert hypothesis.__version__\n",
        },
    )
    expected = {"tests/test_property.py::test_imported": "pass"}
    assert pytest_outcomes(project) == expected
    for _ in range(2):
        _, found = warm_run(project, server_env)
        assert found == expected


def test_tests_run_at_the_stack_depth_of_a_cold_run(
    tmp_path: Path, server_env: dict[str, str]
) -> None:
    # a session forked from the base's serving loop would run pytest some frames deeper: a test
    # of recursion limits would see less headroom than under a cold run
    depth = tmp_path / "depth"
    project = _project(
        tmp_path / "project",
        {
            "pyproject.toml": "[tool.pytest.ini_options]\n",
            "tests/test_depth.py": "import inspect, pathlib\n\n\n"
            "def test_depth():\n"
            f"    pathlib.Path({str(depth)!r}).write_text(str(len(inspect.stack(0))))\n",
        },
    )
    events, result = run_tach(project, env=server_env)
    assert outcomes(events) == {"tests/test_depth.py::test_depth": "pass"}, result.stderr
    cold = depth.read_text()
    for _ in range(2):
        _, found = warm_run(project, server_env)
        assert found == {"tests/test_depth.py::test_depth": "pass"}
        assert depth.read_text() == cold
