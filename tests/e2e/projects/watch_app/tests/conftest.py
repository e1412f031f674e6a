import pytest

from shop.currency import DEFAULT


@pytest.fixture
def currency():
    return DEFAULT
