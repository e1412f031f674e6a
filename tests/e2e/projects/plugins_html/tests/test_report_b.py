import pytest
import pytest_html


@pytest.mark.parametrize("n", range(5))
def test_param(n):
    assert n < 4


def test_with_extras(extras):
    extras.append(pytest_html.extras.text("attached text", name="note"))
    extras.append(pytest_html.extras.url("https://example.invalid/"))


class TestInClass:
    def test_one(self):
        pass

    def test_two(self):
        pass
