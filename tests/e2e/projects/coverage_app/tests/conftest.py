import pytest

from shapes.area import area


@pytest.fixture(scope="session")
def unit_square():
    return area("square", 1)
