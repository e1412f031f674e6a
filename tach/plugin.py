"""The pytest plugin Tach installs in the zygote; workers and test processes inherit it by fork.

In the zygote it replaces two of pytest's hooks: ``pytest_collection`` (the zygote collects
nothing; it loads the conftests of every test directory and the warm imports instead) and
``pytest_runtestloop`` (the zygote serves fork requests instead of running tests). Everything
else — configuration, plugins, session start and finish — is pytest's own.

In a test process it turns pytest's reporting hooks into messages on the slot's result ring:
``pytest_runtest_logstart`` -> ``TestStart``, ``pytest_runtest_logreport`` -> ``TestReport``,
``pytest_warning_recorded`` -> ``Warning``. Reports cross the process boundary only through
``pytest_report_to_serializable`` (pytest's own serialisation, so plugins that extend reports
keep working), plus the rendered ``longreprtext`` so that the supervisor never needs pytest.
The one exception is a phase that passed and carries nothing but its timing (see
:func:`is_plain_pass`): it travels as ``PhasePassed``, its few fields read from the report's
public attributes, when no plugin but pytest's own serialises reports.

It also keeps the *progress word* of the running test process up to date — the index of the item
it is running and the phase it is in — in a shared anonymous mapping that the worker reads when a
test process dies, to blame exactly that test and phase.
"""

from __future__ import annotations

import io
import mmap
import os
import struct
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tach.debugger import client as debugger
from tach.protocol import MessageKind, encode

if TYPE_CHECKING:
    from tach._native.ring import Ring
    from tach.zygote import Zygote

#: Phases as stored in the progress word.
PHASE_NONE, PHASE_SETUP, PHASE_CALL, PHASE_TEARDOWN = 0, 1, 2, 3
PHASE_NAMES = {
    PHASE_NONE: "setup",
    PHASE_SETUP: "setup",
    PHASE_CALL: "call",
    PHASE_TEARDOWN: "teardown",
}
_PROGRESS = struct.Struct("<iI")  # item index (-1: none yet), phase
_NOTES_OFFSET = 64
_NOTES_LENGTH = struct.Struct("<I")

#: Messages the supervisor acts on at once (the next unit, the end of the run): sending one wakes
#: it even while it reads the ring on a timer.
URGENT_KINDS = frozenset(
    {MessageKind.WorkerReady, MessageKind.UnitFinished, MessageKind.WorkerDone}
)

#: The attributes pytest itself gives a ``TestReport`` (``nodeid`` before pytest 9.2, ``_id``
#: since). A report with any other attribute carries something a plugin added.
PYTEST_REPORT_ATTRIBUTES = frozenset(
    {
        "nodeid",
        "_id",
        "location",
        "keywords",
        "outcome",
        "longrepr",
        "when",
        "user_properties",
        "sections",
        "duration",
        "start",
        "stop",
    }
)
#: The modules whose ``pytest_report_to_serializable`` give a plain report nothing of their own.
PYTEST_SERIALIZERS = frozenset({"_pytest.reports", "_pytest.subtests"})


class Progress:
    """Which item of its batch a test process is running, and in which phase.

    A shared anonymous mapping made by the worker before it forks, so it survives the child.
    After the progress word, a small *notes* area lets the child leave the worker a JSON note.
    """

    def __init__(self) -> None:
        self._map = mmap.mmap(-1, mmap.PAGESIZE)
        self.set(-1, PHASE_NONE)

    def set(self, index: int, phase: int) -> None:
        _PROGRESS.pack_into(self._map, 0, index, phase)

    def set_phase(self, phase: int) -> None:
        struct.pack_into("<I", self._map, 4, phase)

    def get(self) -> tuple[int, int]:
        index, phase = _PROGRESS.unpack_from(self._map, 0)
        return index, phase

    def write_notes(self, data: bytes) -> None:
        start = _NOTES_OFFSET + _NOTES_LENGTH.size
        if start + len(data) > len(self._map):
            raise ValueError(f"a note of {len(data)} bytes does not fit the progress page")
        self._map[start : start + len(data)] = data
        _NOTES_LENGTH.pack_into(self._map, _NOTES_OFFSET, len(data))

    def read_notes(self) -> bytes:
        (length,) = _NOTES_LENGTH.unpack_from(self._map, _NOTES_OFFSET)
        start = _NOTES_OFFSET + _NOTES_LENGTH.size
        return bytes(self._map[start : start + min(length, len(self._map) - start)])


