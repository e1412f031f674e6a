import time

import pytest


@pytest.mark.parametrize("n", range(6))
def test_m2(n):
    time.sleep(0.002)


class TestGroup2:
    def test_one(self):
        pass
