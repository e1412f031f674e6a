import random

from conftest import record


def test_random_a():
    record("random", random.getrandbits(64))
