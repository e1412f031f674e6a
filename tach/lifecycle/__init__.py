"""Process ownership: the supervisor starts the zygote, drives the run and ends every process.

:class:`Supervisor` is one run, made of one module per concern (this package re-exports the
names the rest of Tach imports from ``tach.lifecycle``; the faults are described in
``docs/faults.md``):

* :mod:`~tach.lifecycle.supervisor`: :class:`Supervisor`, the run from start to summary,
  and the event loop.
* :mod:`~tach.lifecycle.state`: :class:`RunSpec`, :class:`Slot`, and ``RunState``, the state
  every part reads and writes.
* :mod:`~tach.lifecycle.zygote_process`: starting and stopping the zygote, and its
  control channel.
* :mod:`~tach.lifecycle.rings`: what workers send through their result rings; finalising
  tests; handing out units.
* :mod:`~tach.lifecycle.timers`: per-test and per-worker timeouts, ``--session-timeout``,
  the grace period after an interrupt.
* :mod:`~tach.lifecycle.crashes`: which test a dead worker or zygote is blamed for, and
  the report it gets.
* :mod:`~tach.lifecycle.signals`: SIGINT, SIGTERM and SIGHUP; interrupting the run;
  killing everything.
* :mod:`~tach.lifecycle.processes`: signalling and waiting for processes (functions,
  no run state).

Why mixins and not helper objects: the parts share one run's state and call each other in
cycles. A timer that expires drains its slot's ring and may kill everything; a worker's death
finalises results, puts the rest of its unit back on the queue and respawns the worker through
the control channel, or starts a new zygote; an interrupt drains every ring and asks which tests
ran to their end. Helper objects would each need a reference to the others (or to the
supervisor, the same thing one hop away), which buys indirection and no encapsulation. So each
part is a mixin over :class:`~tach.lifecycle.state.RunState`: the state is declared once, each
concern's methods are in one file, and :class:`Supervisor` is their sum. What a mixin calls on
``self`` without defining it belongs to the concern the list above names: ``_drain`` and
``_finalize`` to the rings, ``_arm`` to the timers, ``_kill_all`` to the signals, and so on.
"""

from __future__ import annotations

from tach.lifecycle.crashes import describe_exit, describe_returncode
from tach.lifecycle.processes import end_zygote, kill_group, send_signal, wait_exit
from tach.lifecycle.rings import checked_pid
from tach.lifecycle.state import RunSpec, Slot
from tach.lifecycle.supervisor import Supervisor, run
from tach.lifecycle.timers import Timer, format_seconds

__all__ = [
    "RunSpec",
    "Slot",
    "Supervisor",
    "Timer",
    "checked_pid",
    "describe_exit",
    "describe_returncode",
    "end_zygote",
    "format_seconds",
    "kill_group",
    "run",
    "send_signal",
    "wait_exit",
]
