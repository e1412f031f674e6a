import unittest

import pytest
from helpers_base import SharedTests, test_imported_function  # noqa: F401

pytestmark = pytest.mark.fast

parametrize = pytest.mark.parametrize


def test_plain():
    pass


async def test_async_def():
    pass


test_alias = test_plain


@pytest.mark.slow
@parametrize("a", [1, 2.5, -3, None, True, "s", b"b", "ü", "a\nb", (1, 2)])
def test_values(a):
    pass


@pytest.mark.parametrize("x", [1, 2])
@pytest.mark.parametrize("y", ["a", "b"])
def test_stacked(x, y):
    pass


@pytest.mark.parametrize(
    "x, y",
    [
        (1, 2),
        pytest.param(3, 4, id="three-four"),
        pytest.param(5, 6, marks=pytest.mark.xfail),
        (1, 2),
    ],
)
def test_ids_dedup(x, y):
    pass


@pytest.mark.parametrize("v", ["a", "a", "a1", "a1"], ids=["p", None, "q", None])
def test_explicit_ids(v):
    pass


@pytest.mark.parametrize("v", [])
def test_empty(v):
    pass


def test_uses_letter(letter, db):
    pass


@pytest.mark.usefixtures("db")
def test_usefixtures():
    pass


@pytest.mark.parametrize("x", [1, 2])
class TestParametrizedClass:
    def test_one(self, x):
        pass

    @pytest.mark.parametrize("y", [3])
    def test_two(self, x, y):
        pass


class TestInherits(SharedTests):
    def test_own(self):
        pass

    class TestNested:
        def test_inner(self):
            pass


class TestWithInit:
    def __init__(self):
        pass

    def test_not_collected(self):
        pass


class TestDisabled:
    __test__ = False

    def test_not_collected(self):
        pass


class MyCase(unittest.TestCase):
    def test_b(self):
        pass

    def test_a(self):
        pass

    def helper(self):
        pass


def test_non_literal():
    pass


@pytest.mark.parametrize("v", [object(), len])
def test_nameless(v):
    pass


@pytest.mark.parametrize("v", sorted([3, 1]))
def test_dynamic_values(v):
    pass
