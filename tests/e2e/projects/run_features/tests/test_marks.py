import sys

import pytest


@pytest.mark.skip(reason="not today")
def test_skip():
    pass


@pytest.mark.skipif(sys.version_info > (3,), reason="always on py3")
def test_skipif():
    pass


def test_skip_inside():
    pytest.skip("decided at run time")


@pytest.mark.xfail(reason="known bug")
def test_xfail():
    assert False


@pytest.mark.xfail(reason="fixed already")
def test_xpass():
    assert True


@pytest.mark.xfail(strict=True, reason="must fail")
def test_xpass_strict():
    assert True


@pytest.mark.parametrize("n", [1, 2, pytest.param(3, marks=pytest.mark.xfail(reason="three")), 4])
def test_params(n):
    assert n != 3


@pytest.mark.slow
def test_marked_slow():
    assert True


class TestGroup:
    counter = 0

    def test_one(self):
        assert self.counter == 0

    @pytest.mark.parametrize("x", ["a", "b"])
    def test_two(self, x):
        assert x in "ab"
