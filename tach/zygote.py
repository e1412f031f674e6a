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
worker carries ``config.workerinput`` as pytest-xdist's worker ``gw<slot>`` does, so plugins that
must not act in every worker (the cache provider writing ``lastfailed``) know where they are, and
:mod:`tach.adapters` turns what session-wide plugins set up in the zygote into a worker's. The
zygote plays pytest-xdist's controller: its session ends after the workers', and what plugins
write to the terminal then goes to the supervisor (``SessionFinished``).

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
from typing import TYPE_CHECKING, Any, NoReturn

import orjson
import pytest
from _pytest.pathlib import import_path

from tach import adapters
from tach._native import proc
from tach._native.memfd import LogBuffer
from tach._native.ring import Ring
from tach.adapters.django import RUN_PATHS
from tach.debugger import client as debugger
from tach.isolation import Hermetic
from tach.plugin import TachPlugin
from tach.protocol import Channel, MessageKind
from tach.worker import (
    InitialPaths,
    Worker,
    absolute_argument,
    collected_by_walk,
    end_children,
    end_descendants,
    is_test_module,
    refresh_thread_identity,
    warm_caches,
)

if TYPE_CHECKING:
    from tach.layers import SessionLayer

#: Bytes of freed interpreter blocks each process keeps for reuse (``proc.keep_freed_blocks``):
#: eight arenas, or hundreds of frame-stack chunks.
FREED_BLOCK_BUDGET = 8 << 20
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
        self.slots: dict[int, tuple[int, Ring]] = {}
        #: The output memfd of each slot (the supervisor's; fds 1 and 2 of its workers).
        self.outputs: dict[int, int] = {}
        self._attach_slots(spec.get("slots", []))
        self.ready = False
        #: What the session layer learnt while it prepared (see :meth:`prepare_session`).
        self.session_info: dict[str, Any] = {}
        self.is_worker = False
        #: The units' module paths pytest's walk leaves out (ignore rules and hooks): no
        #: worker needs to collect them, and their tests are not counted.
        self.left_out: list[str] = []
        self.plugin = TachPlugin(self)
        #: pidfd -> (slot, pid) of the live workers.
        self.workers: dict[int, tuple[int, int]] = {}
        #: The failures the supervisor counted (``Shutdown``); plugins may add to them.
        self.reported_failures = 0

    def _attach_slots(self, slots: list[dict[str, Any]]) -> None:
        """Take the slots' command channels, rings and output buffers (fds)."""
        self.slots = {
            slot["slot"]: (slot["command_fd"], Ring.attach(*slot["ring_fds"])) for slot in slots
        }
        self.outputs = {slot["slot"]: slot["output_fd"] for slot in slots if "output_fd" in slot}
        for slot in slots:  # Ring.attach took copies of the ring fds
            for fd in slot["ring_fds"]:
                os.close(fd)

    # -- pytest's command line (pytest_cmdline_main) -------------------------------------------

    def configured(self, config: pytest.Config) -> None:
        """Tell the supervisor what pytest made of the command line, and take back the options
        the supervisor carries out itself.

        pytest has parsed the arguments with its own parser, every plugin's and initial
        conftest's options registered and ``addopts``/``PYTEST_ADDOPTS`` applied: what it
        accepts here is accepted, and what it refuses has already ended this process with
        pytest's message and exit code 4. The supervisor reads what it needs from
        ``Configured`` (see :func:`configured_options`); the options it carries out across the
        whole run (stopping after failures, ``--lf``/``--ff``, pytest-xdist's distribution,
        the JUnit XML file) are then switched off here, so that a worker, which sees only its
        own share, does not act on them too.
        """
        payload = configured_options(config)
        adapters.before_configure(config)
        option = config.option
        self.spec["collect_only"] = bool(option.collectonly)
        self.spec["capture_output"] = option.capture != "no"
        self.spec["junit_xml"] = bool(self.spec.get("junit_xml") or option.xmlpath)
        if option.capture == "no" and "terminal_fds" in self.spec:
            # -s: test output goes to the supervisor's terminal, as pytest's does.
            stdout_fd, stderr_fd = self.spec["terminal_fds"]
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(stdout_fd, 1)
            os.dup2(stderr_fd, 2)
        for fd in self.spec.pop("terminal_fds", ()):
            os.close(fd)
        debugger.install(config)
        debugger.attach(self.spec.get("debug_fd"))
        if self.spec.get("stacks_fd") is not None:
            debugger.write_stacks_on(self.spec["stacks_signal"], self.spec["stacks_fd"])
        option.maxfail = 0
        option.lf = option.failedfirst = False
        option.xmlpath = None
        if getattr(option, "numprocesses", None) is not None:  # pytest-xdist's -n
            option.numprocesses = None
            option.dist = "no"
            option.tx = []
        self.control.send(MessageKind.Configured, payload)

    # -- set-up (pytest_collection) -------------------------------------------------------------

    def prepare(self, session: pytest.Session) -> None:
        """Load conftests and warm imports, freeze the heap, and tell the supervisor.

        In a layered zygote (``spec["layered"]``) this process becomes the session layer:
        :func:`tach.layers.serve_runs` forks a run zygote per request and returns only in one
        of them, which then prepares its own run.
        """
        self._receive_plan()
        self.prepare_session(session)
        if self.spec.get("layered"):
            from tach.layers import serve_runs

            layer, forget = serve_runs(self, session)  # returns in a run zygote only
            if self.spec.get("ahead"):
                forget = self._resume(layer)
            adapters.run_zygote_started(session.config)
            files = [getattr(sys.modules.get(name), "__file__", None) for name in forget]
            forget_modules(forget)
            # While the supervisor plans the run: the changed test modules, imported again as
            # collection imports them (the run's own imports, in order, then find them done).
            self._import_in_collection_order(
                session,
                [f for f in files if f and is_test_module(Path(f), session.config)],
            )
            self._receive_plan()
        self.prepare_run(session)

    def _resume(self, layer: SessionLayer) -> list[str]:
        """In a run zygote forked ahead of its run: wait for the run (``Resume``), then check
        what the session layer imported, as it checks before a fork. Returns the modules to
        forget; exits when the layer went stale meanwhile (``Stale``) or the run never came.
        Either way nothing of pytest's session end runs here: this process ran nothing."""
        message = self.control.recv()
        why: list[str] = []
        if message is not None and message[0] is MessageKind.Resume:
            why, forget = layer.stale(list(message[1].get("conftest_dirs") or []))
            if not why:
                return forget
        with contextlib.suppress(OSError):
            if why:
                self.control.send(MessageKind.Stale, {"paths": why})
        self._unused()

    def _unused(self) -> NoReturn:
        """End a run zygote forked ahead whose run did not come: quietly, with no session
        end (it ran nothing; its plugins' state is the session layer's)."""
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)

    def _receive_plan(self) -> None:
        message = self.control.recv()  # the supervisor's plan, made while pytest started here
        if message is None or message[0] is not MessageKind.Plan:
            if self.spec.get("ahead"):
                self._unused()  # resumed while a change settled, then not used
            pytest.exit("the supervisor abandoned the run", returncode=EXIT_ABANDONED)
        self.spec.update(message[1])

    def prepare_session(self, session: pytest.Session) -> None:
        """What every run of this session shares: the conftests, the warm imports and the test
        modules, imported in pytest's collection order, and the caches filled from them."""
        config = session.config
        header = report_header(config)
        conftest_errors = self._load_conftests(config)
        if not self.spec.get("layered"):
            self._make_basetemp(config)
        warm_failures = self._warm_imports()
        self._import_in_collection_order(session)
        adapters.before_workers(config)
        # Caches every worker would otherwise fill on its own, each in private copy-on-write
        # pages (and the zygote's originals then shared with no one): filled once, here.
        warm_caches()
        prime_plugin_caches()
        self.session_info = {
            "report_header": header,
            "warm_failures": warm_failures,
            "conftest_errors": conftest_errors,
            "python_threads": python_threads(),
        }

    def _make_basetemp(self, config: pytest.Config) -> None:
        """One base temp directory for every worker, made before the fork: workers that each
        made their own would prune each other's (pytest keeps only the last three)."""
        factory = getattr(config, "_tmp_path_factory", None)
        if factory is None:
            return
        basetemp = getattr(factory, "_basetemp", None)
        if basetemp is not None and not Path(basetemp).is_dir():
            factory._basetemp = None  # an earlier run of this session layer removed it
        factory.getbasetemp()

    def prepare_run(self, session: pytest.Session) -> None:
        """This run's part: the units pytest would leave out or run last, the frozen heap, and
        ``ZygoteReady``."""
        config = session.config
        if self.spec.get("layered"):
            self._make_basetemp(config)
            self.left_out = []
            self._import_in_collection_order(session)
        paths = list(self.spec.get("collection_paths", []))
        config.stash[RUN_PATHS] = paths
        run_last = adapters.run_last(config, paths)
        gc.collect()
        gc.freeze()
        self.ready = True
        self.control.send(
            MessageKind.ZygoteReady,
            {
                **self.session_info,
                "pid": self.pid,
                "rootdir": str(config.rootpath),
                "inifile": str(config.inipath) if config.inipath else None,
                "pytest_version": pytest.__version__,
                "python": sys.version.split()[0],
                "warm_imports": self.spec.get("warm_imports", []),
                "default_timeout": self.plugin.default_timeout,
                "run_last": run_last,
                "left_out": self.left_out,
                "plugins": sorted(
                    {dist.project_name for _, dist in config.pluginmanager.list_plugin_distinfo()}
                ),
            },
        )

    def _load_conftests(self, config: pytest.Config) -> list[str]:
        """Load the conftests of every test directory; the directories whose conftests failed
        to import (pytest collects none of the tests below them)."""
        manager = config.pluginmanager
        failed: list[str] = []
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
            except Exception as exc:
                # The worker's collection meets the same error and reports it for the files it
                # concerns, as pytest would.
                failed.append(str(getattr(exc, "path", directory)))
        return failed

    def _warm_imports(self) -> dict[str, str]:
        """Import ``[tool.tach] warm_imports``; the modules that failed, with why."""
        failures: dict[str, str] = {}
        for name in self.spec.get("warm_imports", []):
            try:
                importlib.import_module(name)
            except BaseException as exc:  # an import may raise anything, even SystemExit
                failures[name] = f"{type(exc).__name__}: {exc}"
        return failures

    def _import_in_collection_order(
        self, session: pytest.Session, paths: list[str] | None = None
    ) -> None:
        """Import the test modules at the units' paths in pytest's collection order.

        A test module is imported as pytest's collection imports it (``import_path``, with the
        import mode, its ``sys.path`` entry and assertion rewriting), unless pytest's walk
        would leave it out (:func:`tach.worker.collected_by_walk`): the workers, forked after,
        start with the ``sys.modules`` and ``sys.path`` a test sees under pytest, whose
        collection imports every test module before any test runs (and the modules they
        import are imported once, here, for every worker). A directory (a unit of what only
        pytest can list) gets its ``sys.path`` entry, and under ``--doctest-modules`` its
        modules are imported as the test modules are. A module that fails to import is left to
        the worker that collects it, which reports pytest's error for it. A module the walk
        leaves out is recorded in :attr:`left_out`.
        """
        config = session.config
        mode = str(config.getoption("importmode"))
        namespace = bool(config.getini("consider_namespace_packages"))
        initial = InitialPaths(config)
        # pytest collects a module with its global capture on (``sys.stdout`` is the capture's
        # file then, and a module may keep it); what the imports print is dropped, as pytest
        # shows it only with a collection error, which the worker's collection reports.
        capman = config.pluginmanager.get_plugin("capturemanager")
        capturing = capman is not None and capman.is_globally_capturing()
        if capturing:
            capman.resume_global_capture()
        try:
            for name in self.spec.get("collection_paths", []) if paths is None else paths:
                try:
                    self._import_collected(session, Path(name), initial, mode, namespace)
                except Exception:  # an unreadable path, a hook that raises: the worker says
                    continue
        finally:
            if capturing:
                capman.suspend_global_capture()
                capman.read_global_capture()

    def _import_collected(
        self,
        session: pytest.Session,
        path: Path,
        initial: InitialPaths,
        mode: str,
        namespace: bool,
    ) -> None:
        """What pytest's collection imports at a unit's ``path`` (see
        :meth:`_import_in_collection_order`)."""
        if path.suffix == ".py" and path.is_file():
            if not collected_by_walk(session, path, initial, test_module=False):
                self.left_out.append(str(path))  # an ignore rule or hook leaves it out
            elif initial(path) or is_test_module(path, session.config):
                import_as_collected(path, session.config)
            return
        root = import_root(path, namespace)
        if mode == "prepend" and (not sys.path or sys.path[0] != root):
            sys.path.insert(0, root)
        elif mode == "append" and root not in sys.path:
            sys.path.append(root)
        if session.config.option.doctestmodules and path.is_dir():
            self._import_doctest_modules(session, path, initial)

    def _import_doctest_modules(
        self, session: pytest.Session, directory: Path, initial: InitialPaths
    ) -> None:
        """``--doctest-modules``: import the modules of ``directory`` that pytest's walk
        reaches, in its order (entries by name), as its doctest collection imports them."""
        try:
            entries = sorted(os.scandir(directory), key=lambda entry: entry.name)
        except OSError:
            return
        for entry in entries:
            path = Path(entry.path)
            if entry.is_dir() and entry.name != "__pycache__":
                if collected_by_walk(session, path, initial, test_module=False):
                    self._import_doctest_modules(session, path, initial)
            elif (
                entry.name.endswith(".py")
                and entry.name not in ("setup.py", "__main__.py", "conftest.py")
                and collected_by_walk(session, path, initial, test_module=False)
            ):
                import_as_collected(path, session.config)

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
                            self.reported_failures = int(payload.get("testsfailed", 0))
                            session.testsfailed = self.reported_failures
                            session.testscollected = int(payload.get("testscollected", 0))
                            deadline = time.monotonic() + SHUTDOWN_GRACE_S
                            selector.unregister(self.control.fileno())
                else:
                    self._reap(selector, key.fd)
        selector.close()

    def session_finished(self, session: pytest.Session, exitstatus: int) -> None:
        """After the plugins' session-finish hooks: their terminal summaries, and the failures
        they added, to the supervisor (``SessionFinished``).

        The supervisor writes the run's summary; what plugins add to pytest's (a coverage
        table, a benchmark table, the snapshots a run left unused) they write here, where the
        session ends, as they would at the end of pytest's own summary.
        """
        config = session.config
        reporter = config.pluginmanager.get_plugin("terminalreporter")
        errors = ""
        if reporter is not None:
            try:
                config.hook.pytest_terminal_summary(
                    terminalreporter=reporter, exitstatus=exitstatus, config=config
                )
            except Exception:  # a plugin's summary failed: say so, as pytest's INTERNALERROR
                errors = traceback.format_exc()
        report = self.plugin.terminal_output() + errors
        with contextlib.suppress(OSError):  # the supervisor is gone
            self.control.send(
                MessageKind.SessionFinished,
                {
                    "report": report,
                    "failures": max(0, session.testsfailed - self.reported_failures),
                    # a plugin may set the session's exit status in its session finish (syrupy
                    # does for unused snapshots): pytest exits with what it is then
                    "exitstatus": int(exitstatus),
                    "final_exitstatus": int(session.exitstatus),
                    "internal_error": bool(errors),
                },
            )

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
            adapters.worker_identity(config, slot, len(self.slots), self.spec.get("run_id", ""))
            adapters.worker_started(config)
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
                hermetic=Hermetic.from_spec(self.spec.get("hermetic")),
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


