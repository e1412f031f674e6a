"""The pytest-side unit runner: a worker holds one slot, collects units and runs their items.

A worker is a fork of the zygote. For each ``RunUnit`` it collects the unit with pytest
(``session.perform_collect``: pytest is the authority on which items a unit holds), then runs the
items according to the isolation mode:

``none``
    in the worker itself, like pytest does.
``module``
    in a child forked per unit. Fixtures wider than the unit (package, session) are *primed* in
    the worker first, so they are set up once per worker and survive the child.
``test``
    in a child forked per test, with everything wider than the test (class, module, package,
    session) primed in the worker before each fork.

Priming, as pytest's ``SetupState`` sees it (a worked example, module mode)::

    worker stack before the fork:  [Session, Dir tests, Package tests/pkg]      (+ session fixtures)
    child runs item 1:             [Session, Dir, Package, Module, Function 1]
    child tears down item 1 up to item 2's chain; item 2 ... ; the last item is torn down up to a
    Boundary whose chain is the worker's stack, so the child pops Module and below, never Package.
    worker, before the next unit:  teardown_exact(up to the next unit's worker chain)

A wider fixture is requested at its *effective* scope (an indirect parametrization can narrow
it), with exactly the item's parameter; items are run in groups of equal wide parameters, one
child per group, so a child never sees a parameter the worker did not prime (which would make the
child ``finish()`` the worker's copy). A wider fixture that a child sets up itself (through
``request.getfixturevalue``) is torn down by that child before it exits and primed by the worker
from then on, so it is neither left without teardown nor set up again for every test.

A child that dies — a signal, ``os._exit``, an exception that escapes pytest — is blamed on the
item and phase its progress word names; the worker reports that test as failed in that phase with
the head and tail of the child's output, and runs the rest of the batch in a fresh child.

The worker is a *child subreaper*: a process a test leaves behind (a daemon that double-forked
and called ``setsid``) re-parents to the worker, which ends it as soon as the test process has
ended and names it in a warning. The worker's own children from before the fork (a server a
session fixture started) are left alone, and multiprocessing's helpers that the test process
started (its resource tracker, its fork server), which end by themselves once it has ended, are
waited for instead (:func:`release_helpers`). ``KeyboardInterrupt`` in a child (the supervisor sends
SIGINT when the run is interrupted) tears down what the child set up before it exits.
"""

from __future__ import annotations

import contextlib
import faulthandler
import fcntl
import gc
import inspect
import linecache
import os
import select
import shutil
import signal
import sys
import threading
import time
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
import pytest
from _pytest.outcomes import TEST_OUTCOME, Exit
from _pytest.runner import CallInfo
from _pytest.scope import Scope

from tach import adapters
from tach._native import proc
from tach._native.memfd import LogBuffer
from tach.debugger import client as debugger
from tach.heap import young_collections_only
from tach.isolation import (
    EXIT_NOT_ISOLATED,
    Hermetic,
    SharedNamespaces,
    death_cause,
    limit_cpu,
    under_tmp,
)
from tach.isolation import enter as enter_namespaces
from tach.plugin import PHASE_CALL, PHASE_NAMES, PHASE_NONE, PHASE_SETUP, PHASE_TEARDOWN, Progress
from tach.protocol import Channel, MessageKind, output_excerpt

if TYPE_CHECKING:
    from tach._native.ring import Ring
    from tach.plugin import TachPlugin

#: Node ids per ``UnitCollected`` message.
COLLECTED_IDS_PER_MESSAGE = 2000
#: Exit status of a test process whose pytest run was ended by an exception escaping pytest.
EXIT_ESCAPED = 70
#: Exit status of a test process ended by ``KeyboardInterrupt`` (after its teardown).
EXIT_INTERRUPTED = 71
#: Seconds a helper process of multiprocessing's (see :func:`release_helpers`) is given to end by
#: itself once nothing holds its pipe any more; one that has not is ended as left running.
HELPER_GRACE = 5.0


class Boundary:
    """A stand-in for pytest's ``nextitem``: ``SetupState.teardown_exact`` pops nodes until the
    stack is a prefix of ``listchain()``, so this chain is where a teardown stops."""

    def __init__(self, chain: Sequence[pytest.Item | pytest.Collector]) -> None:
        self._chain = list(chain)
        self.nodeid = self._chain[-1].nodeid if self._chain else ""

    def listchain(self) -> list[pytest.Item | pytest.Collector]:
        return self._chain

    def __repr__(self) -> str:
        return f"<Boundary {self.nodeid!r}>"


def get_reraise_exceptions(config: pytest.Config) -> tuple[type[BaseException], ...]:
    """The exceptions pytest lets escape a test phase (``_pytest.runner``'s rule)."""
    try:
        from _pytest.runner import get_reraise_exceptions as pytests  # pytest >= 9
    except ImportError:  # pytest 8.4 builds the same tuple inside call_and_report
        return (Exit,) if config.getoption("usepdb", False) else (Exit, KeyboardInterrupt)
    return pytests(config)


def effective_scope(item: pytest.Item, name: str) -> Scope | None:
    """The scope ``name`` has for ``item``: indirect parametrization can narrow it, and a
    class-scoped fixture of a test outside any class lives as long as the test (pytest hangs
    its finalizers on the item itself)."""
    callspec = getattr(item, "callspec", None)
    if callspec is not None and name in callspec._arg2scope:
        scope = callspec._arg2scope[name]
    else:
        defs = item._fixtureinfo.name2fixturedefs.get(name)  # type: ignore[attr-defined]
        scope = defs[-1]._scope if defs else None
    if scope is Scope.Class and item.getparent(pytest.Class) is None:
        return Scope.Function
    return scope


