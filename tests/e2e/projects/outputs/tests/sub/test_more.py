import pytest


@pytest.fixture
def value():
    return 3


@pytest.mark.usefixtures("value")
@pytest.mark.parametrize("x", [1, 2])
def test_decorated(x):
    assert x
