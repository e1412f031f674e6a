"""Process ownership: the supervisor starts the zygote, drives the run and ends every process.

:class:`Supervisor` is one run, made of one module per concern (this package re-exports the
names the rest of Tach imports from ``tach.lifecycle``; the faults are described in
``docs/faults.md``):

* :mod:`~tach.lifecycle.supervisor`: :class:`Supervisor`, the run from start to summary,
  and the event loop.
* :mod:`~tach.lifecycle.state`: :class:`RunSpec`, :class:`Slot`, and ``RunState``, the state
  every part reads and writes.
* :mod:`~tach.lifecycle.processes`: signalling and waiting for processes (functions,
  no run state).
"""

from __future__ import annotations

from tach.lifecycle.processes import end_zygote, kill_group, send_signal, wait_exit
from tach.lifecycle.state import RunSpec, Slot
from tach.lifecycle.supervisor import (
    Supervisor,
    Timer,
    checked_pid,
    describe_exit,
    describe_returncode,
    format_seconds,
    run,
)

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