def slice_items(
    items: list[pytest.Item], index: int, bounds: Sequence[int], ids: Sequence[str]
) -> list[pytest.Item]:
    """The items of slice ``index`` of a unit (see ``tach.scheduler.UnitSlice``).

    The supervisor cut the unit by static discovery and recorded durations; pytest's
    collection has the last word, and every slice of the unit sees the same items, so each
    makes the same corrections:

    * a cut inside a class that a class-scoped fixture binds (its own, an xunit
      ``setup_class``, a unittest ``setUpClass``) moves to the nearer end of the class, so
      that the fixture is set up once, as pytest does;
    * where a module-scoped fixture binds a test (an xunit ``setup_module``, a plugin's), or a
      class-scoped one binds a test outside any class (pytest then keeps it for the module),
      slice 0 runs every item and the others none.

    So no test runs twice or not at all; an item static discovery did not expect runs in
    slice 0.
    """
    position = {test_id: i for i, test_id in enumerate(ids)}
    spans: dict[int, list[int]] = {}  # outermost class -> first and last position
    bound: set[int] = set()  # outermost classes a class-scoped fixture binds
    for item in items:
        outer = None
        node = item.parent
        while node is not None:
            if isinstance(node, pytest.Class):
                outer = node
            node = node.parent
        scopes = _fixture_scopes(item)
        if Scope.Module in scopes or (Scope.Class in scopes and outer is None):
            return items if index == 0 else []
        at = position.get(item.nodeid)
        if outer is None or at is None:
            continue
        span = spans.setdefault(id(outer), [at, at])
        span[0], span[1] = min(span[0], at), max(span[1], at)
        if Scope.Class in scopes:
            bound.add(id(outer))
    cuts = list(bounds)
    for key in bound:
        first, last = spans[key]
        for k in range(1, len(cuts) - 1):
            if first < cuts[k] <= last:
                cuts[k] = first if cuts[k] - first <= last + 1 - cuts[k] else last + 1
    cuts.sort()
    lo, hi = cuts[index], cuts[index + 1]
    chosen = []
    for item in items:
        at = position.get(item.nodeid)
        if at is None:
            if index == 0:
                chosen.append(item)
        elif lo <= at < hi:
            chosen.append(item)
    return chosen


def _fixture_scopes(item: pytest.Item) -> set[Scope]:
    info = getattr(item, "_fixtureinfo", None)
    if info is None:  # no fixtures at all (a doctest, a plugin's item)
        return set()
    return {scope for name in info.names_closure if (scope := effective_scope(item, name))}


def worker_chain(item: pytest.Item) -> list[pytest.Item | pytest.Collector]:
    """The nodes a worker owns in module mode: the session and the directories above the file."""
    chain = item.listchain()
    depth = 0
    for node in chain:
        if not isinstance(node, pytest.Session | pytest.Directory):
            break
        depth += 1
    return chain[:depth]


def adopt_directories(
    stack: dict[Any, Any], chain: Sequence[pytest.Item | pytest.Collector]
) -> None:
    """Re-key ``SetupState.stack`` so that the directories it holds are the nodes of ``chain``.

    Every unit's collection makes new ``Dir``/``Package`` nodes for the same directories. The
    worker's stack still holds the previous unit's, with their finalizers (package fixtures);
    adopting the new nodes in their place keeps a package set up across units instead of
    tearing it down because the node objects differ.
    """
    nodes = list(stack)
    if all(a is b for a, b in zip(nodes, chain, strict=False)):
        return
    adopted = {}
    for index, node in enumerate(nodes):
        new = chain[index] if index < len(chain) else None
        if (
            new is not None
            and new is not node
            and isinstance(node, pytest.Directory)
            and type(new) is type(node)
            and new.nodeid == node.nodeid
            and new.path == node.path
        ):
            adopted[new] = stack[node]
        else:
            adopted[node] = stack[node]
    stack.clear()
    stack.update(adopted)


def refresh_thread_identity() -> None:
    """Give the forking thread, now the child's main thread, the child's native thread id.

    Python before 3.12 keeps the parent's id after a fork, so in a worker or a test process
    ``threading.main_thread().native_id`` would name a thread of another process (a test that
    looks itself up in ``/proc/self/task`` by it fails).
    """
    current = threading.current_thread()
    native_id = threading.get_native_id()
    if current.native_id != native_id:
        current._native_id = native_id  # type: ignore[attr-defined]


def warm_caches(items: Sequence[pytest.Item] = ()) -> None:
    """Fill, before forking, the caches that test processes would otherwise fill each time.

    A test process ends with everything it cached. Rendering a failure's traceback asks
    ``inspect.getmodule``, which maps every module imported since its last call to a real path
    (a ``realpath`` per module: tens of milliseconds with a few hundred modules), and
    ``linecache`` for the test file's lines. Done here once, the children inherit both.
    """
    if not _map_new_modules():
        inspect.getmodule(_WARM_CODE)  # a file no module has: maps every module not yet mapped
    for path in {str(item.path) for item in items if getattr(item, "path", None)}:
        linecache.getlines(path)


_WARM_CODE = compile("", "<tach: inspect module cache>", "exec")


def _map_new_modules() -> bool:
    """Map, as ``inspect.getmodule`` does, only the modules imported since the last mapping.

    ``inspect.getmodule`` walks all of ``sys.modules`` on every call, and the walk writes to the
    reference count of every module, name and file string: in a forked process that is a private
    copy of each page they live on (about 4 MiB per worker on the heavy-imports benchmark suite,
    whose zygote holds some 800 modules). New modules are at the end of ``sys.modules``, so the
    walk goes backwards and stops at the first module already mapped. Returns False (the caller
    maps the full way) when ``inspect`` keeps its map differently, or nothing was mapped yet.
    """
    by_name = getattr(inspect, "_filesbymodname", None)
    by_file = getattr(inspect, "modulesbyfile", None)
    if not isinstance(by_name, dict) or not isinstance(by_file, dict) or not by_name:
        return False
    new = []
    for name in reversed(sys.modules):
        if name in by_name:
            break
        new.append(name)
    for name in reversed(new):  # in import order, as getmodule maps them
        module = sys.modules.get(name)
        if not inspect.ismodule(module) or not hasattr(module, "__file__"):
            continue
        file = module.__file__
        by_name[name] = file
        try:
            file = inspect.getabsfile(module)
        except (TypeError, OSError):
            continue
        by_file[file] = by_file[os.path.realpath(file)] = module.__name__
    return True


def describe_status(
    pid: int,
    status: int,
    hermetic: Hermetic | None = None,
    notes: dict[str, Any] | None = None,
) -> str:
    """What happened to a process, for a crash report (a limit it died of, named)."""
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        cause = death_cause(hermetic or Hermetic(), sig)
        if cause is not None:
            return f"Test process {pid} was {cause}"
        try:
            name = signal.Signals(sig).name
        except ValueError:
            name = f"signal {sig}"
        return f"Test process {pid} was killed by signal {sig} ({name})"
    code = os.WEXITSTATUS(status)
    if code == EXIT_ESCAPED:
        return f"Test process {pid} ended: an exception escaped pytest's test protocol"
    if code == EXIT_INTERRUPTED:
        return f"Test process {pid} ended: KeyboardInterrupt"
    if code == EXIT_NOT_ISOLATED:
        why = (notes or {}).get("not_isolated", "")
        return f"Test process {pid} could not be isolated ({why}); it ran no test"
    return f"Test process {pid} exited with status {code} in the middle of the test"


