"""``tach --watch``: run the tests, then run what each change affects (``docs/watch.md``).

* :mod:`~tach.watch.session`: :class:`WatchSession`, the loop, its runs and its layers.
* :mod:`~tach.watch.changes`: batches of changed files, from watchdog, filtered and debounced.
Which test modules a change affects comes from the import graph, :mod:`tach.graph`.
"""

from tach.watch.session import WatchSession

__all__ = ["WatchSession"]