def shorten_strings(obj: Any, keep: int) -> Any:
    """``obj`` with every string longer than ``keep`` characters cut in the middle."""
    if isinstance(obj, str):
        if len(obj) <= keep:
            return obj
        half = keep // 2
        return f"{obj[:half]}\n[... {len(obj) - 2 * half} characters dropped ...]\n{obj[-half:]}"
    if isinstance(obj, dict):
        return {key: shorten_strings(value, keep) for key, value in obj.items()}
    if isinstance(obj, list | tuple):
        return [shorten_strings(value, keep) for value in obj]
    return obj


def is_plain_pass(report: pytest.TestReport, config: pytest.Config) -> bool:
    """Whether ``report`` is a passed phase with nothing to tell but its timing.

    That is: pytest's own ``TestReport`` class, passed, no longrepr, no captured output or other
    sections, no user properties, no attribute beyond pytest's own, and only pytest's own
    ``pytest_report_to_serializable`` installed (a plugin's might add to any report). Its
    serialised form is then known field by field, so the test process sends those fields
    (``PhasePassed``) instead of the whole serialisation: most phases of most runs are such
    passes, and their full form (with every keyword of the item) costs the test process and the
    supervisor several times more.
    """
    return (
        type(report) is pytest.TestReport
        and report.outcome == "passed"
        and report.longrepr is None
        and not report.sections
        and not report.user_properties
        and report.__dict__.keys() <= PYTEST_REPORT_ATTRIBUTES
        and all(
            getattr(impl.plugin, "__name__", None) in PYTEST_SERIALIZERS
            for impl in config.hook.pytest_report_to_serializable.get_hookimpls()
        )
    )


def plain_pass_payload(report: pytest.TestReport, status: tuple[str, str, str]) -> dict[str, Any]:
    """The ``PhasePassed`` message of a report :func:`is_plain_pass` accepts.

    ``status`` is what ``pytest_report_teststatus`` said of it.
    """
    return {
        "id": report.nodeid,
        "when": report.when,
        "location": report.location,
        "duration": report.duration,
        "start": report.start,
        "stop": report.stop,
        "teststatus": list(status),
        "pid": os.getpid(),
    }


def render_longrepr(report: pytest.TestReport | pytest.CollectReport) -> str:
    """``report.toterminal`` into a string, without markup (as ``longreprtext`` renders it)."""
    from _pytest._io import TerminalWriter

    out = io.StringIO()
    writer = TerminalWriter(out)
    writer.hasmarkup = False
    report.toterminal(writer)
    return out.getvalue()


def quiet_terminal_reporter(config: pytest.Config) -> io.StringIO | None:
    """Replace pytest's terminal reporter with one that has its API but none of its hooks;
    return the buffer it writes to.

    The supervisor does all the reporting. Plugins still find a ``terminalreporter`` when they
    ask for it, but no progress and no summary of pytest's own is written in the zygote, the
    workers or the test processes. What plugins write to it themselves is kept in the buffer:
    the zygote sends what they wrote by the end of the session, with their terminal summaries,
    to the supervisor (:meth:`tach.zygote.Zygote.session_finished`).
    """
    from _pytest.terminal import TerminalReporter

    manager = config.pluginmanager
    current = manager.get_plugin("terminalreporter")
    if current is None:
        return None
    # None, not a no-op method: pluggy registers no implementation for an attribute that is
    # not a routine, so the per-test hooks (logstart, logreport, logfinish...) do not call
    # into this object at all.
    quiet_class = type(
        "QuietTerminalReporter",
        (TerminalReporter,),
        dict.fromkeys((name for name in dir(TerminalReporter) if name.startswith("pytest_")), None),
    )
    manager.unregister(current, name="terminalreporter")
    buffer = TerminalBuffer(config)
    manager.register(quiet_class(config, buffer), "terminalreporter")
    return buffer


