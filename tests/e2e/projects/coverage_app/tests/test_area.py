import pytest

from shapes import area


def test_square(unit_square):
    assert unit_square == 1
    assert area("square", 3) == 9


def test_rect():
    assert area("rect", 2, 3) == 6


def test_unknown():
    with pytest.raises(ValueError):
        area("hexagon", 1)
