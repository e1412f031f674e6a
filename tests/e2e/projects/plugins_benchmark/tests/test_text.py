import pytest


@pytest.mark.benchmark(group="text")
def test_join(benchmark):
    assert benchmark(" ".join, ["a"] * 50).count("a") == 50


@pytest.mark.benchmark(group="text")
def test_pedantic(benchmark):
    benchmark.extra_info["kind"] = "pedantic"
    assert benchmark.pedantic(str.upper, args=("abc",), rounds=3, iterations=2) == "ABC"


class TestMore:
    def test_format(self, benchmark):
        assert benchmark("{}-{}".format, 1, 2) == "1-2"
