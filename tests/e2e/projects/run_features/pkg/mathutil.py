"""Arithmetic helpers with doctests, collected by --doctest-modules."""


def double(x):
    """Double a number.

    >>> double(2)
    4
    >>> double("ab")
    'abab'
    """
    return x * 2


def broken():
    """A doctest that fails.

    >>> broken()
    3
    """
    return 2
