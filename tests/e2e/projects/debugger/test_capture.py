import os

import pytest


def test_capsys(capsys):
    print("before")
    breakpoint()
    print("after")
    assert capsys.readouterr().out == "before\nafter\n"


def test_capfd(capfd):
    os.write(1, b"fd before\n")
    breakpoint()
    assert capfd.readouterr().out == "fd before\n"


@pytest.mark.timeout(1)
def test_timeout_stands_still():
    breakpoint()