class TerminalBuffer(io.StringIO):
    """The quiet terminal reporter's file: what is written while pytest's global capture is
    on goes to ``sys.stdout`` instead (the test's captured output). pytest's own writer writes
    to file descriptor 1, which its capture then holds: a plugin's ``write_line`` during a
    test shows only with the test's captured output, while ``--setup-show``, which suspends the
    capture to write, reaches the terminal."""

    def __init__(self, config: pytest.Config) -> None:
        super().__init__()
        self.capture_manager = config.pluginmanager.get_plugin("capturemanager")

    def write(self, text: str) -> int:
        capturing = getattr(self.capture_manager, "_global_capturing", None)
        if getattr(capturing, "_state", None) == "started" and sys.stdout is not self:
            return sys.stdout.write(text)
        return super().write(text)


class JunitRecorder:
    """Stands in for pytest's ``LogXML`` in the stash: the supervisor writes the JUnit XML.

    pytest's ``record_testsuite_property`` and ``record_xml_attribute`` fixtures hand their
    values to the ``LogXML`` they find in ``config.stash`` (and do nothing without one); this
    object forwards them to the supervisor as ``Record`` messages instead, from whichever
    process calls them. ``family`` makes ``record_property`` warn under ``xunit2`` as it does
    with ``--junitxml``.
    """

    def __init__(self, plugin: TachPlugin, family: str) -> None:
        self.plugin = plugin
        self.family = family

    def add_global_property(self, name: str, value: object) -> None:
        __tracebackhide__ = True
        if not isinstance(name, str):
            raise TypeError(f"name parameter needs to be a string, but {type(name).__name__} given")
        self.plugin.send(
            MessageKind.Record,
            {"kind": "suite_property", "name": name, "value": str(value), "nodeid": ""},
        )

    def node_reporter(self, nodeid: str) -> _AttributeRecorder:
        return _AttributeRecorder(self.plugin, str(nodeid))


class _AttributeRecorder:
    """``record_xml_attribute``'s target: forwards ``add_attribute`` calls."""

    def __init__(self, plugin: TachPlugin, nodeid: str) -> None:
        self.plugin = plugin
        self.nodeid = nodeid

    def add_attribute(self, name: str, value: object) -> None:
        self.plugin.send(
            MessageKind.Record,
            {"kind": "attribute", "name": str(name), "value": str(value), "nodeid": self.nodeid},
        )


def install_junit_recorder(config: pytest.Config, plugin: TachPlugin | None) -> None:
    """Take pytest's own JUnit writer out (every worker would write a file of its own share),
    and, when the run writes JUnit XML (``plugin`` given), put a :class:`JunitRecorder` in its
    place."""
    from _pytest import junitxml

    current = config.stash.get(junitxml.xml_key, None)
    if current is not None:
        del config.stash[junitxml.xml_key]
        if config.pluginmanager.is_registered(current):
            config.pluginmanager.unregister(current)
    if plugin is not None:
        recorder = JunitRecorder(plugin, str(config.getini("junit_family")))
        config.stash[junitxml.xml_key] = recorder  # type: ignore[assignment]
        config.pluginmanager.register(recorder, "tach-junit-recorder")


