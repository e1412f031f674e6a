"""Prices in cents: tax and volume discounts."""

from __future__ import annotations


def price_with_tax(cents: int, rate_percent: int) -> int:
    """The price with tax, rounded half up to a whole cent."""
    return (cents * (100 + rate_percent) + 50) // 100


def volume_discount(qty: int) -> int:
    """Percent off for buying ``qty`` units at once."""
    if qty >= 100:
        return 15
    if qty >= 10:
        return 5
    return 0
