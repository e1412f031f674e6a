"""A stand-in for pytest-timeout: its option, ini value and marker, and a hook that fails every
test it sees, so that a test run where it is still active shows it."""

import pytest


def pytest_addoption(parser):
    parser.addoption("--timeout", type=float, default=None, dest="timeout")
    parser.addini("timeout", "seconds", default="0")


def pytest_configure(config):
    config.addinivalue_line("markers", "timeout(timeout): pytest-timeout's marker")
    if config.option.timeout is None:
        config.option.timeout = float(config.getini("timeout"))


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_call(item):
    raise AssertionError("the stand-in pytest-timeout fired")
