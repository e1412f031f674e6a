import pytest


def test_passes():
    print("some output")


def test_fails():
    assert 1 == 2


@pytest.mark.skip(reason="not today")
def test_skipped():
    pass


@pytest.mark.xfail(reason="known")
def test_xfails():
    assert False


@pytest.mark.xfail(reason="fixed")
def test_xpasses():
    pass


def test_setup_error(broken):
    pass


def test_teardown_error(bad_teardown):
    pass
