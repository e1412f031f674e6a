import time

import pytest


@pytest.mark.parametrize("n", range(18))
def test_m6(n):
    time.sleep(0.006)


class TestGroup6:
    def test_one(self):
        pass
