"""Process ownership: the supervisor starts the zygote, drives the run and ends every process.

The code is in :mod:`tach.lifecycle.supervisor`; this package re-exports the names the rest of
Tach imports from ``tach.lifecycle``.
"""

from __future__ import annotations

from tach.lifecycle.supervisor import (
    RunSpec,
    Slot,
    Supervisor,
    Timer,
    checked_pid,
    describe_exit,
    describe_returncode,
    end_zygote,
    format_seconds,
    kill_group,
    run,
    send_signal,
    wait_exit,
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
