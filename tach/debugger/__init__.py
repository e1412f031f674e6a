"""Debugging inside forked, parallel tests: pdb in any test process, on the user's terminal.

``breakpoint()``, ``pdb.set_trace()``, ``--pdb`` and ``--trace`` stop a test in its own
process, which may be one of many running at once. That process has no terminal: its fds are
pytest's capture files and the slot's output memfd. So the test process asks the supervisor for
the terminal (:mod:`~tach.debugger.wire`: a request with a private socket, over a socketpair the
supervisor made and every process of the run inherits), runs pytest's pdb on a pseudo-terminal of
its own (:mod:`~tach.debugger.client`, in test processes), and the supervisor relays the bytes
between that socket and its terminal (:mod:`~tach.debugger.relay`, and
``tach.lifecycle.debugging`` in the event loop), one session at a time. Other workers go on
running; what they report is held back until the session ends. ``docs/debugging.md`` is the
user's side of it.

The package is shared by both sides (``tests/test_layering.py``): ``wire`` and ``relay`` import
only the standard library and orjson; ``client`` imports pytest, and only test processes (the
plugin, the worker) import it.
"""