def wants_host_network(item: pytest.Item) -> bool:
    """Whether ``item`` is marked ``@pytest.mark.network`` (it keeps the host's network)."""
    return item.get_closest_marker("network") is not None


def basetemp(config: pytest.Config) -> str | None:
    """pytest's base temporary directory of the run, if it was made (the zygote makes it)."""
    factory = getattr(config, "_tmp_path_factory", None)
    path = getattr(factory, "_basetemp", None)
    return str(path) if path is not None else None


class NoHostNetwork:
    """With ``--isolation none --isolate-network`` the worker itself is in the isolated network
    namespace and cannot leave it: a test marked ``@pytest.mark.network`` fails in setup,
    saying so, rather than running without the network it asked for."""

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        if wants_host_network(item):
            pytest.fail(
                "@pytest.mark.network: with --isolation none the tests run in the worker, "
                "which --isolate-network put in a network namespace of its own; use "
                "--isolation module or test to give marked tests the host's network",
                pytrace=False,
            )


def own_files(capturing: Any) -> None:
    """Give a forked worker's pytest capture (inherited, suspended) files of its own under
    the same file descriptors: an fd-level capture's temporary file (shared with the zygote
    and every other worker otherwise, one file offset for all) and the descriptor it restores
    when capture is suspended (now this process's fd 1 or 2, the worker's memfd). Its Python
    objects, ``sys.stdout``'s stand-in among them, stay the ones the zygote had. An in-memory
    (``--capture=sys``) capture is private to the process already."""
    import tempfile

    for capture in (capturing.out, capturing.err):
        saved = getattr(capture, "targetfd_save", None)
        tmpfile = getattr(capture, "tmpfile", None)
        if saved is None or tmpfile is None:
            continue
        os.dup2(capture.targetfd, saved)
        with contextlib.suppress(AttributeError, OSError, ValueError):
            fd = tmpfile.fileno()
            with tempfile.TemporaryFile(buffering=0) as private:
                os.dup2(private.fileno(), fd)
            tmpfile.seek(0)
            tmpfile.truncate()


def absolute_argument(arg: str, invocation_dir: Path, pyargs: bool = False) -> str:
    """A pytest collection argument with its path part absolute (``::`` parts kept); with
    ``pyargs``, a module name becomes the path pytest finds for it on ``sys.path``."""
    path, sep, rest = arg.partition("::")
    if pyargs:
        from _pytest import main as pytest_main

        search = getattr(pytest_main, "search_pypath", None)
        found = None
        if search is not None:
            with contextlib.suppress(Exception):
                found = search(path)
        if found is not None:
            path = found
    return os.path.normpath(invocation_dir / path) + sep + rest


class InitialPaths:
    """``Session.isinitpath`` as it answers in a whole pytest run: the paths the user named
    (``config.args``: the command line's, or ``testpaths``), not the unit's.

    A worker collects each unit by its path, which makes that path an initial path to pytest,
    and pytest applies none of its ignore rules to an initial path or the directories above
    it: ``collect_ignore`` and ``collect_ignore_glob`` (also computed at run time),
    ``pytest_ignore_collect`` hooks, ``--ignore``, ``--ignore-glob``, ``norecursedirs``, virtual
    environments, nor ``python_files``. A file pytest's walk of a named directory would pass
    by would then run under Tach. Answering with the user's paths instead, the walk from a
    named directory down to the unit's path goes through every one of those rules, as it
    does in pytest (``Dir.collect`` and ``Package.collect`` ask this before each entry).
    """

    def __init__(self, config: pytest.Config) -> None:
        invocation_dir = config.invocation_params.dir
        pyargs = bool(getattr(config.option, "pyargs", False))
        paths = {
            Path(absolute_argument(arg, invocation_dir, pyargs).partition("::")[0])
            for arg in config.args
        }
        self.paths = frozenset(paths)
        self.with_parents = frozenset(
            {*paths, *(parent for path in paths for parent in path.parents)}
        )

    def __call__(self, path: str | os.PathLike[str], *, with_parents: bool = False) -> bool:
        path = path if isinstance(path, Path) else Path(path)
        return path in (self.with_parents if with_parents else self.paths)


def collected_by_walk(
    session: pytest.Session, path: Path, initial: InitialPaths, *, test_module: bool = True
) -> bool:
    """Whether pytest's walk from the paths the user named reaches ``path``: no ignore rule
    (``pytest_ignore_collect``, which applies ``collect_ignore``, ``--ignore``,
    ``norecursedirs``...) leaves out it or a directory above it, and, for a ``test_module``
    the user did not name, it matches ``python_files``."""
    if initial(path):
        return True
    config = session.config
    root = next((p for p in path.parents if initial(p)), None)
    if root is None:
        return True  # outside what the user named: collected as named
    below = [p for p in (path, *path.parents) if root in p.parents]
    for entry in reversed(below):
        if initial(entry, with_parents=True):
            continue
        if session.gethookproxy(entry.parent).pytest_ignore_collect(
            collection_path=entry, config=config
        ):
            return False
    return not test_module or is_test_module(path, config)


def is_test_module(path: Path, config: pytest.Config) -> bool:
    """Whether ``path`` matches ``python_files`` (pytest's python plugin collects it)."""
    from _pytest.python import path_matches_patterns

    return path_matches_patterns(path, config.getini("python_files"))


