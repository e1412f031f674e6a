import pytest


@pytest.fixture
def broken():
    raise RuntimeError("set-up fails")


@pytest.fixture
def bad_teardown():
    yield
    raise RuntimeError("teardown fails")
