import os

import pytest


@pytest.fixture(scope="module")
def dies_in_module_teardown():
    yield
    os._exit(13)


def test_first(dies_in_module_teardown):
    pass


def test_last(dies_in_module_teardown):
    pass
