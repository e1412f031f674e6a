import time

import pytest


@pytest.mark.parametrize("n", range(9))
def test_m3(n):
    time.sleep(0.003)


class TestGroup3:
    def test_one(self):
        pass
