from shapes.helpers import *  # noqa: F403


def test_own():
    pass
