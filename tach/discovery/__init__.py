"""Static discovery: source -> tests and fixtures with ``ast``; never imports user code.

:func:`discover` (in :mod:`.core`) is the entry point: it finds the rootdir and config file
(:mod:`.ini`), walks the arguments as pytest would (:mod:`.walk`), summarises each file once
(:mod:`.parse`, cached by :mod:`.cache`), and collects tests and fixtures from the summaries
(:mod:`.collect`, :mod:`.params`, :mod:`.names`, :mod:`.plugins`). See ``docs/discovery.md``.

The names below are imported lazily, so that ``tach list`` answering from its cache does not
pay for the whole machinery.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .cache import CacheStats
    from .core import Discovery, apply_selection, discover
    from .ini import CollectOptions, ConfigError, ProjectConfig
    from .model import DiscoveryError, DiscoveryResult, FixtureDef, TestDef

__all__ = [
    "CacheStats",
    "CollectOptions",
    "ConfigError",
    "Discovery",
    "DiscoveryError",
    "DiscoveryResult",
    "FixtureDef",
    "ProjectConfig",
    "TestDef",
    "apply_selection",
    "discover",
]

_WHERE = {
    "CacheStats": "cache",
    "CollectOptions": "ini",
    "ConfigError": "ini",
    "ProjectConfig": "ini",
    "Discovery": "core",
    "apply_selection": "core",
    "discover": "core",
    "DiscoveryError": "model",
    "DiscoveryResult": "model",
    "FixtureDef": "model",
    "TestDef": "model",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
