"""Stock kept per SKU, with reservations that must never exceed what is on hand."""

from __future__ import annotations

import sqlite3


class OutOfStock(Exception):
    """Raised when a reservation asks for more than is available."""


class Store:
    """Stock levels in an SQLite database (in memory unless a path is given)."""

    def __init__(self, path: str = ":memory:") -> None:
        self.db = sqlite3.connect(path)
        self.db.execute("CREATE TABLE IF NOT EXISTS stock (sku TEXT PRIMARY KEY, qty INTEGER)")

    def receive(self, sku: str, qty: int) -> None:
        if qty <= 0:
            raise ValueError(f"cannot receive {qty} of {sku}")
        self.db.execute(
            "INSERT INTO stock VALUES (?, ?) ON CONFLICT(sku) DO UPDATE SET qty = qty + ?",
            (sku, qty, qty),
        )

    def available(self, sku: str) -> int:
        row = self.db.execute("SELECT qty FROM stock WHERE sku = ?", (sku,)).fetchone()
        return row[0] if row else 0

    def reserve(self, sku: str, qty: int) -> int:
        have = self.available(sku)
        if qty > have:
            raise OutOfStock(f"{sku}: asked for {qty}, have {have}")
        self.db.execute("UPDATE stock SET qty = qty - ? WHERE sku = ?", (qty, sku))
        return have - qty

    def close(self) -> None:
        self.db.close()
