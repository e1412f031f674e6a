"""What a worker says of the processes a test left behind."""

from __future__ import annotations

import subprocess
import sys

from tach.worker import describe_process

#: A child that says it runs, then runs until its stdin reaches its end.
READ_TO_EOF = "import sys; print(flush=True); sys.stdin.buffer.read()"


def start(*args: str) -> subprocess.Popen[bytes]:
    """``python -c READ_TO_EOF ARGS``, once it runs (its command line is set up by then)."""
    child = subprocess.Popen(
        [sys.executable, "-c", READ_TO_EOF, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE
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