class Worker:
    """One worker slot: receives units on its command channel, reports on its result ring."""

    def __init__(
        self,
        plugin: TachPlugin,
        session: pytest.Session,
        slot: int,
        channel: Channel,
        ring: Ring,
        *,
        isolation: str,
        capture_output: bool,
        collect_only: bool,
        output: LogBuffer | None = None,
        dump_signal: int = 0,
        hermetic: Hermetic | None = None,
    ) -> None:
        self.plugin = plugin
        self.session = session
        self.config = session.config
        self.slot = slot
        self.channel = channel
        self.ring = ring
        self.isolation = isolation
        self.capture_output = capture_output
        self.collect_only = collect_only
        self.progress = Progress()
        #: fds 1 and 2 of the worker and its test processes; the supervisor can read it too.
        self.output = output if output is not None else LogBuffer(f"tach-test-output-{slot}")
        #: The signal on which a test process writes its threads' stacks (a timeout).
        self.dump_signal = dump_signal
        #: Namespaces and limits of test processes (``docs/isolation.md``).
        self.hermetic = hermetic if hermetic is not None else Hermetic()
        #: The namespaces its test processes enter (made in :meth:`serve`).
        self.namespaces = SharedNamespaces()
        #: The run's own directories under /tmp, by the paths they were picked from.
        self.kept_under_tmp: tuple[tuple[str, ...], list[str]] = ((), [])
        #: Set once the supervisor said ``StopWorker`` while a unit was running.
        self.stopping = False
        #: Wider fixtures that a child set up itself; primed by the worker from then on.
        self.dynamic_wide: set[str] = set()
        #: The last item this worker (or its children) ran: teardown errors of what the worker
        #: holds are reported against it, as pytest reports them against the session's last test.
        self.last_item: pytest.Item | None = None
        self.reraise = get_reraise_exceptions(self.config)
        #: In a test process: the note it leaves the worker (see :meth:`leave_note`).
        self.child_notes: dict[str, Any] = {}
        #: multiprocessing's temporary directory of the zygote, if it made one: not ours to remove.
        self.inherited_tempdir = multiprocessing_tempdir()

        plugin.ring = ring
        plugin.slot = slot
        debugger.slot = slot
        plugin.producer_pid = plugin.runner_pid = os.getpid()
        # The paths the user named are pytest's initial paths, whatever a unit collects.
        session.isinitpath = InitialPaths(self.config)  # type: ignore[method-assign]

    # -- the loop -----------------------------------------------------------------------------

    def serve(self) -> None:
        """Run units until told to stop, then tear down what the worker holds."""
        self.isolate_output()
        self.plugin.leave_terminal_text()
        with contextlib.suppress(OSError):
            proc.set_child_subreaper(True)
        if self.isolation == "none":
            self.isolate(host_network=False)  # the worker is the test process
            if self.hermetic.network:
                self.config.pluginmanager.register(NoHostNetwork(), "tach-no-host-network")
        elif self.hermetic.active:
            self.namespaces = SharedNamespaces.make(self.hermetic, self.dirs_under_tmp())
        self.plugin.send(MessageKind.WorkerReady, {"slot": self.slot, "pid": os.getpid()})
        while True:
            message = self.channel.recv()
            if message is None or message[0] is MessageKind.StopWorker:
                break
            if message[0] is MessageKind.RunUnit:
                self.run_unit(message[1])
        self.teardown_to([], blame=self.last_item)
        self.end_orphans(set(), self.last_item, helpers=release_helpers())
        remove_own_tempdir(self.inherited_tempdir)
        self.plugin.send_terminal_text("")
        self.plugin.send(MessageKind.WorkerDone, {"slot": self.slot, "pid": os.getpid()})

    def stop_requested(self) -> bool:
        """Whether the supervisor has asked this worker to stop (read without blocking)."""
        if not self.stopping:
            messages = self.channel.poll()
            self.stopping = messages is None or any(
                kind is MessageKind.StopWorker for kind, _ in messages
            )
        return self.stopping

    def dirs_under_tmp(self) -> list[str]:
        """The directories the run lives in that lie under /tmp, kept visible under a private
        /tmp: pytest's base temporary directory, the rootdir, the invocation directory, the
        interpreter and ``sys.path`` (picked again only when one of them changed)."""
        if not self.hermetic.private_tmp:
            return []
        config = self.config
        paths = tuple(
            path
            for path in (
                basetemp(config),
                str(config.rootpath),
                str(config.invocation_params.dir),
                os.getcwd(),
                sys.prefix,
                sys.exec_prefix,
                os.path.dirname(sys.executable),
                *sys.path,
            )
            if path
        )
        if paths != self.kept_under_tmp[0]:
            self.kept_under_tmp = (paths, under_tmp(paths))
        return self.kept_under_tmp[1]

    def isolate(self, host_network: bool) -> None:
        """Put this process in its namespaces and under its limits: a test process enters the
        worker's (:class:`tach.isolation.SharedNamespaces`), the worker with isolation none
        makes its own (:func:`tach.isolation.enter`)."""
        if not self.hermetic.active:
            return
        if self.isolation == "none":
            enter_namespaces(self.hermetic, host_network=host_network, keep=self.dirs_under_tmp())
        else:
            self.namespaces.enter(self.hermetic, host_network=host_network)

    def end_orphans(
        self, keep: set[int], blame: pytest.Item | None, helpers: Sequence[int] = ()
    ) -> int:
        """End the processes a test left behind (they re-parented to this subreaper); how many.

        ``helpers`` are multiprocessing's helper processes of the interpreter that ran the test,
        which end by themselves (see :func:`release_helpers`): they are waited for, not ended.
        """
        described = end_children(keep, helpers)
        for description in described:
            self.plugin.send(
                MessageKind.Warning,
                {
                    "message": f"{description} was left running by the test process; Tach ended it",
                    "category": "TachWarning",
                    "filename": "",
                    "lineno": 0,
                    "when": "runtest",
                    "nodeid": blame.nodeid if blame is not None else "",
                },
            )
        return len(described)

    def run_unit(self, unit: dict[str, Any]) -> None:
        items = self.collect(unit)
        if items and not self.collect_only:
            if self.isolation == "none":
                self.run_inline(items)
            else:
                self.run_forked(items, per_test=self.isolation == "test")
        self.plugin.send(MessageKind.UnitFinished, {"unit": unit["unit"]})

    def collect(self, unit: dict[str, Any]) -> list[pytest.Item]:
        plugin = self.plugin
        plugin.collect_errors = []
        plugin.deselected = 0
        usage_error = None
        # A directory unit leaves out the files that are units of their own
        # (``TachPlugin.pytest_ignore_collect``).
        plugin.excluded = frozenset(Path(path) for path in unit.get("ignore", ()))
        try:
            # A unit's items live as long as the unit: full collections while pytest makes
            # them walk them again and again (packaging's 51,524 items of one module: 26-40
            # passes, 1 s of each worker's CPU).
            with young_collections_only():
                items = list(self.session.perform_collect(unit["args"]))
        except pytest.UsageError as exc:
            items, usage_error = [], self.usage_error(exc)
        finally:
            plugin.excluded = frozenset()
            pending = getattr(self.session._fixturemanager, "_pending_conftests", None)
            if pending is not None:  # pytest >= 9.1: for the units still to come
                pending.update(plugin.pending_conftests)
                plugin.pending_conftests = {}
        deselected, errors = plugin.deselected, plugin.collect_errors
        if usage_error and errors:
            # "found no collectors": the unit's collection failed (a conftest that raises, say),
            # which its error reports say; pytest's whole-suite run reports them the same way.
            usage_error = None
        if unit.get("slice"):
            # One slice of a heavy module: every slice collects the whole module and runs its
            # share; the module's collection results are reported by the first.
            spec = unit["slice"]
            items = slice_items(items, spec["index"], spec["bounds"], spec["ids"])
            if spec["index"]:
                deselected, errors = 0, []
        # In parts: a module can hold tens of thousands of parametrized tests.
        ids = [item.nodeid for item in items]
        for start in range(0, max(len(ids), 1), COLLECTED_IDS_PER_MESSAGE):
            last = start + COLLECTED_IDS_PER_MESSAGE >= len(ids)
            self.plugin.send(
                MessageKind.UnitCollected,
                {
                    "unit": unit["unit"],
                    "ids": ids[start : start + COLLECTED_IDS_PER_MESSAGE],
                    "final": last,
                    "errors": errors if last else [],
                    "deselected": deselected if last else 0,
                    "usage_error": usage_error if last else None,
                },
            )
        return items

    def usage_error(self, exc: pytest.UsageError) -> str | None:
        """pytest's usage error for a unit, less what pytest's own walk leaves out silently.

        A unit's path that is not one the user named (a file found under a directory they
        named) goes through pytest's ignore rules (:class:`InitialPaths`); when they leave it
        out, pytest says it "found no collectors" for it, where its walk of the directory would
        have passed it by without a word (or "not found", when the rules leave out a directory
        above it). That is not an error: the unit has no tests.
        """
        kept = []
        for message in (str(arg) for arg in exc.args):
            for prefix in ("found no collectors for ", "not found: "):
                if message.startswith(prefix):
                    arg = message[len(prefix) :].partition("\n")[0]
                    path = Path(arg.partition("::")[0])
                    if path.exists() and not self.session.isinitpath(path):
                        break
            else:
                kept.append(message)
        return "\n".join(kept) or None

    # -- running ------------------------------------------------------------------------------

    def run_inline(self, items: list[pytest.Item]) -> None:
        """Isolation ``none``: the worker runs the items itself."""
        self.teardown_to(worker_chain(items[0]), blame=self.last_item)
        boundary = Boundary(worker_chain(items[-1]))
        hook = self.config.hook
        for index, item in enumerate(items):
            self.plugin.item_index = index
            self.plugin.current_item = item
            if self.capture_output:
                self.output.reset()  # a crash report shows this test's output only
            nextitem = items[index + 1] if index + 1 < len(items) else boundary
            limit_cpu(self.hermetic)
            try:
                hook.pytest_runtest_protocol(item=item, nextitem=nextitem)
            except Exit as exc:
                if not debugger.attached():
                    raise
                # pytest's ``Exit`` (the user quit the debugger): the supervisor stops the run;
                # what the unit set up is torn down, as after an interrupt.
                debugger.end()
                debugger.request_exit(str(exc.msg))
                with contextlib.suppress(BaseException):
                    self.session._setupstate.teardown_exact(boundary)
                return
            except KeyboardInterrupt:
                if not self.stop_requested():
                    # Raised by the test itself: this worker's death is its failure. pytest
                    # ends its session there, and its session finish tears down every fixture
                    # still set up (function, class, module, session): so does the worker,
                    # before it dies.
                    with contextlib.suppress(BaseException):
                        self.session._setupstate.teardown_exact(None)
                    raise
                # Interrupted by the supervisor: tear down what the unit set up, then stop.
                with contextlib.suppress(BaseException):
                    self.session._setupstate.teardown_exact(boundary)
                return
            self.last_item = item
            if self.stop_requested():
                return

    def run_forked(self, items: list[pytest.Item], per_test: bool) -> None:
        """Isolation ``module`` or ``test``: each batch of items runs in a fresh child."""
        warm_caches(items)
        start = 0
        while start < len(items):
            end = start + 1 if per_test else self.group_end(items, start)
            owned = items[start].listchain()[:-1] if per_test else worker_chain(items[start])
            self.teardown_to(owned, blame=self.last_item)
            primed: dict[tuple[str, Any] | None, bool] = {}
            for item in items[start:end]:
                self.prime(item, owned, Scope.Function if per_test else Scope.Module, primed)
            # The child stops its teardown at what the worker holds; in module mode that is the
            # worker chain, also when a group of other wide parameters follows in this unit.
            boundary = Boundary(owned)
            start = self.run_child(items, start, end, boundary)
            if self.stop_requested():
                return
        # Module mode: the worker chain stays for the next unit. Test mode: the worker holds the
        # unit's module and class; tear them down now, blaming the unit's last test.
        if per_test:
            self.teardown_to(worker_chain(items[-1]), blame=items[-1])

    def group_end(self, items: list[pytest.Item], start: int) -> int:
        """End of the run of items from ``start`` whose wider-than-module parameters are equal
        (and, under ``--isolate-network``, that agree on ``@pytest.mark.network``)."""
        key = self.batch_key(items[start])
        end = start + 1
        while end < len(items) and self.batch_key(items[end]) == key:
            end += 1
        return end

    def batch_key(self, item: pytest.Item) -> tuple[Any, ...]:
        """What the items one test process runs have in common."""
        if self.hermetic.network:
            return (self.wide_params(item), wants_host_network(item))
        return (self.wide_params(item),)

    @staticmethod
    def wide_params(item: pytest.Item) -> tuple[tuple[str, int], ...]:
        callspec = getattr(item, "callspec", None)
        if callspec is None:
            return ()
        return tuple(
            sorted(
                (name, index)
                for name, index in callspec.indices.items()
                if (scope := effective_scope(item, name)) is not None and scope > Scope.Module
            )
        )

    def prime(
        self,
        item: pytest.Item,
        owned: list[pytest.Item | pytest.Collector],
        level: Scope,
        primed: dict[tuple[str, Any] | None, bool] | None = None,
    ) -> None:
        """Set up the nodes ``owned`` and every fixture of ``item`` wider than ``level``.

        ``primed`` remembers, across the items of one batch (whose wider parameters are
        equal), which fixture definitions were already requested and whether they raised: a
        cached fixture asked for again by every item of a module cost a lookup per test.
        """
        setupstate = self.session._setupstate
        for node in owned[len(setupstate.stack) :]:
            setupstate.stack[node] = ([node.teardown], None)
            try:
                node.setup()
            except TEST_OUTCOME as exc:  # recorded as SetupState.setup does; each item re-raises it
                setupstate.stack[node] = (setupstate.stack[node][0], (exc, exc.__traceback__))
                return
        request = getattr(item, "_request", None)
        if not request or not hasattr(item, "_fixtureinfo"):
            return  # doctests and plugin items: nothing to prime
        names = [
            name
            for name in item.fixturenames  # type: ignore[attr-defined]
            if (scope := effective_scope(item, name)) is not None and scope > level
        ]
        names += sorted(self.dynamic_wide - set(names))
        also, never = adapters.priming(self.config, item)
        names += [name for name in also if name not in names]
        if never:
            names = [name for name in names if name not in never]
        name2fixturedefs = item._fixtureinfo.name2fixturedefs  # type: ignore[attr-defined]
        if primed is None:
            primed = {}
        setupstate.stack[item] = ([], None)  # briefly, so that pytest 9.1+ sees an active node
        try:
            for name in names:
                defs = name2fixturedefs.get(name)
                # The definition the item's request resolves the name to (the last visible).
                key = (name, defs[-1]) if defs else None
                if key in primed:
                    if primed[key]:
                        continue
                    break  # it raised for an earlier item: nothing after it is set up either
                try:
                    request.getfixturevalue(name)
                except pytest.FixtureLookupError:
                    continue  # a dynamically requested name this item cannot see
                except TEST_OUTCOME:
                    # Cached in the FixtureDef (an error, or a skip such as a unittest class's
                    # ``skipUnless``): the child re-raises it in the item's setup, as pytest
                    # would for every test that requests the fixture.
                    if key is not None:
                        primed[key] = False
                    break
                if key is not None:
                    primed[key] = True
        finally:
            finalizers, _ = setupstate.stack.pop(item)
            assert not finalizers, "priming attached finalizers to the item itself"

    def teardown_to(
        self, chain: list[pytest.Item | pytest.Collector], blame: pytest.Item | None
    ) -> None:
        """Tear the worker's stack down to a prefix of ``chain``; errors are ``blame``'s."""
        setupstate = self.session._setupstate
        adopt_directories(setupstate.stack, chain)
        if list(setupstate.stack) == chain[: len(setupstate.stack)]:
            return
        call = CallInfo.from_call(
            lambda: setupstate.teardown_exact(Boundary(chain)),
            when="teardown",
            reraise=self.reraise,
        )
        if call.excinfo is not None and blame is not None:
            # through pytest's hook, as every report: Tach's plugin sends it, and plugins that
            # record reports (pytest-html) see it too
            report = blame.ihook.pytest_runtest_makereport(item=blame, call=call)
            blame.ihook.pytest_runtest_logreport(report=report)

    def run_child(self, items: list[pytest.Item], start: int, end: int, boundary: Boundary) -> int:
        """Fork a child to run ``items[start:end]``; return where the next child must start."""
        self.progress.set(start, PHASE_NONE)
        self.progress.write_notes(b"")
        self.child_notes = {}
        self.output.reset()
        sys.stdout.flush()
        sys.stderr.flush()
        gc.freeze()
        if self.namespaces.stale(self.dirs_under_tmp()):
            # the last test process left something in /tmp: a new, empty one for this one
            self.namespaces.close()
            self.namespaces = SharedNamespaces.make(self.hermetic, self.dirs_under_tmp())
        keep = set(children())
        adapters.before_fork(self.config)
        # the parent-death signal is armed in the child before any Python code runs there
        pid = proc.fork(signal.SIGKILL)
        if pid == 0:
            code = 1
            inherited_tempdir = multiprocessing_tempdir()
            try:
                code = self.child_main(items, start, end, boundary)
            finally:
                with contextlib.suppress(BaseException):
                    # The process ends without its interpreter's exit: plugins save what it
                    # measured (coverage), multiprocessing's helpers end as that exit would let
                    # them, and the worker is told to wait for them.
                    adapters.process_ending(self.config)
                    if helpers := release_helpers():
                        self.leave_note("helpers", helpers)
                    remove_own_tempdir(inherited_tempdir)
                os._exit(code)
        self.plugin.leave_terminal_text()  # the child sends what the worker wrote so far
        began = time.time()
        result = proc.wait4(pid, 0)
        index, phase = self.progress.get()
        helpers = self.absorb_child_notes()
        ended = self.end_orphans(keep, items[min(max(index, start), end - 1)], helpers)
        if index >= end:
            if helpers or ended:
                # What they wrote after the test process ended (the resource tracker's note of
                # what it cleaned up) is no test's output: pytest never shows it.
                self.empty_capture_files()
            self.last_item = items[end - 1]
            return end
        # The child died before finishing its batch: blame the item and phase it was in.
        index = max(index, start)
        if adapters.rerun_after_crash(self.config, items[index]):
            # pytest-rerunfailures grants a rerun (as pytest-xdist's crash hook): a new child
            # runs the test again
            duration = time.time() - began
            self.report_crash(items[index], phase, pid, result.status, duration, outcome="rerun")
            return index
        self.report_crash(items[index], phase, pid, result.status, time.time() - began)
        self.last_item = items[index]
        return index + 1

    def child_main(self, items: list[pytest.Item], start: int, end: int, boundary: Boundary) -> int:
        """In the forked child: run the batch through pytest's own protocol."""
        me = os.getpid()
        refresh_thread_identity()
        try:
            self.isolate(host_network=any(wants_host_network(i) for i in items[start:end]))
        except OSError as exc:
            # The probe before the run said the kernel allows it; it refused now (a namespace
            # limit reached, say). No test runs unisolated: the batch's first test fails.
            self.leave_note("not_isolated", str(exc))
            return EXIT_NOT_ISOLATED
        self.plugin.producer_pid = self.plugin.runner_pid = me
        self.plugin.progress = self.progress
        setupstate = self.session._setupstate
        inherited = {node: len(finalizers) for node, (finalizers, _) in setupstate.stack.items()}
        hook = self.config.hook
        try:
            for index in range(start, end):
                item = items[index]
                self.plugin.item_index = index
                self.plugin.current_item = item
                nextitem = items[index + 1] if index + 1 < end else boundary
                limit_cpu(self.hermetic)
                hook.pytest_runtest_protocol(item=item, nextitem=nextitem)
            self.finish_own_wide_fixtures(inherited, items[end - 1])
        except KeyboardInterrupt:
            # As pytest does on Ctrl-C: what was set up is torn down before the process ends.
            debugger.end()
            traceback.print_exc()
            with contextlib.suppress(BaseException):
                setupstate.teardown_exact(boundary)
            sys.stdout.flush()
            sys.stderr.flush()
            return EXIT_INTERRUPTED
        except BaseException as exc:
            debugger.end()
            if isinstance(exc, Exit) and debugger.attached():
                # pytest's ``Exit`` (the user quit the debugger): the supervisor stops the run,
                # as ``Exit`` stops pytest's; what was set up is torn down.
                debugger.request_exit(str(exc.msg))
                with contextlib.suppress(BaseException):
                    setupstate.teardown_exact(boundary)
                sys.stdout.flush()
                sys.stderr.flush()
                return EXIT_INTERRUPTED
            traceback.print_exc()
            sys.stderr.flush()
            return EXIT_ESCAPED
        sys.stdout.flush()
        sys.stderr.flush()
        return 0

    def isolate_output(self) -> None:
        """Give this worker its own fds 1/2 (the memfd) and its own pytest capture files.

        Workers run at the same time and would otherwise all write to the zygote's capture
        files, interleaving their tests' output. The test processes a worker forks run one at a
        time and inherit both; the memfd keeps what escapes pytest's capture (a crash's
        traceback, a subprocess's output) for the crash report.

        pytest's capture objects themselves are kept: the test modules were imported in the
        zygote with capture on, as pytest's collection imports them, so a module that kept
        ``sys.stdout`` (a parametrize value, say) holds the very object a test sees there, as
        under pytest. Only what lies under their file descriptors changes (:func:`own_files`).
        """
        if not self.capture_output:
            if self.dump_signal:
                faulthandler.register(self.dump_signal, file=sys.__stderr__, all_threads=True)
            return
        capman = self.config.pluginmanager.get_plugin("capturemanager")
        inherited = getattr(capman, "_global_capturing", None) if capman else None
        self.output.redirect((1, 2))
        if inherited is not None:
            own_files(inherited)
        # faulthandler writes to a descriptor of its own: during a test fd 2 is pytest's
        # capture file, and a crash's traceback must land in the memfd the worker reads.
        self.crash_fd = fcntl.fcntl(self.output.fileno(), fcntl.F_DUPFD_CLOEXEC, 3)
        faulthandler.enable(file=self.crash_fd, all_threads=True)
        if self.dump_signal:
            # A timeout: the supervisor asks for every thread's stack before ending the process.
            faulthandler.register(self.dump_signal, file=self.crash_fd, all_threads=True)

    def finish_own_wide_fixtures(self, inherited: dict[Any, int], last: pytest.Item) -> None:
        """Tear down wider fixtures this child set up itself, and tell the worker their names."""
        setupstate = self.session._setupstate
        own: list[Any] = []
        for node, count in inherited.items():
            entry = setupstate.stack.get(node)
            if entry is not None and len(entry[0]) > count:
                own.extend(entry[0][count:])
                del entry[0][count:]
        if not own:
            return
        names = sorted(
            {
                fin.func.__self__.argname
                for fin in own
                if hasattr(getattr(fin, "func", None), "__self__")
            }
        )
        self.leave_note("dynamic_wide", names)

        def run_finalizers() -> None:
            errors = []
            for fin in reversed(own):
                try:
                    fin()
                except BaseException as exc:
                    errors.append(exc)
            if errors:
                raise errors[0]

        call = CallInfo.from_call(run_finalizers, when="teardown", reraise=self.reraise)
        if call.excinfo is not None:
            report = last.ihook.pytest_runtest_makereport(item=last, call=call)
            self.plugin.send(
                MessageKind.TestReport, {"report": self.plugin.serialize_report(report)}
            )

    def leave_note(self, key: str, value: Any) -> None:
        """In a test process: add ``key`` to the note the worker reads once the process ended."""
        self.child_notes[key] = value
        self.progress.write_notes(orjson.dumps(self.child_notes))

    def absorb_child_notes(self) -> list[int]:
        """Read the note of the test process that just ended; return its helpers' pids."""
        notes = self.progress.read_notes()
        if not notes:
            return []
        note = orjson.loads(notes)
        self.child_notes = note  # in the worker: what the ended test process left
        self.dynamic_wide.update(note.get("dynamic_wide", ()))
        return [int(pid) for pid in note.get("helpers", ())]

    def capture_files(self) -> list[tuple[str, int]]:
        """pytest's capture files of stdout and stderr (``("out", fd)``, ``("err", fd)``), which
        this worker's test processes share with it; none without fd-level capture."""
        if not self.capture_output:
            return []
        capman = self.config.pluginmanager.get_plugin("capturemanager")
        capturing = getattr(capman, "_global_capturing", None)
        files = []
        for name in ("out", "err"):
            tmpfile = getattr(getattr(capturing, name, None), "tmpfile", None)
            try:
                files.append((name, tmpfile.fileno()))  # type: ignore[union-attr]
            except (AttributeError, OSError, ValueError):
                continue
        return files

    def empty_capture_files(self) -> None:
        """Empty pytest's capture files, so that the next test process does not report what is
        in them as its own output."""
        for _, fd in self.capture_files():
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
                os.lseek(fd, 0, os.SEEK_SET)

    def crash_output(self) -> list[tuple[str, str]]:
        """What a dead test process wrote: pytest's captured stdout/stderr of the phase it died
        in (the capture files it shared with this worker), and what escaped capture (the memfd:
        faulthandler's traceback, subprocesses). Head and tail of each; the capture files are
        emptied so that the next test process does not report this output as its own."""
        if not self.capture_output:
            return []
        found = []
        for name, fd in self.capture_files():
            try:
                excerpt = output_excerpt(FdOutput(fd))
            except OSError:
                continue
            if excerpt:
                found.append((f"Captured std{name} of the test process", excerpt))
        self.empty_capture_files()
        excerpt = output_excerpt(self.output)
        if excerpt:
            found.append(("Output of the test process", excerpt))
        return found

    def report_crash(
        self,
        item: pytest.Item,
        phase: int,
        pid: int,
        status: int,
        duration: float,
        outcome: str = "failed",
    ) -> None:
        from _pytest.reports import TestReport

        header = describe_status(pid, status, self.hermetic, self.child_notes)
        when = PHASE_NAMES[phase] if phase in (PHASE_SETUP, PHASE_CALL, PHASE_TEARDOWN) else "setup"
        text = f"{header} (during {when})."
        for title, excerpt in self.crash_output():
            text += f"\n\n{title}:\n{excerpt}"
        report = TestReport(
            nodeid=item.nodeid,
            location=item.location,
            keywords=dict.fromkeys(item.keywords, 1),
            outcome=outcome,  # type: ignore[arg-type]  # pytest-rerunfailures' "rerun"
            longrepr=text,
            when=when,
            sections=[],
            duration=duration,
            user_properties=[],
        )
        report.tach_crash = {"pid": pid, "status": status, "phase": when}  # type: ignore[attr-defined]
        # through pytest's hook, as every report (see ``teardown_to``)
        item.ihook.pytest_runtest_logreport(report=report)


