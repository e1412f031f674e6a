import os
import sys

import pytest


def test_before():
    pass


@pytest.mark.parametrize("code", [0, 1, 3, 120])
def test_os_exit(code):
    os._exit(code)


def test_sys_exit():
    sys.exit(4)


def test_keyboard_interrupt():
    raise KeyboardInterrupt


def test_closes_stdout_and_stderr():
    sys.stdout.flush()
    sys.stderr.flush()
    os.close(1)
    os.close(2)


def test_after():
    pass
