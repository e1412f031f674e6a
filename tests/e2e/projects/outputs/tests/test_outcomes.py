import sys

import pytest


def test_passes():
    print("hello from stdout")
    print("hello from stderr", file=sys.stderr)


def test_fails():
    print("output of a failing test")
    assert 1 + 1 == 3, "arithmetic is broken"


def test_setup_error(broken_setup):
    pass


def test_teardown_error(broken_teardown):
    pass


def test_fails_and_teardown_error(broken_teardown):
    assert False


@pytest.mark.skip(reason="not today")
def test_skipped():
    pass


def test_skips_inside():
    pytest.skip("decided at run time")


@pytest.mark.xfail(reason="known bug")
def test_xfails():
    assert False


@pytest.mark.xfail(reason="fixed already")
def test_xpasses():
    pass


@pytest.mark.xfail(reason="must fail", strict=True)
def test_xpasses_strictly():
    pass


@pytest.mark.parametrize("n", [1, 2, pytest.param(3, id="three")])
def test_params(n, record_property):
    record_property("n", n)
    assert n < 3


class TestGroup:
    def test_in_class(self):
        pass

    @pytest.mark.parametrize("word", ["a::b", "c[d]"])
    def test_odd_ids(self, word):
        pass


def test_invalid_xml_chars():
    assert "\x07bell" == "", "control \x1b characters"
