import os

import pytest


@pytest.fixture(scope="module")
def dies_in_module_setup():
    os._exit(12)


def test_before():
    pass


def test_m1(dies_in_module_setup):
    pass


def test_m2(dies_in_module_setup):
    pass


def test_after():
    pass
