from shop.labels import label


def test_label(currency):
    assert label(3, currency) == "#3 EUR"


def test_label_number(currency):
    assert label(4, currency).startswith("#4")
