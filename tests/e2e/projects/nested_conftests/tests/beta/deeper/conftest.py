import pytest


@pytest.fixture
def bee(bee):
    return bee + "/deeper"
