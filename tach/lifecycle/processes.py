"""Signalling and waiting for the processes of a run: plain functions, no run state.

The supervisor is the parent of the zygote alone; workers and test processes are the zygote's
descendants. A test process is signalled only while its parent is still the slot's worker
(:func:`send_signal`), and what is left below the zygote is ended with its process group
(:func:`kill_group`).
"""

from __future__ import annotations

import contextlib
import math
import os
import select
import signal
import subprocess

from tach._native import proc

#: How long the zygote may take to end the processes below it on SIGTERM.
ZYGOTE_TERM_GRACE_S = 2.0
#: How long the zygote may take to exit once told to, before it is killed.
ZYGOTE_EXIT_GRACE_S = 10.0


def end_zygote(zygote: subprocess.Popen[bytes]) -> None:
    """End the zygote and everything below it now.

    SIGTERM first: the serving zygote's handler SIGKILLs every process below it, helpers a
    test daemonised into sessions of their own included, which a process-group kill misses.
    Then SIGKILL to the group, for a zygote that could not (it had not started serving).
    """
    with contextlib.suppress(ProcessLookupError):
        zygote.send_signal(signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        wait_exit(zygote, ZYGOTE_TERM_GRACE_S)
    kill_group(zygote.pid)


def wait_exit(process: subprocess.Popen[bytes], timeout: float) -> int:
    """``process.wait(timeout=timeout)``, woken by the exit itself.

    ``Popen.wait`` with a timeout polls, sleeping up to 50 ms between looks, and every run
    waits for its zygote to end before it reports: a pidfd is readable the moment the process
    exits. Raises ``subprocess.TimeoutExpired`` as ``Popen.wait`` does.
    """
    if process.returncode is not None:
        return process.returncode
    try:
        pidfd = proc.pidfd_open(process.pid)
    except OSError:  # the process is already reaped
        return process.wait(timeout=timeout)
    try:
        poller = select.poll()
        poller.register(pidfd, select.POLLIN)
        if not poller.poll(max(0, math.ceil(timeout * 1000))):
            raise subprocess.TimeoutExpired(process.args, timeout)
    finally:
        os.close(pidfd)
    return process.wait()


def kill_group(pgid: int) -> None:
    """SIGKILL the process group the zygote leads (it was started in a session of its own)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def send_signal(pid: int, signum: int, worker_pid: int) -> None:
    """Signal ``pid`` if it is still the slot's worker or one of its test processes.

    The supervisor is not the parent of test processes; checking the parent guards against a
    pid that was reused after the process ended.
    """
    if pid <= 0:
        return
    if pid != worker_pid:
        try:
            with open(f"/proc/{pid}/stat", "rb") as file:
                stat = file.read()
            ppid = int(stat[stat.rindex(b")") + 2 :].split()[1])
        except (OSError, ValueError, IndexError):
            return
        if ppid != worker_pid:
            return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, signum)