#: pytest's options the supervisor reads from ``Configured`` (their ``dest`` names). Options
#: of plugins that are not installed are simply absent.
CONFIGURED_OPTIONS = (
    "keyword",
    "markexpr",
    "deselect",
    "ignore",
    "ignore_glob",
    "maxfail",
    "verbose",
    "reportchars",
    "tbstyle",
    "durations",
    "durations_min",
    "color",
    "capture",
    "collectonly",
    "lf",
    "failedfirst",
    "last_failed_no_failures",
    "doctestmodules",
    "doctestglob",
    "importmode",
    "override_ini",
    "noconftest",
    "collect_in_virtualenv",
    "confcutdir",
    "pyargs",
    "plugins",
    "xmlpath",
    "numprocesses",
    "showfixtures",
    "show_fixtures_per_test",
    "markers",
    "cacheshow",
    "setupplan",
    "usepdb",
    "trace",
)
#: Options that make pytest show something instead of running tests.
INFORMATIONAL_OPTIONS = ("showfixtures", "show_fixtures_per_test", "markers", "cacheshow")


def configured_options(config: pytest.Config) -> dict[str, Any]:
    """The ``Configured`` message: what pytest made of its command line.

    ``args`` are pytest's collection arguments (the command line's, else ``testpaths``, else
    the invocation directory: ``args_source`` says which) with their path part made absolute
    (a ``--pyargs`` module name found on ``sys.path``, as pytest finds it); ``options`` the
    values of :data:`CONFIGURED_OPTIONS` that this pytest and its plugins define.
    """
    option = config.option
    invocation_dir = config.invocation_params.dir
    args = [absolute_argument(arg, invocation_dir, bool(option.pyargs)) for arg in config.args]
    options: dict[str, Any] = {}
    for name in CONFIGURED_OPTIONS:
        if hasattr(option, name):
            options[name] = as_json(getattr(option, name))
    return {
        "args": args,
        "args_source": getattr(getattr(config, "args_source", None), "name", "ARGS"),
        "rootdir": str(config.rootpath),
        "inifile": str(config.inipath) if config.inipath else None,
        "invocation_dir": str(invocation_dir),
        "options": options,
        "informational": any(getattr(option, name, False) for name in INFORMATIONAL_OPTIONS),
    }


