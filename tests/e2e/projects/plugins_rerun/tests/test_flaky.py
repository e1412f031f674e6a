import pytest


def test_passes():
    pass


def test_fails_twice(attempt):
    assert attempt() > 2


@pytest.mark.flaky(reruns=3)
def test_marked_flaky(attempt):
    assert attempt() > 1


def test_always_fails(attempt):
    attempt()
    assert False


@pytest.fixture
def shaky_setup(attempt):
    assert attempt() > 1


def test_setup_fails_once(shaky_setup):
    pass
