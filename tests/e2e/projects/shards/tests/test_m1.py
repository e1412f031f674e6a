import time

import pytest


@pytest.mark.parametrize("n", range(3))
def test_m1(n):
    time.sleep(0.001)


class TestGroup1:
    def test_one(self):
        pass
