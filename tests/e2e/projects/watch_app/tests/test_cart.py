from shop.cart import total


def test_total():
    assert total([1, 2]) == 6


def test_empty_total():
    assert total([]) == 0