class TachPlugin:
    """Hooks of the zygote, the workers and the test processes (one object, inherited by fork)."""

    def __init__(self, zygote: Zygote) -> None:
        self.zygote = zygote
        self.config: pytest.Config | None = None
        #: Set in a worker: the slot's ring, and the pid allowed to write to it (a test that
        #: forks must not have its child write reports).
        self.ring: Ring | None = None
        self.producer_pid = 0
        #: The process that runs tests (the worker, or its test process).
        self.runner_pid = 0
        self.slot = -1
        self.progress: Progress | None = None
        #: Index of the item the test process is about to run (in its batch), and the item.
        self.item_index = -1
        self.current_item: pytest.Item | None = None
        #: pytest-timeout's own setting (its ``--timeout`` or ini ``timeout``), which Tach's
        #: supervisor enforces in its place when Tach's ``--timeout`` is not given.
        self.default_timeout = 0.0
        #: Collection reports that failed, and the count of deselected items, per unit.
        self.collect_errors: list[dict[str, Any]] = []
        self.deselected = 0
        #: The first ``Directory`` node collected for each directory (see
        #: :meth:`share_directory_fixtures`).
        self.directories: dict[tuple[type, Any, str], pytest.Directory] = {}
        #: Collection reports of directories, kept across units (see
        #: :meth:`pytest_make_collect_report_reused`).
        self.directory_reports: dict[tuple[Any, ...], pytest.CollectReport] = {}
        self._collecting_directories: set[tuple[Any, ...]] = set()
        #: The paths the unit being collected leaves to other units (see
        #: :meth:`pytest_ignore_collect`).
        self.excluded: frozenset[Path] = frozenset()
        #: Conftests not yet parsed when the last collection finished (see
        #: :meth:`pytest_collection_finish`).
        self.pending_conftests: dict[Path, object] = {}
        #: What plugins write to the terminal reporter (see :func:`quiet_terminal_reporter`).
        self.terminal_buffer: io.StringIO | None = None
        #: How much of :attr:`terminal_buffer` this process has sent or left to another.
        self.terminal_sent = 0

    # -- zygote -------------------------------------------------------------------------------

    @pytest.hookimpl(trylast=True)
    def pytest_configure(self, config: pytest.Config) -> None:
        self.config = config
        self.terminal_buffer = quiet_terminal_reporter(config)
        install_junit_recorder(config, self if self.zygote.spec.get("junit_xml") else None)
        self.take_over_timeouts(config)
        config.addinivalue_line(
            "markers",
            "network: the test keeps the host's network under --isolate-network "
            "(Tach runs it in a test process of its own outside the network namespace)",
        )

    def take_over_timeouts(self, config: pytest.Config) -> None:
        """Own ``@pytest.mark.timeout``: register it, and silence pytest-timeout if installed.

        The supervisor enforces timeouts from outside the test process (it can end a test
        stuck in a C call, and the rest of the unit goes on). pytest-timeout enforcing them
        too, from inside, would fire first and differently, so its hooks are unregistered;
        its setting becomes the default timeout.
        """
        config.addinivalue_line(
            "markers",
            "timeout(seconds): fail the test if its setup, call and teardown take longer "
            "(enforced by Tach's supervisor)",
        )
        manager = config.pluginmanager
        timeout_plugin = next(
            (p for p in manager.get_plugins() if getattr(p, "__name__", "") == "pytest_timeout"),
            None,
        )
        if timeout_plugin is not None:
            try:
                self.default_timeout = float(config.getvalue("timeout") or 0)
            except (TypeError, ValueError):
                self.default_timeout = 0.0
            manager.unregister(timeout_plugin)

    @pytest.hookimpl(wrapper=True)
    def pytest_cmdline_main(self, config: pytest.Config) -> Any:
        """Before any plugin acts on the parsed options (pytest-xdist turns ``-n`` into a
        distributed session here), tell the supervisor what they are."""
        self.zygote.configured(config)
        return (yield)

    @pytest.hookimpl(tryfirst=True)
    def pytest_collection(self, session: pytest.Session) -> bool:
        self.zygote.prepare(session)
        return True

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtestloop(self, session: pytest.Session) -> bool:
        self.zygote.serve(session)
        return True

    @pytest.hookimpl(wrapper=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> Any:
        """In the zygote, once the plugins' session-finish hooks ran: their summaries (pytest's
        terminal reporter calls ``pytest_terminal_summary`` at this point)."""
        result = yield
        if self.zygote.ready and not self.zygote.is_worker:
            self.zygote.session_finished(session, exitstatus)
        return result

    def terminal_output(self) -> str:
        """What plugins wrote to the terminal reporter in this process."""
        return self.terminal_buffer.getvalue() if self.terminal_buffer is not None else ""

    def leave_terminal_text(self) -> None:
        """What is in the terminal buffer now is not this process's to send: the zygote's, as
        a worker starts; the worker's, once a test process forked from it took it over."""
        if self.terminal_buffer is not None:
            self.terminal_sent = self.terminal_buffer.tell()

    def send_terminal_text(self, nodeid: str) -> None:
        """Send what was written to pytest's terminal writer since the last time
        (``TerminalText``): ``--setup-show``'s lines, a plugin's ``write_line`` during a test.
        Under pytest they are on the terminal at this point; here they would die with the
        process's buffer."""
        buffer = self.terminal_buffer
        if buffer is None or buffer.tell() == self.terminal_sent:
            return
        buffer.seek(self.terminal_sent)
        text = buffer.read()
        self.terminal_sent = buffer.tell()
        if text:
            self.send(MessageKind.TerminalText, {"id": nodeid, "text": text})

    # -- worker and test processes ------------------------------------------------------------

    def send(self, kind: MessageKind, payload: dict[str, Any]) -> None:
        """Put a message on the slot's ring, from the process that owns it only.

        A message too large for the ring (a huge assertion diff, megabytes of captured output)
        is shrunk until it fits: its longest strings keep their head and tail. The supervisor
        reads a busy ring on a timer; it is woken at once for what it must act on: a worker
        ready for a unit or done with one, and a failure (``-x``, ``--maxfail``).
        """
        if self.ring is None or os.getpid() != self.producer_pid:
            return
        data = encode(kind, payload)
        limit = self.ring.max_frame
        keep = 1 << 20
        while len(data) > limit and keep >= 256:
            data = encode(kind, shorten_strings(payload, keep))
            keep //= 4
        self.ring.push(data)
        if kind in URGENT_KINDS or (
            kind is MessageKind.TestReport and payload["report"].get("outcome") == "failed"
        ):
            self.ring.notify()

    def serialize_report(
        self, report: pytest.TestReport | pytest.CollectReport, status: Any = None
    ) -> dict[str, Any]:
        """pytest's serialised report, plus what the supervisor needs to show it without pytest.

        ``status`` is what ``pytest_report_teststatus`` said of a ``TestReport``, if the caller
        already asked.
        """
        assert self.config is not None
        if status is None and isinstance(report, pytest.TestReport):
            status = self.config.hook.pytest_report_teststatus(report=report, config=self.config)
        data = self.config.hook.pytest_report_to_serializable(config=self.config, report=report)
        if report.longrepr is not None:
            # What pytest's terminal reporter prints for the report, and pytest's own
            # ``longreprtext`` (the same text, stripped), rendered once.
            text = render_longrepr(report)
            data["longrepr_terminal"] = text
            data["longreprtext"] = text.strip()
        if report.failed or report.sections:  # FAILURES, and PASSES under -rP, title it
            data["head_line"] = report.head_line
        # pytest's own verdict on the report (plugins such as subtests and xfail take part; the
        # subtests plugin may turn a passing call into a failed one, so it is asked before the
        # report is serialised, as the terminal reporter would).
        if status is not None:
            category, letter, word = status
            if isinstance(word, tuple):
                word, markup = word
                data["word_markup"] = markup
            data["teststatus"] = [category, letter, word]
            data["outcome"] = report.outcome
        data["count_towards_summary"] = getattr(report, "count_towards_summary", True)
        crash = getattr(report, "tach_crash", None)  # a report the worker made for a dead process
        if crash is not None:
            data["crash"] = crash
        data["slot"] = self.slot
        data["pid"] = os.getpid()
        return data

    @pytest.hookimpl(tryfirst=True, specname="pytest_make_collect_report")
    def pytest_make_collect_report_reused(
        self, collector: pytest.Collector
    ) -> pytest.CollectReport | None:
        """A directory's collection report from an earlier unit, when it would be the same.

        (Named apart from :meth:`pytest_make_collect_report`, the wrapper of the same hook.)

        A worker collects unit after unit, and pytest collects the directories on the way to
        each unit's path afresh: ``Dir.collect`` makes a node for every file and subdirectory
        (hooks, ignore checks, stats), so collecting the modules of a directory one by one costs
        the square of its size. The report of a directory is kept instead, and its children
        (nodes not yet collected themselves) serve every later unit.

        What ``Dir.collect`` yields depends on ``--ignore``, on the paths the unit leaves to
        others (:attr:`excluded`) and on the initial paths (given explicitly, a file or
        directory is collected even where an ignore rule or ``python_files`` would leave it
        out). In a worker ``isinitpath`` answers with the paths the user named, the same for
        every unit (``tach.worker.InitialPaths``); the unit's own paths are set aside while
        the kept report is made. It is keyed by the ignore options and the unit's exclusions,
        and used only when it holds every initial path of this unit that lies directly in the
        directory; otherwise pytest collects the directory as usual.
        """
        if not isinstance(collector, pytest.Directory):
            return None
        option = collector.config.option
        key = (
            type(collector),
            collector.path,
            collector.nodeid,
            tuple(getattr(option, "ignore", None) or ()),
            tuple(getattr(option, "ignore_glob", None) or ()),
            self.excluded,
        )
        if key in self._collecting_directories:
            return None  # the collection below, running pytest's own
        session = collector.session
        report = self.directory_reports.get(key)
        if report is None:
            initial = session._initialpaths, session._initialpaths_with_parents
            session._initialpaths = session._initialpaths_with_parents = frozenset()
            self._collecting_directories.add(key)
            try:
                report = collector.ihook.pytest_make_collect_report(collector=collector)
            finally:
                self._collecting_directories.discard(key)
                session._initialpaths, session._initialpaths_with_parents = initial
            if not report.passed:
                return None  # collected again below, with the initial paths, as pytest would
            self.directory_reports[key] = report
        children = {getattr(node, "path", None) for node in report.result}
        for path in session._initialpaths_with_parents:
            if path.parent == collector.path and path not in children:
                return None
        return report

    @pytest.hookimpl(tryfirst=True)
    def pytest_ignore_collect(self, collection_path: Path) -> bool | None:
        """Leave out what the unit being collected leaves to other units.

        A directory unit does not collect the files and subdirectories that are units of their
        own. Given to pytest as ``--ignore`` they did the same, but pytest turns every
        ``--ignore`` entry into an absolute path again for every path it considers: the unit of
        a directory with 458 subdirectories (pygments' ``tests/examplefiles``) took 1.5 s to
        collect nothing. A set lookup here answers as ``--ignore`` would.
        """
        if collection_path in self.excluded:
            return True
        return None

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_make_collect_report(self, collector: pytest.Collector) -> Any:
        report = yield
        if isinstance(collector, pytest.Directory):
            self.share_directory_fixtures(collector)
        return report

    def share_directory_fixtures(self, directory: pytest.Directory) -> None:
        """Let a directory collected again see the fixtures its conftest gave it the first time.

        Since pytest 9.1 a conftest's fixtures are visible through the ``Directory`` node that
        collected it (``FixtureManager._arg2node2fixturedefs``, keyed by node object), and a
        conftest is parsed only once. A worker collects unit after unit, and each collection
        makes new ``Directory`` nodes: without this, the second unit of a directory would not
        see its conftest's fixtures. The new node gets the very same ``FixtureDef`` objects, so
        a fixture's cached value (a primed session fixture) is shared too.
        """
        key = (type(directory), directory.path, directory.nodeid)
        first = self.directories.setdefault(key, directory)
        if first is directory:
            return
        manager = directory.session._fixturemanager
        for by_node in getattr(manager, "_arg2node2fixturedefs", {}).values():
            if first in by_node:
                by_node.setdefault(directory, by_node[first])
        autouse = getattr(manager, "_node_autousenames", None)
        if autouse is not None and first in autouse:
            autouse.setdefault(directory, autouse[first])

    @pytest.hookimpl(tryfirst=True)
    def pytest_collection_finish(self, session: pytest.Session) -> None:
        """Keep the conftests no collection has reached yet for the next unit.

        Since pytest 9.1 a conftest's fixtures are parsed when the ``Directory`` of its
        directory is collected, and pytest forgets, when its collection finishes, the conftests
        it did not reach: their tests were not collected either. A worker collects unit after
        unit in one session; the conftest of a later unit's directory would be forgotten after
        the first, and its fixtures missing (:meth:`tach.worker.Worker.collect` puts them back).
        """
        pending = getattr(session._fixturemanager, "_pending_conftests", None)
        self.pending_conftests = dict(pending) if pending else {}

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed or (report.skipped and report.nodeid):
            self.collect_errors.append(self.serialize_report(report))

    def pytest_deselected(self, items: list[pytest.Item]) -> None:
        self.deselected += len(items)

    def pytest_runtest_logstart(self, nodeid: str, location: tuple[str, int | None, str]) -> None:
        if self.progress is not None:
            self.progress.set(self.item_index, PHASE_SETUP)
        timeout = None
        item = self.current_item
        if item is not None:
            marker = item.get_closest_marker("timeout")
            if marker is not None:
                value = marker.args[0] if marker.args else marker.kwargs.get("timeout")
                try:
                    timeout = float(value)
                except (TypeError, ValueError):
                    timeout = None
        self.send(
            MessageKind.TestStart,
            {"id": nodeid, "pid": os.getpid(), "slot": self.slot, "timeout": timeout},
        )
        debugger.current_test = nodeid

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> Any:
        __tracebackhide__ = True  # not part of the user's traceback
        return (yield from self._phase(PHASE_SETUP))

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Any:
        __tracebackhide__ = True  # not part of the user's traceback
        return (yield from self._phase(PHASE_CALL))

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_teardown(self, item: pytest.Item) -> Any:
        __tracebackhide__ = True  # not part of the user's traceback
        return (yield from self._phase(PHASE_TEARDOWN))

    def _phase(self, phase: int) -> Any:
        """Record the phase; and end a process that a test forked as soon as it comes back.

        A test (or fixture) that forks and lets its child return would otherwise have that
        child carry on with pytest's protocol, the rest of the batch and the worker's loop: a
        second session reading the worker's channel (pytest#12028).
        """
        __tracebackhide__ = True
        if self.progress is not None:
            self.progress.set_phase(phase)
        try:
            return (yield)
        finally:
            if self.runner_pid and os.getpid() != self.runner_pid:
                os._exit(0)

    @pytest.hookimpl(trylast=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if self.ring is None or os.getpid() != self.producer_pid:
            return
        assert self.config is not None
        self.send_terminal_text(report.nodeid)
        status = self.config.hook.pytest_report_teststatus(report=report, config=self.config)
        if isinstance(status[2], str) and is_plain_pass(report, self.config):
            self.send(MessageKind.PhasePassed, plain_pass_payload(report, status))
        else:
            self.send(MessageKind.TestReport, {"report": self.serialize_report(report, status)})

    def pytest_runtest_logfinish(self, nodeid: str) -> None:
        if self.progress is not None:
            self.progress.set(self.item_index + 1, PHASE_NONE)
        debugger.end()  # a session pdb left open (it stepped out of the test)

    @pytest.hookimpl(tryfirst=True)
    def pytest_exception_interact(self, node: Any, call: Any, report: Any) -> None:
        """``--pdb``: the session begins before pytest's post-mortem shows the failure (the
        captured output, the traceback), so that the user sees it above the prompt."""
        if node.config.getoption("usepdb", False):
            debugger.begin_post_mortem(node.config, node.nodeid, report)

    def pytest_warning_recorded(
        self, warning_message: Any, when: str, nodeid: str, location: tuple[str, int, str] | None
    ) -> None:
        self.send(
            MessageKind.Warning,
            {
                "message": str(warning_message.message),
                "category": warning_message.category.__name__,
                "filename": warning_message.filename,
                "lineno": warning_message.lineno,
                "when": when,
                "nodeid": nodeid,
            },
        )