def import_as_collected(path: Path, config: pytest.Config) -> None:
    """Import the module at ``path`` as pytest's collection does (``import_path`` with the
    configured import mode). What goes wrong is left for the worker that collects the module
    to report, as pytest's collection would (a module-level skip, an import error...)."""
    before = set(sys.modules)
    try:
        import_path(
            path,
            mode=config.getoption("importmode"),
            root=config.rootpath,
            consider_namespace_packages=bool(config.getini("consider_namespace_packages")),
        )
    except BaseException:  # a module's import may raise anything
        # ``importlib`` mode leaves the half-run module in ``sys.modules``, where the worker's
        # collection would find it (no tests, no error): take it out.
        for name in set(sys.modules) - before:
            if getattr(sys.modules[name], "__file__", None) == str(path):
                del sys.modules[name]


def import_root(path: Path, consider_namespace_packages: bool) -> str:
    """The directory pytest's ``prepend`` and ``append`` import modes put on ``sys.path`` to
    import the module at ``path`` (a directory stands for the files directly in it)."""
    from _pytest.pathlib import resolve_pkg_root_and_module_name

    if path.is_dir():
        path = path / "__init__.py"
        if not path.is_file():
            return str(path.parent)
    try:
        root, _ = resolve_pkg_root_and_module_name(
            path, consider_namespace_packages=consider_namespace_packages
        )
    except Exception:  # pytest could not name it either; it imports it from its directory
        return str(path.parent)
    return str(root)


