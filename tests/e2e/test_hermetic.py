"""Hermetic test processes (``docs/isolation.md``): network and mount namespaces, limits.

Everything runs against real kernel namespaces and real sockets of this machine only: a server
bound on all of the host's interfaces is reached at the host's own non-loopback address from
outside the namespace (the control) and not from a test inside it; inside, the only interface
is ``lo``, loopback serves and connects, and a name lookup fails at once. Each check runs as
root and as an unprivileged user this module creates (``useradd``; privileges dropped with
``setpriv``), and removes again.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import pwd
import re
import shutil
import socket
import struct
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import tach

from ._run import outcomes

PROJECT = Path(__file__).parent / "projects" / "hermetic"
REPO = Path(tach.__file__).resolve().parent.parent
SIOCGIFADDR = 0x8915


def host_address() -> str | None:
    """An IPv4 address of this machine that is not loopback (``SIOCGIFADDR`` per interface)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for _, name in socket.if_nameindex():
            if name == "lo":
                continue
            request = struct.pack("256s", name.encode()[:15])
            try:
                answer = fcntl.ioctl(sock.fileno(), SIOCGIFADDR, request)
            except OSError:
                continue
            address = socket.inet_ntoa(answer[20:24])
            if not address.startswith("127."):
                return address
    return None


@pytest.fixture(scope="module")
def host_server() -> Iterator[tuple[str, int]]:
    """A server bound on all of the host's interfaces that says hello; its host address."""
    address = host_address()
    if address is None:
        pytest.skip("this machine has no non-loopback IPv4 address")
    server = socket.socket()
    server.bind(("0.0.0.0", 0))
    server.listen(16)
    port = server.getsockname()[1]
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                peer, _ = server.accept()
            except OSError:
                return
            with peer, contextlib.suppress(OSError):
                peer.sendall(b"hello")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    # The control: from the host's own namespace the server answers at that address.
    with socket.create_connection((address, port), timeout=5) as client:
        assert client.recv(5) == b"hello"
    yield address, port
    stop.set()
    server.shutdown(socket.SHUT_RDWR)
    server.close()
    thread.join(5)


class Runner:
    """Runs ``python -m tach`` on a copy of the hermetic project, as root or as a user."""

    def __init__(self, user: pwd.struct_passwd | None, where: Path) -> None:
        self.user = user
        self.project = where / "hermetic"
        shutil.copytree(PROJECT, self.project)
        if user is not None:
            for path in [where, *where.rglob("*")]:
                os.chown(path, user.pw_uid, user.pw_gid)
            where.chmod(0o755)
        self.uid = user.pw_uid if user is not None else os.getuid()

    def run(
        self,
        *args: str,
        env: dict[str, str] | None = None,
        options: tuple[str, ...] = ("--format=json", "-p", "no:cacheprovider"),
    ) -> tuple[list[dict], subprocess.CompletedProcess[str]]:
        environ = {**os.environ, "HERMETIC_UID": str(self.uid), **(env or {})}
        command = [sys.executable, "-m", "tach", *options, *args]
        if self.user is not None:
            python = user_python()
            paths = [str(REPO), sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]]
            environ.update(
                HOME=str(self.project.parent),
                PYTHONPATH=os.pathsep.join(paths),
                USER=self.user.pw_name,
                LOGNAME=self.user.pw_name,
            )
            environ.pop("TMPDIR", None)
            command = [
                "setpriv",
                f"--reuid={self.user.pw_uid}",
                f"--regid={self.user.pw_gid}",
                "--clear-groups",
                "--",
                python,
                *command[1:],
            ]
        result = subprocess.run(
            command, cwd=self.project, env=environ, capture_output=True, text=True, timeout=300
        )
        events = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
        return events, result


def user_python() -> str:
    """An interpreter of this Python's version that any user may run (the venv's may live
    where only root can read)."""
    candidate = shutil.which(
        f"python{sys.version_info.major}.{sys.version_info.minor}", path="/usr/bin:/usr/local/bin"
    )
    if candidate is None:
        pytest.skip("no system interpreter of this Python version for the unprivileged user")
    return candidate


@pytest.fixture(scope="session")
def unprivileged_user() -> Iterator[pwd.struct_passwd]:
    """A user created for these tests (and removed after), with no privileges."""
    if os.geteuid() != 0:
        pytest.skip("creating a user needs root")
    if shutil.which("useradd") is None or shutil.which("setpriv") is None:
        pytest.skip("useradd and setpriv are needed to run as an unprivileged user")
    name = f"tach-e2e-{os.getpid()}"
    subprocess.run(
        ["useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", "--user-group", name],
        check=True,
        capture_output=True,
    )
    try:
        user = pwd.getpwnam(name)
        yield user
    finally:
        subprocess.run(["pkill", "-KILL", "-u", name], capture_output=True)
        shutil.rmtree(f"/tmp/pytest-of-{name}", ignore_errors=True)
        subprocess.run(["userdel", name], check=True, capture_output=True)


