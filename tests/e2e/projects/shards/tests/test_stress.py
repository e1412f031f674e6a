import pytest

pytestmark = pytest.mark.stress


@pytest.mark.parametrize("n", range(400))
def test_stress(n):
    assert False, "deselected by addopts: never runs"
