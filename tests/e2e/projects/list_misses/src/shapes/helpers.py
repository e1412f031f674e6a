import functools

import pytest


def bools(name):
    """A project's own decorator that parametrizes."""
    return pytest.mark.parametrize(name, [False, True])


def logged(f):
    @functools.wraps(f)
    def wrapper(*args, **kwargs):
        return f(*args, **kwargs)

    return wrapper


@logged
def described():
    """
    >>> described()
    'yes'
    """
    return "yes"


def test_shared_from_helpers():
    pass
