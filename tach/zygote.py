"""The zygote: a pytest process that is fully set up once and then only forks workers.

``python -m tach.zygote SPEC`` (SPEC: a JSON object the supervisor writes) runs
``pytest.main`` with Tach's plugin. pytest parses its configuration, loads plugins and initial
conftests and starts the session exactly as it would on its own; then, in place of collection, the
zygote loads the conftests of every test directory and imports the warm modules, freezes the heap
(``gc.freeze()``, so that forked workers do not copy it by touching reference counts in garbage
collection), reports ``ZygoteReady`` and serves ``SpawnWorker`` requests.

Each worker is a fork that leaves the serving loop and runs :class:`tach.worker.Worker`; when the
worker is told to stop, it returns through pytest's own ``pytest_runtestloop`` exit, so
``pytest_sessionfinish`` and ``pytest_unconfigure`` run in the worker as they would in pytest. The
worker carries ``config.workerinput`` as pytest-xdist's workers do, so plugins that must not act
in every worker (the cache provider writing ``lastfailed``) know where they are.

The zygote has no Python thread but its main one when it forks (it checks, and the supervisor
warns, naming them, when a conftest or a warm import started one); it never runs a test. It
ignores SIGINT (the supervisor decides what an interrupt does), dies with its supervisor
(``PR_SET_PDEATHSIG``; end of the control channel is the alive-pipe check), and is a child
subreaper: what a worker leaves behind when it dies re-parents to the zygote, which ends it when
it reaps the worker. After the session it ends with ``os._exit`` once its exit handlers have run.
"""

from __future__ import annotations

import atexit
import contextlib
import gc
import importlib
import os
import selectors
import signal
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any, NoReturn

import orjson
import pytest

from tach._native import proc
from tach._native.memfd import LogBuffer
from tach._native.ring import Ring
from tach.plugin import TachPlugin
from tach.protocol import Channel, MessageKind
from tach.worker import (
    Worker,
    end_children,
    end_descendants,
    refresh_thread_identity,
    warm_caches,
)

#: Exit status of a zygote whose supervisor gave up on the run before it started.
EXIT_ABANDONED = 2
#: Exit status of a worker that failed outside any test (an internal error).
EXIT_WORKER_BROKEN = 3
#: Exit status of a zygote whose supervisor died.
EXIT_ORPHANED = 70
#: How long the zygote waits for workers to exit after ``Shutdown`` before killing them.
SHUTDOWN_GRACE_S = 10.0