def report_header(config: pytest.Config) -> list[str]:
    """The lines plugins and initial conftests add to the header of pytest's report
    (``pytest_report_header``), in pytest's order."""
    found = config.hook.pytest_report_header(config=config, start_path=config.invocation_params.dir)
    lines: list[str] = []
    for line_or_lines in reversed(found):
        if isinstance(line_or_lines, str):
            lines.append(line_or_lines)
        else:
            lines.extend(str(line) for line in line_or_lines)
    return lines


def forget_modules(names: list[str]) -> None:
    """Take the modules ``names`` out of ``sys.modules`` (and off their packages): the next
    import reads their files as they are now."""
    for name in names:
        module = sys.modules.pop(name, None)
        parent, _, child = name.rpartition(".")
        package = sys.modules.get(parent) if parent else None
        if module is not None and getattr(package, child, None) is module:
            with contextlib.suppress(AttributeError, TypeError):
                delattr(package, child)


def as_json(value: Any) -> Any:
    """An option's value as JSON carries it (a path or an enum as its string)."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list | tuple):
        return [as_json(v) for v in value]
    return str(value)


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


def run_pytest(args: list[str], plugin: TachPlugin) -> int | pytest.ExitCode:
    """``pytest.main``, under the name the user typed: its usage errors say ``pytest``, as the
    ``pytest`` command's do (pytest 9.2 names ``pytest.main()`` there otherwise)."""
    import inspect

    from _pytest import config as pytest_config

    named_main = getattr(pytest_config, "_main", None)
    if named_main is not None and "prog" in inspect.signature(named_main).parameters:
        return named_main(args=args, plugins=[plugin], prog="pytest")
    sys.argv[0] = "pytest"  # where pytest's parser takes its name from sys.argv
    return pytest.main(args, plugins=[plugin])


