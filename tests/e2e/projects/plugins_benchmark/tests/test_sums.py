import pytest


def test_sum(benchmark):
    assert benchmark(sum, range(100)) == 4950


@pytest.mark.parametrize("size", [10, 1000])
def test_sorted(benchmark, size):
    data = list(range(size, 0, -1))
    assert benchmark(sorted, data)[0] == 1


def test_without_benchmark():
    assert True
