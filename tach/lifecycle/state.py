"""The state of one run, which every part of the supervisor reads and writes.

:class:`RunSpec` is what the command line asks for, :class:`Slot` one worker slot, and
:class:`RunState` everything else a run keeps: the queue, the results and counts, the zygote and
its channels, how far an interrupt has gone. The mixins that make up
:class:`tach.lifecycle.Supervisor` add behaviour over it, each concern in a module of its own
(``tach/lifecycle/__init__.py`` lists them).
"""

from __future__ import annotations

import dataclasses
import selectors
import subprocess
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from tach._native.memfd import LogBuffer
from tach._native.ring import Ring
from tach.protocol import Channel
from tach.results import Stats, TestResult
from tach.scheduler import Reporter, RunSummary, Unit, UnitQueue

if TYPE_CHECKING:
    from tach.lifecycle.layers import LayerProcess, WarmSession
    from tach.lifecycle.timers import Timer

#: What handling a well-formed frame with a payload of the wrong shape raises.
BAD_PAYLOAD = (KeyError, TypeError, ValueError, AttributeError, IndexError, AssertionError)


@dataclasses.dataclass
class RunSpec:
    """Everything the supervisor needs to run the tests."""

    python: str
    invocation_dir: str
    pytest_args: list[str]
    workers: int
    isolation: str = "module"
    capture_output: bool = True
    collect_only: bool = False
    maxfail: int = 0
    python_path: list[str] = dataclasses.field(default_factory=list)
    env: dict[str, str] | None = None
    durations: dict[str, float] = dataclasses.field(default_factory=dict)
    #: The run writes JUnit XML: test processes forward ``record_testsuite_property`` calls.
    junit_xml: bool = False
    #: Seconds per test (0: none), for the whole run (0: none).
    timeout: float = 0.0
    session_timeout: float = 0.0
    #: Namespaces and limits of test processes (``tach.isolation.Hermetic.to_spec``).
    hermetic: dict[str, Any] = dataclasses.field(default_factory=dict)
    #: The invocation directory leads ``sys.path`` in the zygote, as under ``python -m pytest``
    #: (``python -m tach``); the ``tach`` command, like the ``pytest`` command, leaves it out.
    cwd_on_path: bool = True
    #: Added to what reporters get at the run's start (``tach --watch``: the cycle).
    run_info: dict[str, Any] = dataclasses.field(default_factory=dict)
    #: The supervisor has a terminal to lend to a test stopped in pdb (``tach.debugger``).
    debug: bool = False


@dataclasses.dataclass
class Slot:
    """A worker slot: its channels, and what its current worker is doing."""

    index: int
    channel: Channel
    ring: Ring
    #: fds 1 and 2 of the slot's workers and test processes (read for crash and timeout reports).
    output: LogBuffer | None = None
    timer: Timer | None = None
    worker_pid: int = 0
    ready: bool = False
    stopping: bool = False
    done: bool = False
    deaths: int = 0
    unit: Unit | None = None
    unit_ids: list[str] = dataclasses.field(default_factory=list)
    #: Ids of the unit being collected, while its ``UnitCollected`` parts arrive.
    collecting: list[str] = dataclasses.field(default_factory=list)
    current: TestResult | None = None
    #: The last test of the previous unit, held until the worker has moved on.
    held: TestResult | None = None
    #: Its ring was found corrupt: the slot is not used again.
    retired: bool = False


class RunState:
    """What one run keeps; the mixins of :class:`tach.lifecycle.Supervisor` act on it."""

    def __init__(
        self,
        spec: RunSpec,
        reporter: Reporter,
        decide_exit: Callable[[RunSummary], int] | None = None,
    ) -> None:
        self.spec = spec
        self.reporter = reporter
        #: Chooses the exit code the reporters are told about (the command line's rule).
        self.decide_exit = decide_exit
        self.queue = UnitQueue([], spec.durations)
        self.stats = Stats()
        self.results: dict[str, TestResult] = {}
        self.collect_errors: list[dict[str, Any]] = []
        self.warnings: list[dict[str, Any]] = []
        self.usage_errors: list[str] = []
        self.internal_errors: list[str] = []
        self.interrupted: str | None = None
        #: The run was cut short by a signal or ``--session-timeout`` (exit code 2).
        self.aborted = False
        #: When the workers' grace period after an interrupt ends (then everything is killed).
        self.abort_deadline: float | None = None
        self.killed = False
        self.not_run: list[str] = []
        #: Units an interrupt took off the queue.
        self.dropped: list[Unit] = []
        self.signals: list[int] = []
        self.deselected = 0
        self.failures = 0
        self.zygote: subprocess.Popen[bytes] | LayerProcess | None = None
        #: The warm session layer run zygotes are forked from (None: a cold zygote is started).
        self.layer: WarmSession | None = None
        #: The run zygote is forked from :attr:`layer` ahead of the run, and waits for
        #: :meth:`tach.lifecycle.Supervisor.resume` (``tach --watch``: the next run's).
        self.ahead = False
        #: ... and its run started (``Resume`` sent).
        self.resumed = False
        self.zygote_ready = False
        #: The zygote's ``SessionFinished``: how its pytest session (the plugins') ended.
        self.session_end: dict[str, Any] = {}
        self.zygote_log = LogBuffer("tach-zygote-output")
        self.selector = selectors.DefaultSelector()
        self.slots: list[Slot] = []
        self.control: Channel | None = None
        self.started = time.perf_counter()
        self.started_monotonic = time.monotonic()
        #: pytest-timeout's setting in the zygote, the default when ``--timeout`` is not given.
        self.zygote_timeout = 0.0
        self.zygote_deaths = 0
        #: A replacement zygote is starting (the previous one died mid-run).
        self.restarting = False
        self.plan: dict[str, Any] = {
            "conftest_dirs": [],
            "warm_imports": [],
            "collection_paths": [],
        }

    def _report_unit(self, event: str, slot: Slot) -> None:
        """``unit_start`` or ``unit_finished`` of ``slot``'s unit, to a reporter that draws the
        run's timeline. ``on_unit`` is optional (reporters without it are not told), so that
        every other reporter stays as it is."""
        hook = getattr(self.reporter, "on_unit", None)
        if hook is not None and slot.unit is not None:
            hook(event, slot.unit, slot.index)
