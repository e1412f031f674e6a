"""A tiny inventory library: stock levels, reservations and pricing."""

from inventory.pricing import price_with_tax, volume_discount
from inventory.store import OutOfStock, Store

__all__ = ["OutOfStock", "Store", "price_with_tax", "volume_discount"]
