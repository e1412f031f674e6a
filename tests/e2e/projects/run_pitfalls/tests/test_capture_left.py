import pytest


@pytest.mark.parametrize("n", range(5))
def test_noisy_failure(n):
    for line in range(200):
        print("left", n, line)
    assert False, "left fails on purpose"
