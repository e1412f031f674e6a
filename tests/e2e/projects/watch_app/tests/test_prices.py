from shop.prices import price


def test_price_of_one():
    assert price(1) == 2


def test_price_of_none():
    assert price(0) == 0
