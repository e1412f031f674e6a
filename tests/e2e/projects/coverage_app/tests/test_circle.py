import math

from shapes import area


def test_circle():
    assert area("circle", 1) == math.pi
