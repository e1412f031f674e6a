import os
import signal

import pytest


@pytest.mark.flaky(reruns=2)
def test_exits_once(attempt):
    if attempt() == 1:
        os._exit(3)


@pytest.mark.flaky(reruns=2)
def test_killed_once(attempt):
    if attempt() == 1:
        os.kill(os.getpid(), signal.SIGKILL)


def test_after_crashes():
    pass
