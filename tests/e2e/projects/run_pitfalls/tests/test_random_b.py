import random

from conftest import record


def test_random_b():
    record("random", random.getrandbits(64))
