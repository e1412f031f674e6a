import time

import pytest


@pytest.mark.parametrize("n", range(12))
def test_m4(n):
    time.sleep(0.004)


class TestGroup4:
    def test_one(self):
        pass
