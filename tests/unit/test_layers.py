"""What a session layer forgets when files change: the changed modules and their dependents."""

from __future__ import annotations

import types
from pathlib import Path

from tach.layers import dependents, import_names, references, users_of


def test_import_names_are_absolute_and_include_from_import_submodules(tmp_path: Path) -> None:
    path = tmp_path / "mod.py"
    path.write_text(
        '"""Doc."""\n'
        "import a.b as c, d  # comment\n"
        "from . import sibling\n"
        "from ..up import (one,\n    two as deux)\n"
        "from e.f import *\n"
        "def later():\n"
        "    from g import h; import i\n"
    )
    assert import_names(str(path), "pkg.sub") == {
        "a.b",
        "d",
        "pkg.sub",
        "pkg.sub.sibling",
        "pkg.up",
        "pkg.up.one",
        "pkg.up.two",
        "e.f",
        "g",
        "g.h",
        "i",
    }


def _module(name: str, **values: object) -> types.ModuleType:
    module = types.ModuleType(name)
    vars(module).update(values)
    return module


def test_dependents_follow_imports_and_references_transitively() -> None:
    prices = _module("shop.prices")
    exec("def price(units):\n    return units * 2\n", vars(prices))

    class Handler:
        pass

    Handler.__module__ = "shop.handlers"
    handlers = _module("shop.handlers", Handler=Handler)
    cart = _module("shop.cart", price=prices.price)  # from shop.prices import price
    registry = _module("shop.registry", HANDLERS={"x": Handler()})  # an instance in a dict
    tables = _module("shop.tables", TABLE={i: str(i) for i in range(1000)})
    api = _module("shop.api", total=None)
    shop = _module("shop", prices=prices, cart=cart)  # its submodules: not a dependency
    modules = {m.__name__: m for m in (prices, handlers, cart, registry, tables, api, shop)}
    static = {"shop.api": frozenset({"shop.cart"})}  # import statements name it

    def uses(name: str, module: object) -> frozenset[str]:
        return references(module) | static.get(name, frozenset())

    users = users_of(modules, uses)
    assert dependents({"shop.prices"}, users) == {"shop.prices", "shop.cart", "shop.api"}
    assert dependents({"shop.handlers"}, users) == {"shop.handlers", "shop.registry"}
    assert dependents({"shop.tables"}, users) == {"shop.tables"}
