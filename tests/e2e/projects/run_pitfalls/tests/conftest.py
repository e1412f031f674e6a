import os

import pytest

LOG = os.environ.get("TACH_E2E_LOG")


def record(*words):
    """One line in the log the end-to-end test reads: what happened, in which process."""
    if LOG:
        with open(LOG, "a") as f:
            f.write(" ".join(str(w) for w in (*words, os.getpid())) + "\n")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item, nextitem):
    record("protocol-wrapper", item.nodeid)
    return (yield)


@pytest.fixture(scope="session")
def session_resource():
    record("session-setup")
    yield "session"
    record("session-teardown")


@pytest.fixture(scope="session")
def lazy_session():
    """Only ever requested through request.getfixturevalue."""
    record("lazy-setup")
    yield "lazy"
    record("lazy-teardown")


@pytest.fixture(scope="session")
def narrowed(request):
    """Session-scoped, but parametrized indirectly: pytest narrows it to the test."""
    value = getattr(request, "param", "default")
    record("narrowed-setup", value)
    yield value
    record("narrowed-teardown", value)


@pytest.fixture(scope="module")
def module_resource(request):
    record("module-setup", request.module.__name__)
    yield request.module.__name__
    record("module-teardown", request.module.__name__)
