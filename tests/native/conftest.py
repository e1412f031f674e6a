"""Resource checks for the native core: every test here leaves no fd open and no child behind."""

from __future__ import annotations

import os

import pytest


def open_fds() -> dict[int, str]:
    """The calling process's open file descriptors and what each points at."""
    fds = {}
    for name in os.listdir("/proc/self/fd"):
        try:
            fds[int(name)] = os.readlink(f"/proc/self/fd/{name}")
        except FileNotFoundError:  # the fd listdir itself used, already closed
            continue
    return fds


def child_pids() -> list[int]:
    """Direct children of this process (zombies included), from /proc."""
    children: list[int] = []
    for task in os.listdir("/proc/self/task"):
        with open(f"/proc/self/task/{task}/children") as f:
            children.extend(int(pid) for pid in f.read().split())
    return children


@pytest.fixture(autouse=True)
def no_leaks():
    """Fail a test that leaks file descriptors or leaves a child process (or zombie) behind."""
    before = open_fds()
    yield
    leaked = {fd: target for fd, target in open_fds().items() if fd not in before}
    assert not leaked, f"file descriptors leaked: {leaked}"
    assert not child_pids(), f"child processes left behind: {child_pids()}"