def children(pid: int | str = "self") -> list[int]:
    """The pids of the children of ``pid`` (``/proc/PID/task/*/children``)."""
    pids: list[int] = []
    if pid == "self" and threading.active_count() == 1:
        tasks = [str(os.getpid())]  # one thread: its file is the whole answer (and cheap)
    else:
        try:
            tasks = os.listdir(f"/proc/{pid}/task")
        except OSError:
            return pids
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/children", "rb") as file:
                pids.extend(int(word) for word in file.read().split())
        except OSError:
            continue
    return pids


def describe_process(pid: int) -> str | None:
    """``process PID (command line)``, or ``None`` for a zombie (it already ended)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as file:
            stat = file.read()
        if stat[stat.rindex(b")") + 2 : stat.rindex(b")") + 3] == b"Z":
            return None
        with open(f"/proc/{pid}/cmdline", "rb") as file:  # arguments end with a NUL each
            cmdline = " ".join(file.read().replace(b"\0", b" ").decode("utf-8", "replace").split())
    except (OSError, ValueError):
        return None
    return f"process {pid} ({cmdline[:200] or '?'})"


def end_children(keep: set[int], helpers: Sequence[int] = ()) -> list[str]:
    """SIGKILL and reap every child of this process not in ``keep``; describe the live ones.

    Killing a process re-parents its own children to this (subreaper) process, so this goes on
    until no new child is left. ``helpers`` (children that end by themselves once no other
    process holds their pipe, see :func:`release_helpers`) are not killed: once nothing else is
    left, they are waited for, up to :data:`HELPER_GRACE` seconds from the call; one that has
    not ended by then is ended and described like the rest.
    """
    described: list[str] = []
    waiting: dict[int, int] = {}  # pidfd -> pid
    for pid in helpers:
        with contextlib.suppress(OSError):
            waiting[proc.pidfd_open(pid)] = pid
    deadline = time.monotonic() + HELPER_GRACE
    try:
        for _ in range(1000):
            pids = [pid for pid in children() if pid not in keep and pid not in waiting.values()]
            if not pids and waiting:
                timeout = max(0.0, deadline - time.monotonic())
                ready, _, _ = select.select(list(waiting), [], [], timeout)
                for pidfd in ready:
                    pid = waiting.pop(pidfd)
                    os.close(pidfd)
                    with contextlib.suppress(ChildProcessError):
                        os.waitpid(pid, 0)
                if ready:
                    continue
                pids = list(waiting.values())  # they did not end: end them as left running
                for pidfd in waiting:
                    os.close(pidfd)
                waiting.clear()
            if not pids:
                break
            for pid in pids:
                description = describe_process(pid)
                if description is not None:
                    described.append(description)
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            for pid in pids:
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(pid, 0)
    finally:
        for pidfd in waiting:
            os.close(pidfd)
    return described


def release_helpers() -> list[int]:
    """Close this process's end of the pipes of multiprocessing's helper processes; their pids.

    multiprocessing starts, once per process that needs them, a *resource tracker* (for the
    ``spawn`` and ``forkserver`` start methods, shared memory, named semaphores) and, for the
    ``forkserver`` start method, a *fork server*. Each runs until no process holds the write
    end of its pipe any more, which a normal interpreter exit brings about; the tracker then
    unlinks what the process leaked. A test process (and a worker) ends with ``os._exit``, and
    a helper it started moments before may still be starting up: killed there as left running,
    it would not clean up, and the run would warn of a process pytest never sees left behind.
    So the process closes its ends here and its subreaper waits for the pids returned.

    Only helpers this process started are released: a forked process inherits its parent's
    (the same pids, not its children), which are not its to end.
    """
    tracker_module = sys.modules.get("multiprocessing.resource_tracker")
    forkserver_module = sys.modules.get("multiprocessing.forkserver")
    released = [
        _release_helper(getattr(tracker_module, "_resource_tracker", None), "_fd", "_pid"),
        _release_helper(
            getattr(forkserver_module, "_forkserver", None),
            "_forkserver_alive_fd",
            "_forkserver_pid",
            "_forkserver_address",
        ),
    ]
    return [pid for pid in released if pid is not None]


def multiprocessing_tempdir() -> str | None:
    """The temporary directory multiprocessing made for this process (``pymp-*``), if any."""
    process = sys.modules.get("multiprocessing.process")
    try:
        return process.current_process()._config.get("tempdir")  # type: ignore[union-attr]
    except Exception:  # not imported, or kept differently by this Python
        return None


def remove_own_tempdir(inherited: str | None) -> None:
    """Remove multiprocessing's temporary directory if this process made it (it is not
    ``inherited``, the one of the process it was forked from), as the interpreter's exit would:
    a test process ends with ``os._exit``, which skips that, and would leave a ``pymp-*``
    directory behind for each test that used the ``forkserver`` start method."""
    own = multiprocessing_tempdir()
    if own and own != inherited:
        shutil.rmtree(own, ignore_errors=True)


def _release_helper(
    owner: Any, fd_name: str, pid_name: str, address_name: str | None = None
) -> int | None:
    """Close ``owner``'s write end of its helper's pipe and forget the helper (and the socket
    file named by ``address_name``), if this process started it; the helper's pid if it runs."""
    lock = getattr(owner, "_lock", None)
    if lock is None or not lock.acquire(blocking=False):
        return None  # none, or in use by another thread of this process: left as it is
    try:
        fd, pid = getattr(owner, fd_name, None), getattr(owner, pid_name, None)
        if fd is None or pid is None:
            return None
        try:
            ended, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return None  # inherited through fork: the parent's helper
        with contextlib.suppress(OSError):
            os.close(fd)
        setattr(owner, fd_name, None)
        setattr(owner, pid_name, None)
        if address_name is not None:
            # as ForkServer._stop does: the listening socket's file (none in the abstract
            # namespace, whose names start with a NUL)
            address = getattr(owner, address_name, None)
            setattr(owner, address_name, None)
            if isinstance(address, str) and address and not address.startswith("\0"):
                with contextlib.suppress(OSError):
                    os.unlink(address)
        return None if ended else pid
    finally:
        lock.release()


class FdOutput:
    """A regular file read by descriptor, for :func:`tach.protocol.output_excerpt`."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def size(self) -> int:
        return os.fstat(self.fd).st_size

    def read(self, offset: int = 0, size: int = -1) -> bytes:
        return os.pread(self.fd, self.size() if size < 0 else size, offset)

    def read_tail(self, n: int) -> bytes:
        end = self.size()
        return os.pread(self.fd, min(n, end), max(0, end - n))


def end_descendants() -> None:
    """SIGKILL every process below this one, and reap those that are (or become) its children.

    For a subreaper: a killed process's own children re-parent here, so the walk is repeated
    until nothing is left below.
    """
    for _ in range(1000):
        found: list[int] = []
        todo = children()
        while todo:
            pid = todo.pop()
            found.append(pid)
            todo.extend(children(pid))
        if not found:
            return
        for pid in found:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for pid in children():
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
