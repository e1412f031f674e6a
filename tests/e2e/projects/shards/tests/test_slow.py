import time

import pytest


@pytest.mark.parametrize("n", range(3))
def test_slow(n):
    time.sleep(0.15)
