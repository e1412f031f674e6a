import os

import pytest


def note(what):
    with open(os.environ["TEARDOWN_LOG"], "a") as f:
        f.write(what + "\n")


@pytest.fixture(scope="session")
def session_resource():
    yield
    note("session")


@pytest.fixture(scope="module")
def module_resource():
    yield
    note("module")


@pytest.fixture
def function_resource():
    yield
    note("function")
