import pytest


@pytest.fixture
def bee():
    return "beta"