@pytest.fixture(params=["root", "user"])
def runner(request: pytest.FixtureRequest) -> Iterator[Runner]:
    """A runner as root, and as the unprivileged user."""
    user = None
    if request.param == "user":
        user = request.getfixturevalue("unprivileged_user")
        user_python()
    elif os.geteuid() != 0:
        pytest.skip("not running as root")
    where = Path(tempfile.mkdtemp(prefix="tach-hermetic-"))
    try:
        yield Runner(user, where)
    finally:
        shutil.rmtree(where, ignore_errors=True)


def network_env(server: tuple[str, int]) -> dict[str, str]:
    return {"HERMETIC_HOST_ADDR": server[0], "HERMETIC_HOST_PORT": str(server[1])}


NETWORK_TESTS = {
    "tests/test_network.py::test_only_interface_is_lo",
    "tests/test_network.py::test_loopback_server_and_client[ipv4]",
    "tests/test_network.py::test_loopback_server_and_client[ipv6]",
    "tests/test_network.py::test_host_address_unreachable_from_python",
    "tests/test_network.py::test_host_address_unreachable_from_c",
    "tests/test_network.py::test_host_address_unreachable_from_a_subprocess",
    "tests/test_network.py::test_name_lookup_fails_at_once",
    "tests/test_network.py::test_marked_keeps_the_host_network",
}


@pytest.mark.parametrize("mode", ["module", "test"])
def test_isolated_network_has_only_loopback(runner, host_server, mode):
    events, result = runner.run(
        "--isolate-network",
        "--isolation",
        mode,
        "--strict-markers",  # @pytest.mark.network is registered
        "tests/test_network.py",
        env=network_env(host_server),
    )
    found = outcomes(events)
    assert set(found) == NETWORK_TESTS, result.stderr
    assert set(found.values()) == {"pass"}, result.stdout + result.stderr
    assert result.returncode == 0


def test_without_isolation_the_host_network_is_reachable(runner, host_server):
    """The same tests without --isolate-network: the ones that expect isolation fail."""
    events, result = runner.run("tests/test_network.py", env=network_env(host_server))
    found = outcomes(events)
    assert found["tests/test_network.py::test_only_interface_is_lo"] == "fail"
    assert found["tests/test_network.py::test_host_address_unreachable_from_python"] == "fail"
    assert found["tests/test_network.py::test_host_address_unreachable_from_c"] == "fail"
    assert found["tests/test_network.py::test_marked_keeps_the_host_network"] == "pass"
    assert result.returncode == 1


def test_isolation_none_isolates_the_worker_and_refuses_the_marker(runner, host_server):
    events, result = runner.run(
        "--isolate-network",
        "--isolation",
        "none",
        "tests/test_network.py",
        env=network_env(host_server),
    )
    found = outcomes(events)
    marked = "tests/test_network.py::test_marked_keeps_the_host_network"
    assert found.pop(marked) == "error"
    assert set(found.values()) == {"pass"}, result.stdout
    assert "--isolation module or test" in result.stdout + result.stderr


@pytest.mark.parametrize("mode", ["none", "module", "test"])
def test_private_tmp_per_unit(runner, mode):
    mark = Path("/tmp/tach-hermetic-mark")
    assert not mark.exists()
    events, result = runner.run(
        "--private-tmp",
        "--isolation",
        mode,
        "-n",
        "1",
        "tests/test_tmp_a.py",
        "tests/test_tmp_b.py",
    )
    found = outcomes(events)
    kept = "tests/test_tmp_a.py::test_tmp_path_is_kept"
    fresh = [
        found.pop("tests/test_tmp_a.py::test_private_tmp_is_fresh_a"),
        found.pop("tests/test_tmp_b.py::test_private_tmp_is_fresh_b"),
    ]
    assert found == {
        kept: "fail",  # on purpose: its report names tmp_path
        "tests/test_tmp_b.py::test_files_keep_the_users_ownership": "pass",
    }, result.stdout + result.stderr
    # one /tmp per unit; with isolation none, one for the worker (the second unit finds the mark)
    assert sorted(fresh) == (["fail", "pass"] if mode == "none" else ["pass", "pass"])
    assert not mark.exists(), "the test's /tmp was the host's"
    report = next(e for e in events if e["event"] == "test_finished" and e["id"] == kept)
    named = re.search(r"no missing.txt in (/[^'\"\s\\]+)", json.dumps(report))
    assert named is not None, report
    written = Path(named.group(1)) / "kept.txt"
    assert written.read_text() == "kept", "tmp_path is not the host's directory"
    assert written.stat().st_uid == runner.uid


