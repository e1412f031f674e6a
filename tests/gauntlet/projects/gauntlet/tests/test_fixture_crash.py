import ctypes
import os

import pytest


@pytest.fixture
def dies_in_setup():
    os._exit(7)


@pytest.fixture
def dies_in_teardown():
    yield
    ctypes.string_at(0)


def test_before():
    pass


def test_setup_crash(dies_in_setup):
    pass


def test_teardown_crash(dies_in_teardown):
    pass


def test_after():
    pass
