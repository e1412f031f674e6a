import pytest


@pytest.fixture
def broken_setup():
    raise RuntimeError("setup went wrong")


@pytest.fixture
def broken_teardown():
    yield
    raise RuntimeError("teardown went wrong")


@pytest.fixture(scope="session", autouse=True)
def suite_info(record_testsuite_property):
    record_testsuite_property("build", "42")
