import pytest


def test_one(record):
    record()


def test_two(record):
    record()


def test_three(record):
    record()


@pytest.mark.parametrize("n", range(4))
def test_param(record, n):
    record()


class TestGroup:
    def test_a(self, record):
        record()

    def test_b(self, record):
        record()

    def test_c(self, record):
        record()


def test_faker_fixture(record, faker):
    record()
    assert faker.name()
