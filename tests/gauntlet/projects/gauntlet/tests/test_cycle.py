import pytest


@pytest.fixture
def chicken(egg):
    return egg


@pytest.fixture
def egg(chicken):
    return chicken


def test_cycle(chicken):
    pass


def test_after():
    pass
