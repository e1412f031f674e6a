"""``tach-bench watch``: see :mod:`.bench_warm`."""

from .bench_warm import main_watch as main

__all__ = ["main"]
