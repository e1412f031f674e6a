"""tach.isolation: flags, the paths kept under a private /tmp, causes and advice, and the
namespaces a worker shares with its test processes (real ones, in forked children)."""

from __future__ import annotations

import errno
import os
import signal

import pytest

from tach._native import proc
from tach.isolation import (
    SIMULATE_REFUSAL,
    Hermetic,
    SharedNamespaces,
    apply_limits,
    death_cause,
    explain,
    limit_cpu,
    under_tmp,
)


def test_spec_round_trip_and_defaults():
    hermetic = Hermetic(network=True, max_cpu_time=3.0, max_open_files=10)
    assert Hermetic.from_spec(hermetic.to_spec()) == hermetic
    assert Hermetic.from_spec(None) == Hermetic() and not Hermetic().active
    assert Hermetic.from_spec({"network": True, "unknown": 1}).network  # newer keys ignored


def test_flags_add_a_user_namespace_only_when_not_root(monkeypatch):
    for euid, user in ((0, 0), (1000, proc.CLONE_NEWUSER)):
        monkeypatch.setattr(os, "geteuid", lambda euid=euid: euid)
        assert Hermetic(network=True).flags() == proc.CLONE_NEWNET | user
        assert Hermetic(network=True).flags(host_network=True) == 0
        assert Hermetic(network=True, private_tmp=True).flags(host_network=True) == (
            proc.CLONE_NEWNS | user
        )
        assert Hermetic(max_processes=4).flags() == user
        assert Hermetic(max_memory=1 << 20).flags() == 0


def test_under_tmp_keeps_outermost_directories(tmp_path):
    inner = tmp_path / "a" / "b"
    inner.mkdir(parents=True)
    real = os.path.realpath(tmp_path)
    if os.path.commonpath(["/tmp", real]) != "/tmp":
        pytest.skip("the test's temporary directory is not under /tmp")
    assert under_tmp([str(inner), str(tmp_path), "/tmp", "/usr", "", "relative"]) == [real]
    assert under_tmp([str(tmp_path / "missing")]) == []


def test_death_cause_names_the_cpu_limit():
    limited = Hermetic(max_cpu_time=10.0)
    assert death_cause(limited, signal.SIGXCPU) == (
        "killed: CPU time limit of 10 s (--max-cpu-time)"
    )
    assert death_cause(limited, signal.SIGKILL) is None
    assert death_cause(Hermetic(), signal.SIGXCPU) is None


def test_explain_says_what_is_needed(monkeypatch):
    failure = {"error": "unshare: Operation not permitted", "errno": errno.EPERM}
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    text = explain("--isolate-network", failure)
    assert text.startswith("--isolate-network needs a new network namespace (CLONE_NEWNET)")
    assert "CAP_SYS_ADMIN" in text and "Tach runs no test unisolated" in text
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    text = explain("--private-tmp", failure)
    assert "inside a new user namespace" in text and "max_user_namespaces" in text


def _in_child(namespaces: SharedNamespaces, hermetic: Hermetic, body: str) -> int:
    """Fork, enter ``namespaces``, run ``body`` (Python source); the child's exit status."""
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            namespaces.enter(hermetic)
            exec(body)
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def test_shared_namespaces_keep_tmp_empty_for_each_test_process(tmp_path):
    hermetic = Hermetic(network=True, private_tmp=True)
    # the run's directories under /tmp, as a worker keeps them: the checkout may be there too
    namespaces = SharedNamespaces.make(hermetic, under_tmp([str(tmp_path), os.getcwd()]))
    if namespaces.error is not None:
        pytest.skip(f"the kernel refused: {namespaces.error}")
    try:
        assert set(namespaces.fds) >= {"net", "mnt"}
        checks = (
            "import os, socket\n"
            "assert socket.if_nameindex() == [(1, 'lo')]\n"
            f"assert os.path.isdir({str(tmp_path)!r}) and os.getcwd() == {os.getcwd()!r}\n"
            "assert os.environ['TMPDIR'] == '/tmp'\n"
        )
        assert _in_child(namespaces, hermetic, checks) == 0
        assert not namespaces.stale(namespaces.keep)  # nothing left behind: kept
        assert namespaces.stale([])  # the run's directories changed
        mark = f"/tmp/tach-shared-{os.getpid()}"
        assert _in_child(namespaces, hermetic, f"open({mark!r}, 'w').close()") == 0
        assert not os.path.exists(mark)  # the host's /tmp never saw it
        assert namespaces.stale(namespaces.keep)  # the worker makes new ones now
        (tmp_path / "kept").write_text("x")
        assert _in_child(namespaces, hermetic, f"open({str(tmp_path / 'kept')!r}).read()") == 0
    finally:
        namespaces.close()
    assert namespaces.fds == {} and namespaces.tmp_fd is None


def test_shared_namespaces_carry_the_kernels_refusal(monkeypatch):
    monkeypatch.setenv(SIMULATE_REFUSAL, "net")
    hermetic = Hermetic(network=True)
    namespaces = SharedNamespaces.make(hermetic)
    assert namespaces.fds == {} and namespaces.error is not None
    assert "simulated" in str(namespaces.error)
    with pytest.raises(OSError, match="simulated"):
        namespaces.enter(hermetic)


def test_limits_are_set_and_cannot_be_raised_back():
    def body() -> None:
        hermetic = Hermetic(max_open_files=50, max_cpu_time=30.0, max_memory=1 << 30)
        apply_limits(hermetic)
        used = sum(os.times()[:2])
        limit_cpu(hermetic)
        assert proc.getrlimit(proc.RLIMIT_NOFILE) == (50, 50)
        assert proc.getrlimit(proc.RLIMIT_DATA)[0] == 1 << 30
        assert proc.getrlimit(proc.RLIMIT_CORE)[0] == 0  # a CPU-time kill dumps no core
        soft, _ = proc.getrlimit(proc.RLIMIT_CPU)
        assert used + 30 <= soft < used + 31 + 0.1  # at least 30 s more, in whole seconds
        try:
            proc.setrlimit(proc.RLIMIT_NOFILE, 100, 100)
        except PermissionError:
            return  # the hard limit was lowered: a test cannot raise it back
        if os.geteuid() != 0:  # only CAP_SYS_RESOURCE may
            raise AssertionError("RLIMIT_NOFILE was raised back")

    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            body()
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
