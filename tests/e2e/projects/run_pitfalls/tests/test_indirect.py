import pytest


@pytest.mark.parametrize("narrowed", ["x", "y", "z"], indirect=True)
def test_narrowed(narrowed, session_resource):
    assert narrowed in "xyz"


def test_default(narrowed):
    assert narrowed == "default"
