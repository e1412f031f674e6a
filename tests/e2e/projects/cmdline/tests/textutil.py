"""Helpers whose docstrings are doctests (collected under --doctest-modules only)."""


def shout(text):
    """
    >>> shout("hi")
    'HI!'
    """
    return text.upper() + "!"


class Counter:
    """
    >>> Counter().next()
    1
    """

    def __init__(self):
        self.value = 0

    def next(self):
        self.value += 1
        return self.value
