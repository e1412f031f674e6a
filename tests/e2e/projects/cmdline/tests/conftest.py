import pytest


def pytest_addoption(parser):
    parser.addoption("--greeting", default="none", help="what the greeting fixture returns")
    parser.addoption("--only-fast", action="store_true", help="skip the tests marked slow")


@pytest.fixture
def greeting(request):
    return request.config.getoption("--greeting")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--only-fast"):
        for item in items:
            if "slow" in item.keywords:
                item.add_marker(pytest.mark.skip(reason="--only-fast"))