def set_up_process(spec: dict[str, Any]) -> None:
    """What a process started by the supervisor (a zygote, a base layer) does first: die with
    its parent, keep freed blocks, and take the ``sys.path`` of the command the user typed."""
    proc.set_pdeathsig(signal.SIGKILL, parent_pid=spec["supervisor_pid"])
    # Frame-stack chunks and arenas the interpreter frees are kept for reuse, in the zygote and
    # every process forked from it (see csrc/proc.pyx: a test whose calls cross a chunk's end
    # would map and unmap one per call).
    proc.keep_freed_blocks(FREED_BLOCK_BUDGET)
    if not spec.get("cwd_on_path", True) and sys.path and sys.path[0] in ("", os.getcwd()):
        del sys.path[0]  # put there by ``python -m``; the command the user typed had none
    sys.path[:0] = spec.get("python_path", [])


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m tach.zygote SPEC``."""
    args = sys.argv[1:] if argv is None else argv
    spec = orjson.loads(args[0])
    set_up_process(spec)
    return run_zygote(spec)


def run_zygote(spec: dict[str, Any]) -> int:
    """Run pytest as the zygote of ``spec``; its exit status (a worker exits here)."""
    proc.set_pdeathsig(signal.SIGKILL, parent_pid=spec["supervisor_pid"])
    zygote = Zygote(spec)
    code = run_pytest(spec["pytest_args"], zygote.plugin)
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
