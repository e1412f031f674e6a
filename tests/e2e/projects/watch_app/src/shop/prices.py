def price(units):
    return units * 2
