"""Tach's native core: Cython modules over libc for the hot paths.

* :mod:`tach._native.proc`  — fork with CPython's fork hooks, clone/unshare with namespace flags,
  parent-death signals, pidfds, ``wait4`` with resource usage, resource limits.
* :mod:`tach._native.memfd` — memfd-backed log buffers that test processes write fds 1 and 2 into.
* :mod:`tach._native.ring`  — a shared-memory single-producer/single-consumer ring of frames.
* :mod:`tach._native.frame` — the wire format: frame encode/decode and a stream decoder.

The modules are imported by name (``from tach._native import frame``); nothing is re-exported
here so that importing one does not load the others.
"""
