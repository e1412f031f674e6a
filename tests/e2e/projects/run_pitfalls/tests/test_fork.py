import os

from conftest import record


def test_forks_and_returns():
    pid = os.fork()
    if pid == 0:
        record("forked-child-returns")
        return  # back into pytest in the child: it must not run a second session
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status)


def test_after_fork():
    record("after-fork")