class Zygote:
    """The zygote's state: its spec, its channels, and the workers it has forked."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.pid = os.getpid()
        self.control = Channel.from_fd(spec["control_fd"], "control channel")
        self.slots = {
            slot["slot"]: (slot["command_fd"], Ring.attach(*slot["ring_fds"]))
            for slot in spec["slots"]
        }
        #: The output memfd of each slot (the supervisor's; fds 1 and 2 of its workers).
        self.outputs: dict[int, int] = {
            slot["slot"]: slot["output_fd"] for slot in spec["slots"] if "output_fd" in slot
        }
        for slot in spec["slots"]:  # Ring.attach took copies of the ring fds
            for fd in slot["ring_fds"]:
                os.close(fd)
        self.ready = False
        self.is_worker = False
        self.plugin = TachPlugin(self)
        #: pidfd -> (slot, pid) of the live workers.
        self.workers: dict[int, tuple[int, int]] = {}

    # -- set-up (pytest_collection) -------------------------------------------------------------

    def prepare(self, session: pytest.Session) -> None:
        """Load conftests and warm imports, freeze the heap, and tell the supervisor."""
        config = session.config
        message = self.control.recv()  # the supervisor's plan, made while pytest started here
        if message is None or message[0] is not MessageKind.Plan:
            pytest.exit("the supervisor abandoned the run", returncode=EXIT_ABANDONED)
        self.spec.update(message[1])
        self._load_conftests(config)
        factory = getattr(config, "_tmp_path_factory", None)
        if factory is not None:
            # One base temp directory for every worker, made before the fork: workers that each
            # made their own would prune each other's (pytest keeps only the last three).
            factory.getbasetemp()
        warm_failures = self._warm_imports()
        # Caches every worker would otherwise fill on its own, each in private copy-on-write
        # pages (and the zygote's originals then shared with no one): filled once, here.
        warm_caches()
        prime_plugin_caches()
        gc.collect()
        gc.freeze()
        self.ready = True
        self.control.send(
            MessageKind.ZygoteReady,
            {
                "pid": self.pid,
                "rootdir": str(config.rootpath),
                "inifile": str(config.inipath) if config.inipath else None,
                "pytest_version": pytest.__version__,
                "python": sys.version.split()[0],
                "warm_imports": self.spec.get("warm_imports", []),
                "warm_failures": warm_failures,
                "python_threads": python_threads(),
                "default_timeout": self.plugin.default_timeout,
                "plugins": sorted(
                    {dist.project_name for _, dist in config.pluginmanager.list_plugin_distinfo()}
                ),
            },
        )

    def _load_conftests(self, config: pytest.Config) -> None:
        manager = config.pluginmanager
        importmode = config.getoption("importmode")
        namespace = config.getini("consider_namespace_packages")
        for directory in self.spec.get("conftest_dirs", []):
            try:
                manager._loadconftestmodules(
                    Path(directory),
                    importmode,
                    rootpath=config.rootpath,
                    consider_namespace_packages=namespace,
                )
            except Exception:
                # The worker's collection meets the same error and reports it for the files it
                # concerns, as pytest would.
                continue

    def _warm_imports(self) -> dict[str, str]:
        failures: dict[str, str] = {}
        for name in self.spec.get("warm_imports", []):
            try:
                importlib.import_module(name)
            except BaseException as exc:  # an import may raise anything, even SystemExit
                failures[name] = f"{type(exc).__name__}: {exc}"
        return failures

    # -- serving (pytest_runtestloop) -----------------------------------------------------------

    def serve(self, session: pytest.Session) -> None:
        """Fork workers on request until ``Shutdown``; in a worker, run it and return."""
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        with contextlib.suppress(OSError):
            proc.set_child_subreaper(True)
        # From now on the supervisor's death is a SIGTERM that ends the whole tree below the
        # zygote, including helpers a test daemonised (they re-parent to the subreapers).
        signal.signal(signal.SIGTERM, self._orphaned)
        try:
            proc.set_pdeathsig(signal.SIGTERM, parent_pid=self.spec["supervisor_pid"])
        except ProcessLookupError:
            self._orphaned(signal.SIGTERM, None)
        selector = selectors.DefaultSelector()
        selector.register(self.control.fileno(), selectors.EVENT_READ, None)
        shutting_down = False
        deadline = 0.0
        while not shutting_down or self.workers:
            timeout = max(0.0, deadline - time.monotonic()) if shutting_down else None
            events = selector.select(timeout)
            if shutting_down and not events and time.monotonic() >= deadline:
                self._kill_workers(selector)
                continue
            for key, _ in events:
                if key.data is None:
                    messages = self.control.read_available() if not shutting_down else []
                    if messages is None:  # the supervisor is gone
                        selector.unregister(self.control.fileno())
                        self._kill_workers(selector)
                        end_descendants()
                        shutting_down = True
                        deadline = time.monotonic()
                        continue
                    for kind, payload in messages:
                        if kind is MessageKind.SpawnWorker:
                            if self._spawn(session, selector, payload["slot"]):
                                return  # this process is now a worker whose work is done
                        elif kind is MessageKind.Shutdown:
                            shutting_down = True
                            # pytest computes the session's exit status from these once the
                            # loop returns; its session-finish hooks see that status
                            session.testsfailed = int(payload.get("testsfailed", 0))
                            session.testscollected = int(payload.get("testscollected", 0))
                            deadline = time.monotonic() + SHUTDOWN_GRACE_S
                            selector.unregister(self.control.fileno())
                else:
                    self._reap(selector, key.fd)
        selector.close()

    def _spawn(self, session: pytest.Session, selector: selectors.BaseSelector, slot: int) -> bool:
        """Fork the worker of ``slot``. Returns True in the worker once it has finished."""
        sys.stdout.flush()
        sys.stderr.flush()
        # the parent-death signal is armed in the child before any Python code runs there
        pid = proc.fork(signal.SIGKILL)
        if pid:
            pidfd = proc.pidfd_open(pid)
            self.workers[pidfd] = (slot, pid)
            selector.register(pidfd, selectors.EVENT_READ, slot)
            return False
        try:
            self.is_worker = True
            refresh_thread_identity()
            signal.signal(signal.SIGINT, signal.default_int_handler)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            selector.close()
            for pidfd in self.workers:
                os.close(pidfd)
            self.workers.clear()
            self.control.close()
            command_fd, ring = self.slots[slot]
            for other, (fd, other_ring) in self.slots.items():
                if other != slot:
                    os.close(fd)
                    other_ring.close()
            output = None
            for other, fd in self.outputs.items():
                if other == slot:
                    output = LogBuffer.attach(fd)
                os.close(fd)
            config = session.config
            config.workerinput = {  # type: ignore[attr-defined]
                "workerid": f"tach{slot}",
                "workercount": len(self.slots),
                "testrunuid": self.spec.get("run_id", ""),
            }
            config.workeroutput = {}  # type: ignore[attr-defined]
            worker = Worker(
                self.plugin,
                session,
                slot,
                Channel.from_fd(command_fd, f"command channel of slot {slot}"),
                ring,
                isolation=self.spec["isolation"],
                capture_output=self.spec.get("capture_output", True),
                collect_only=self.spec.get("collect_only", False),
                output=output,
                dump_signal=self.spec.get("dump_signal", 0),
                max_memory=self.spec.get("max_memory", 0),
            )
            worker.serve()
            leave_temp_cleanup_to_zygote(config)
        except BaseException:
            traceback.print_exc()
            sys.stderr.flush()
            os._exit(EXIT_WORKER_BROKEN)
        return True

    def _reap(self, selector: selectors.BaseSelector, pidfd: int) -> None:
        slot, pid = self.workers.pop(pidfd)
        selector.unregister(pidfd)
        os.close(pidfd)
        result = proc.wait4(pid, 0)
        status = result.status if result is not None else 0
        # What the worker left behind re-parented to this subreaper: end it.
        workers = {worker_pid for _, worker_pid in self.workers.values()}
        left = end_children(workers)
        with contextlib.suppress(OSError):  # the supervisor is gone; we are shutting down anyway
            for description in left:
                self.control.send(
                    MessageKind.Warning,
                    {
                        "message": f"{description} was left running by worker {pid}; Tach ended it",
                        "category": "TachWarning",
                        "filename": "",
                        "lineno": 0,
                        "when": "runtest",
                        "nodeid": "",
                    },
                )
            self.control.send(
                MessageKind.WorkerExited, {"slot": slot, "pid": pid, "status": status}
            )

    def _orphaned(self, signum: int, frame: Any) -> None:
        """The supervisor died: end every process below the zygote, then the zygote."""
        end_descendants()
        os._exit(EXIT_ORPHANED)

    def _kill_workers(self, selector: selectors.BaseSelector) -> None:
        for pidfd in list(self.workers):
            with contextlib.suppress(ProcessLookupError):
                proc.pidfd_send_signal(pidfd, signal.SIGKILL)
            self._reap(selector, pidfd)


def python_threads() -> list[str]:
    """The Python threads running besides this one, by name.

    A fork copies only the thread that forks: a Python thread started at import (a conftest,
    a warm import) is missing from every worker, and a lock it held at the fork stays held
    there. Threads of C libraries that have no Python state are not counted: the one such
    library that starts threads at import in practice, OpenBLAS (through numpy), stops its
    thread pool before a fork and starts it again in the child when it next needs it.
    """
    current = threading.get_ident()
    named = {thread.ident: thread.name for thread in threading.enumerate()}
    return sorted(
        named.get(ident, f"thread {ident}") for ident in sys._current_frames() if ident != current
    )


def leave_temp_cleanup_to_zygote(config: pytest.Config) -> None:
    """In a worker whose tests are done: leave the base temporary directory to the zygote.

    Every worker shares the zygote's base directory (``getbasetemp`` ran before the fork), and
    pytest's temporary-directory plugin cleans it up when a session finishes: with
    ``tmp_path_retention_policy = failed`` it removes it outright if the session's tests all
    passed, and it prunes the other numbered directories under the user's temp root. A worker
    doing that would pull the directory from under tests still running in other workers, and
    judge by its own tests only. The plugin's hooks are unregistered here, so only the zygote's
    session finish cleans up, once, after every worker has ended, with the whole run's status.
    """
    manager = config.pluginmanager
    plugin = manager.get_plugin("tmpdir")
    if plugin is not None:
        manager.unregister(plugin)


def prime_plugin_caches() -> None:
    """Fill, before the workers are forked, the one-time caches of plugins of the warm modules.

    Hypothesis's pytest plugin reads every module in ``sys.modules`` when it first meets a
    property-based test (``_get_local_constants``: the source of each project module parsed for
    its constants, then only modules imported since). In a worker that first read cost about
    0.1 s of CPU and 3 MiB of newly private pages on the heavy-imports benchmark suite, in every
    worker; here it is done once, and workers add only what they import themselves.
    """
    if "hypothesis" not in sys.modules:  # no test module imports it: its plugin does nothing
        return
    try:
        from hypothesis.internal.conjecture.providers import _get_local_constants
    except Exception:  # another version of Hypothesis: it fills its cache itself, as in pytest
        return
    with contextlib.suppress(Exception):
        _get_local_constants()


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m tach.zygote SPEC``."""
    args = sys.argv[1:] if argv is None else argv
    spec = orjson.loads(args[0])
    proc.set_pdeathsig(signal.SIGKILL, parent_pid=spec["supervisor_pid"])
    sys.path[:0] = spec.get("python_path", [])
    zygote = Zygote(spec)
    code = pytest.main(spec["pytest_args"], plugins=[zygote.plugin])
    if zygote.is_worker:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)  # the zygote's atexit handlers are not the worker's
    return int(code)


def exit_now(code: int) -> NoReturn:
    """End the process as an interpreter's exit would, without freeing its heap.

    The supervisor waits for the zygote to end before it reports, and tearing down every
    module and object of the warm imports serves no one: an interpreter that has imported the
    heavy-imports benchmark suite's modules takes 0.14–0.22 s to exit, 0.01 s with ``os._exit``.
    The exit handlers run and the standard streams are flushed, then the process ends.
    """
    try:
        atexit._run_exitfuncs()
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
        with contextlib.suppress(Exception):
            sys.stderr.flush()
        os._exit(code)


if __name__ == "__main__":
    exit_now(main())
