import os

import pytest


def test_greeting(greeting):
    assert greeting == os.environ.get("EXPECTED_GREETING", "addopts")


@pytest.mark.slow
def test_slow():
    pass


@pytest.mark.xfail(reason="--runxfail turns this into a failure")
def test_expected_to_fail():
    assert False
