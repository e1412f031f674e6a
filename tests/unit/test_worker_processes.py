"""What a worker says of the processes a test left behind."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tach import worker
from tach.worker import children, describe_process, end_children

#: A child that says it runs, then runs until its stdin reaches its end.
READ_TO_EOF = "import sys; print(flush=True); sys.stdin.buffer.read()"


def start(*args: str, pass_fds: tuple[int, ...] = ()) -> subprocess.Popen[bytes]:
    """``python -c READ_TO_EOF ARGS``, once it runs (its command line is set up by then)."""
    child = subprocess.Popen(
        [sys.executable, "-c", READ_TO_EOF, *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        pass_fds=pass_fds,
    )
    assert child.stdout is not None
    child.stdout.readline()
    return child


def stop(child: subprocess.Popen[bytes]) -> None:
    assert child.stdin is not None and child.stdout is not None
    child.stdin.close()
    child.stdout.close()
    child.wait()


def test_a_process_is_described_by_its_command_line_with_spaces_between_arguments():
    child = start("two words")
    try:
        description = describe_process(child.pid)
    finally:
        stop(child)
    assert description == f"process {child.pid} ({sys.executable} -c {READ_TO_EOF} two words)"


def test_a_process_that_ended_is_not_described():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert describe_process(child.pid) is None



def test_a_helper_ends_by_itself_once_the_process_holding_its_pipe_is_ended():
    keep = set(children())
    read, write = os.pipe()
    helper = subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.stdin.buffer.read(); print('at its end')"],
        stdin=read,
        stdout=subprocess.PIPE,
    )
    holder = start("holder", pass_fds=(write,))  # left running, with the helper's pipe
    os.close(read)
    os.close(write)
    try:
        described = end_children(keep, [helper.pid])
    finally:
        stop(holder)
    assert described == [f"process {holder.pid} ({sys.executable} -c {READ_TO_EOF} holder)"]
    assert helper.stdout is not None
    assert helper.stdout.read() == b"at its end\n"  # it was not killed
    helper.stdout.close()
    helper.wait()  # reaped already: Popen learns that it ended
    assert set(children()) <= keep


def test_a_helper_that_does_not_end_is_ended_as_left_running(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(worker, "HELPER_GRACE", 0.2)
    keep = set(children())
    helper = start("helper")  # this process holds its stdin: it cannot reach its end
    try:
        described = end_children(keep, [helper.pid])
    finally:
        stop(helper)
    assert described == [f"process {helper.pid} ({sys.executable} -c {READ_TO_EOF} helper)"]
    assert set(children()) <= keep
