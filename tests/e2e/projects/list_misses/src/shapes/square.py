"""Squares."""


class Square:
    """A square.

    >>> Square(3).side
    3
    """

    def __init__(self, side):
        self.side = side

    def area(self):
        """The area.

        >>> Square(4).area()
        16
        """
        return self.side * self.side

    @property
    def perimeter(self):
        """
        >>> Square(1).perimeter
        4
        """
        return 4 * self.side


def unit():
    """
    >>> unit().side
    1
    """
    return Square(1)


one = unit  # found once, as ``unit``
