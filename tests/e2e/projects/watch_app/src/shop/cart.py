from shop.prices import price


def total(items):
    return sum(price(units) for units in items)
