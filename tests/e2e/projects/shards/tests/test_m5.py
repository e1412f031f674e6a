import time

import pytest


@pytest.mark.parametrize("n", range(15))
def test_m5(n):
    time.sleep(0.005)


class TestGroup5:
    def test_one(self):
        pass
