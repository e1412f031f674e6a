import pytest

CASES = [n * n for n in range(3)]  # computed: static discovery cannot expand it


@pytest.mark.parametrize("square", CASES)
def test_squares(square):
    assert square >= 0
