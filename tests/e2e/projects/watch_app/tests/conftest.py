import pytest


@pytest.fixture
def currency():
    return "EUR"
