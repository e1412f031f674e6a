"""tach.isolation's pure parts: flags, the paths kept under a private /tmp, causes and advice."""

from __future__ import annotations

import errno
import os
import signal

import pytest

from tach._native import proc
from tach.isolation import Hermetic, death_cause, explain, under_tmp


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
