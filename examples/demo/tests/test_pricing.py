import pytest

from inventory import price_with_tax, volume_discount


@pytest.mark.parametrize(
    ("cents", "rate", "expected"),
    [(100, 20, 120), (999, 0, 999), (1, 50, 2), pytest.param(250, 8, 270, id="reduced-rate")],
)
def test_price_with_tax(cents, rate, expected):
    assert price_with_tax(cents, rate) == expected


@pytest.mark.parametrize(("qty", "percent"), [(1, 0), (10, 5), (99, 5), (100, 15)])
def test_volume_discount(qty, percent):
    assert volume_discount(qty) == percent


def test_catalogue_prices_are_positive(catalogue):
    assert all(price > 0 for price in catalogue.values())


@pytest.mark.xfail(reason="rounding of half cents is banker's rounding in the old system", strict=True)
def test_half_cent_rounds_to_even():
    assert price_with_tax(5, 10) == 5  # 5.5 cents: this library rounds half up, to 6


@pytest.mark.skip(reason="currency conversion is not implemented yet")
def test_currency_conversion():
    pass


def test_bulk_discount_applies_at_fifty():
    # Deliberately failing: the demo shows how Tach reports a failure.
    assert volume_discount(50) == 10, "the sales team promised 10% from 50 units"
