from shapes.helpers import bools
from shapes.square import Square


@bools("big")
def test_area(big):
    assert Square(2).area() == 4


def test_side():
    assert Square(2).side == 2