def test_basetemp_keeps_its_meaning(runner):
    basetemp = runner.project / "bt"
    events, result = runner.run(
        "--private-tmp", f"--basetemp={basetemp}", "tests/test_tmp_a.py::test_tmp_path_is_kept"
    )
    assert outcomes(events) == {"tests/test_tmp_a.py::test_tmp_path_is_kept": "fail"}
    assert list(basetemp.glob("*/kept.txt")), result.stdout
    assert str(basetemp) in result.stdout


def test_cpu_time_limit_is_reported_as_the_cause(runner):
    started = time.monotonic()
    events, result = (
        runner.run(
            "--max-cpu-time",
            "1",
            "--max-open-files",
            "64",
            "--max-processes",
            "8",
            "tests/test_limits.py",
        )
        if runner.user is not None
        else runner.run("--max-cpu-time", "1", "--max-open-files", "64", "tests/test_limits.py")
    )
    assert time.monotonic() - started < 60
    found = outcomes(events)
    assert found == {
        "tests/test_limits.py::test_burns_cpu": "fail",
        "tests/test_limits.py::test_open_files_are_limited": "pass",
        "tests/test_limits.py::test_processes_are_limited": "pass" if runner.user else "skip",
    }, result.stdout + result.stderr
    burn = next(
        e for e in events if e["event"] == "test_finished" and e["id"].endswith("test_burns_cpu")
    )
    assert "killed: CPU time limit of 1 s" in json.dumps(burn)


def test_cpu_time_limit_in_isolation_none(runner):
    events, result = runner.run(
        "--max-cpu-time", "1", "--isolation", "none", "tests/test_limits.py::test_burns_cpu"
    )
    assert outcomes(events) == {"tests/test_limits.py::test_burns_cpu": "fail"}
    assert "killed: CPU time limit of 1 s" in result.stdout + result.stderr


def test_max_processes_is_refused_for_root():
    if os.geteuid() != 0:
        pytest.skip("not running as root")
    where = Path(tempfile.mkdtemp(prefix="tach-hermetic-"))
    try:
        events, result = Runner(None, where).run("--max-processes", "8", "tests/test_limits.py")
    finally:
        shutil.rmtree(where, ignore_errors=True)
    assert result.returncode == 4
    assert "--max-processes needs an unprivileged user" in result.stderr
    assert not [e for e in events if e["event"] == "test_start"]


@pytest.mark.parametrize(
    ("refuse", "flag"),
    [("net", "--isolate-network"), ("mnt", "--private-tmp"), ("user", "--isolate-network")],
)
def test_refusal_stops_before_any_test(runner, refuse, flag):
    if refuse == "user" and runner.user is None:
        pytest.skip("root needs no user namespace")
    events, result = runner.run(flag, "tests/test_tmp_a.py", env={"TACH_SIMULATE_REFUSAL": refuse})
    assert result.returncode == 4
    assert f"ERROR: {flag} needs" in result.stderr
    assert "Tach runs no test unisolated" in result.stderr
    if runner.user is not None:
        assert "user namespace" in result.stderr
    assert not [e for e in events if e["event"] in ("test_start", "test_finished")]


def test_doctor_says_what_this_machine_supports(runner):
    _, result = runner.run("doctor", options=())
    assert result.returncode == 0, result.stderr
    report = result.stdout
    assert "network namespace (CLONE_NEWNET, lo up)  yes" in report
    assert "--isolate-network: available" in report
    assert "--private-tmp: available" in report
    for feature in ("pidfd", "memfd", "transparent huge pages", "cgroup v2"):
        assert feature in report
    root = runner.user is None
    assert ("--max-processes: not available" in report) is root
    assert ("user namespace (CLONE_NEWUSER)" in report) is not root
    _, refused = runner.run("doctor", options=(), env={"TACH_SIMULATE_REFUSAL": "net"})
    assert "--isolate-network: not available" in refused.stdout
    assert "--private-tmp: available" in refused.stdout


def test_a_test_process_the_kernel_refuses_runs_no_test(runner):
    """The probe passed, a test process's own unshare failed (a namespace limit reached): each
    of its tests fails, saying so; none runs unisolated. The refusal is simulated in the
    zygote's environment only (``[tool.tach] env``), so the probe, run by the supervisor,
    passes."""
    pyproject = runner.project / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text() + '\n[tool.tach]\nenv = { TACH_SIMULATE_REFUSAL = "net" }\n'
    )
    events, result = runner.run("--isolate-network", "tests/test_tmp_b.py")
    assert outcomes(events) == {
        "tests/test_tmp_b.py::test_private_tmp_is_fresh_b": "error",
        "tests/test_tmp_b.py::test_files_keep_the_users_ownership": "error",
    }, result.stdout + result.stderr
    assert "could not be isolated" in result.stdout
    assert "simulated: TACH_SIMULATE_REFUSAL" in result.stdout
    assert not Path("/tmp/tach-hermetic-mark").exists()
