"""The test process's side of a debugger session: pytest's own pdb, on a pseudo-terminal whose
other end the supervisor relays to the user's terminal.

pytest enters pdb in the process that runs the test, through ``_pytest.debugging.pytestPDB``:
``breakpoint()`` and ``pdb.set_trace()`` (``pytestPDB.set_trace``), ``--trace``
(``PdbTrace``, ``_init_pdb("runcall")``) and ``--pdb`` (``PdbInvoke``, ``post_mortem``). It
suspends capture (``capsys`` and fd capture), prints its ``PDB ...`` line, and runs the pdb class
``--pdbcls`` names inside its wrapper class. :func:`install` hooks two points of it, once, in
the zygote:

* ``_init_pdb``: after capture is suspended and before pytest prints anything, the session
  begins (:func:`begin`): the test process asks the supervisor for the terminal and waits for
  its turn, then puts a pseudo-terminal on its fds 0, 1 and 2, so pdb (and ``readline``, for
  line editing and history) sees a real terminal, and a thread relays the pty's master to the
  session's stream.
* the wrapper class: the session ends (:func:`end`) when pdb lets the test go on
  (``continue``), before pytest resumes capture, and begins again when a breakpoint is hit after
  that (``setup``). ``quit`` raises pytest's ``Exit``; the worker ends the session and asks the
  supervisor to stop the run, as ``Exit`` stops pytest's (:func:`request_exit`).

Ctrl-C at the prompt reaches the relay as the byte ``\\x03``; while the pty's line discipline
would turn it into SIGINT (``ISIG``), the relay sends SIGINT to the main thread, as a terminal
would to its foreground process: pdb prints ``--KeyboardInterrupt--`` and prompts again.

Without a terminal (:func:`attach` was given no channel) a breakpoint fails its test at once
with a message naming where it was hit (:func:`no_terminal`).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import select
import signal
import socket
import sys
import termios
import threading
from typing import TYPE_CHECKING, Any

import orjson

from tach.debugger.wire import send_request

if TYPE_CHECKING:
    import pytest

#: The run's request channel (None: the run has no terminal to debug on).
_channel: socket.socket | None = None
#: The slot of this worker, and the test it runs now (set by the plugin).
slot = -1
current_test = ""
_session: _Session | None = None
_config: pytest.Config | None = None
#: How often, and how far apart, a Ctrl-C is signalled until pdb's thread has taken it.
INTERRUPT_TRIES = 40
INTERRUPT_RETRY_S = 0.05
#: What pytest's ``_init_pdb`` method means, as requests name it.
HOW = {"set_trace": "breakpoint", "runcall": "trace", "post_mortem": "post_mortem"}
#: Modules whose frames are the debugger's, not the test's (where a breakpoint was hit).
_MACHINERY = ("_pytest.debugging", "pdb", "bdb", __name__)


def attach(fd: int | None) -> None:
    """Take the run's request channel (inherited fd ``fd``; None: no terminal)."""
    global _channel
    if _channel is not None:
        _channel.close()
        _channel = None
    if fd is not None:
        os.set_inheritable(fd, False)  # forks keep it; a program a test runs does not
        _channel = socket.socket(fileno=fd)


def write_stacks_on(signum: int, fd: int) -> None:
    """Write every thread's stack to ``fd`` on ``signum`` and go on (the supervisor's ``s``
    key; registered in the zygote, so every worker and test process has it)."""
    import faulthandler

    os.set_inheritable(fd, False)
    faulthandler.register(signum, file=fd, all_threads=True)


def attached() -> bool:
    """Whether this run has a terminal to debug on."""
    return _channel is not None


def install(config: pytest.Config) -> None:
    """Hook pytest's debugging plugin (once per process; workers inherit it)."""
    global _config
    from _pytest.debugging import pytestPDB

    _config = config
    if getattr(pytestPDB, "_tach_installed", False):
        return
    init_pdb = pytestPDB._init_pdb.__func__  # type: ignore[attr-defined]
    wrapper_class = pytestPDB._get_pdb_wrapper_class.__func__  # type: ignore[attr-defined]

    def _init_pdb(cls: Any, method: str, *args: Any, **kwargs: Any) -> Any:
        if cls._recursive_debug > 0 or _session is not None:
            return init_pdb(cls, method, *args, **kwargs)
        where = caller_location()
        if _channel is None:
            no_terminal(method, where)
        capman = cls._pluginmanager.getplugin("capturemanager") if cls._pluginmanager else None
        if capman is None:
            begin(HOW.get(method, method), where)
            return init_pdb(cls, method, *args, **kwargs)
        # Capture is suspended before the session puts the pty on fds 0-2, and not again by
        # pytest's own call below: a second suspension of ``capsys`` would put the global
        # capture's file back on ``sys.stdout`` (``SysCapture.suspend`` is not idempotent).
        capman.suspend(in_=True)
        begin(HOW.get(method, method), where)
        capman.suspend = lambda in_=False: None
        try:
            return init_pdb(cls, method, *args, **kwargs)
        finally:
            del capman.suspend

    def _get_pdb_wrapper_class(cls: Any, pdb_cls: type, capman: Any) -> type:
        return session_class(cls, wrapper_class(cls, pdb_cls, capman))

    pytestPDB._init_pdb = classmethod(_init_pdb)  # type: ignore[assignment,method-assign]
    pytestPDB._get_pdb_wrapper_class = classmethod(  # type: ignore[assignment,method-assign]
        _get_pdb_wrapper_class
    )
    pytestPDB._tach_installed = True  # type: ignore[attr-defined]


def session_class(pytest_pdb: Any, wrapped: type) -> type:
    """pytest's pdb wrapper class, ending the session when pdb lets the test go on."""

    class TachPdb(wrapped):  # type: ignore[valid-type,misc]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            if self._pytest_capman is not None:
                self._pytest_capman = EndBeforeResume(self._pytest_capman)

        def setup(self, f: Any, tb: Any) -> Any:
            stop = super().setup(f, tb)
            if not stop and pytest_pdb._recursive_debug == 0 and _session is None:
                # a breakpoint hit after ``continue``: pytest suspended capture again
                frame = f if f is not None else (tb.tb_frame if tb is not None else None)
                where = location(frame) if frame is not None else ""
                begin("breakpoint", where)
            return stop

        def do_continue(self, arg: str) -> Any:
            result = super().do_continue(arg)
            if pytest_pdb._recursive_debug == 0:
                end()
            return result

        do_c = do_cont = do_continue

    TachPdb.__name__ = TachPdb.__qualname__ = wrapped.__name__
    return TachPdb


class EndBeforeResume:
    """pytest's capture manager, as pdb's wrapper sees it: the session ends (the test's fds
    are its own again) before capture resumes over them."""

    def __init__(self, capman: Any) -> None:
        self._capman = capman

    def __getattr__(self, name: str) -> Any:
        return getattr(self._capman, name)

    def resume(self) -> None:
        end()
        self._capman.resume()


def location(frame: Any) -> str:
    """``path:line`` of ``frame``, the path relative to the rootdir when it is below it."""
    path = frame.f_code.co_filename
    if _config is not None:
        with contextlib.suppress(ValueError):
            rel = os.path.relpath(path, _config.rootpath)
            if not rel.startswith(".."):
                path = rel
    return f"{path}:{frame.f_lineno}"


def caller_location() -> str:
    """Where the debugger was called from: the first frame outside pdb and pytest's plugin."""
    frame = sys._getframe(1)
    while frame is not None and frame.f_globals.get("__name__") in _MACHINERY:
        frame = frame.f_back  # type: ignore[assignment]
    return location(frame) if frame is not None else ""


def no_terminal(method: str, where: str) -> None:
    """Fail the test: a breakpoint was hit in a run that has no terminal to debug on."""
    import pytest

    what = "--trace" if method == "runcall" else "breakpoint()/pdb.set_trace()"
    test = current_test or "this test"
    pytest.fail(
        f"{what} reached at {where} in {test}, but this run has no terminal to debug on "
        "(Tach's standard input or output is not a terminal, as in CI, a pipe or "
        "--format=json redirected, or Tach runs in the background). To debug, run it from a "
        f"terminal: tach {test}; to pass over breakpoints, set PYTHONBREAKPOINT=0.",
        pytrace=False,
    )


def begin_post_mortem(config: pytest.Config, nodeid: str, report: Any) -> None:
    """``--pdb``: begin the session for the failure of ``nodeid`` (a test, or a collector whose
    collection failed) with capture suspended: pytest's ``PdbInvoke`` then writes the captured
    output and the traceback to the terminal."""
    if _session is not None or _channel is None:
        return
    capman = config.pluginmanager.getplugin("capturemanager")
    if capman is not None:
        capman.suspend_global_capture(in_=True)  # as pytest's PdbInvoke does next
    begin("post_mortem", failure_location(report), nodeid)


def failure_location(report: Any) -> str:
    """``path:line`` of a failed report's crash (its location when it has none)."""
    crash = getattr(getattr(report, "longrepr", None), "reprcrash", None)
    if crash is not None:
        path, line = str(crash.path), crash.lineno
    else:
        location = getattr(report, "location", None) or ("", None, "")
        path, line = str(location[0]), (location[1] or 0) + 1
    if _config is not None and os.path.isabs(path):
        with contextlib.suppress(ValueError):
            rel = os.path.relpath(path, _config.rootpath)
            path = rel if not rel.startswith("..") else path
    return f"{path}:{line}"


def request_exit(reason: str) -> None:
    """Ask the supervisor to stop the run (the user quit the debugger)."""
    if _channel is not None:
        with contextlib.suppress(OSError):
            send_request(_channel, {"op": "quit", "pid": os.getpid(), "reason": reason})


def begin(how: str, where: str, test_id: str = "") -> None:
    """Wait for the terminal, then put this process's fds 0-2 on a relayed pseudo-terminal
    (``test_id``: what stopped, when not the test being run)."""
    global _session
    if _session is not None:
        return
    if _channel is None:
        no_terminal(how, where)
    request = {
        "op": "start",
        "pid": os.getpid(),
        "slot": slot,
        "id": test_id or current_test,
        "where": where,
        "how": how,
    }
    ours, theirs = socket.socketpair()
    try:
        assert _channel is not None
        send_request(_channel, request, theirs.fileno())
    finally:
        theirs.close()
    grant, pending = read_grant(ours)
    _session = _Session(ours, int(grant.get("rows") or 24), int(grant.get("cols") or 80), pending)


def end() -> None:
    """End this process's session, if it has one: its fds are its own again."""
    global _session
    session, _session = _session, None
    if session is not None:
        session.close()


def read_grant(stream: socket.socket) -> tuple[dict[str, Any], bytes]:
    """Wait for the supervisor's grant line; the grant, and what the user typed after it."""
    data = b""
    while b"\n" not in data:
        chunk = stream.recv(4096)
        if not chunk:
            stream.close()
            raise RuntimeError("the supervisor ended the debugger session before it began")
        data += chunk
    line, _, pending = data.partition(b"\n")
    return orjson.loads(line), pending


class _Session:
    """One session: a pty on fds 0-2, relayed to the supervisor by a thread."""

    def __init__(self, stream: socket.socket, rows: int, cols: int, pending: bytes) -> None:
        self.stream = stream
        self.master, self.slave = os.openpty()
        with contextlib.suppress(OSError, AttributeError):
            termios.tcsetwinsize(self.slave, (rows, cols))
        sys.stdout.flush()
        sys.stderr.flush()
        self.saved = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 3) for fd in (0, 1, 2)]
        for fd in (0, 1, 2):
            os.dup2(self.slave, fd)
        self.stop_r, self.stop_w = os.pipe()
        #: The thread pdb runs in, when Ctrl-C can reach it (signals go to the main thread).
        self.main: int | None = None
        self.sigint: Any = None
        #: A Ctrl-C not yet raised as KeyboardInterrupt, and the event of its raising.
        self.interrupt_pending = False
        self.interrupted = threading.Event()
        if threading.current_thread() is threading.main_thread():
            self.main = threading.get_ident()
            self.sigint = signal.signal(signal.SIGINT, self._on_sigint)
        terminal = self._swap_terminal_writer()
        self.writer = terminal
        self.thread = threading.Thread(
            target=self._relay, args=(pending,), name="tach-debugger-relay", daemon=True
        )
        self.thread.start()

    def _swap_terminal_writer(self) -> tuple[Any, Any] | None:
        """pytest's ``--pdb`` writes the failure through the terminal reporter's writer, which
        in a test process is a buffer for the supervisor: during the session, the terminal."""
        if _config is None:
            return None
        reporter = _config.pluginmanager.get_plugin("terminalreporter")
        if reporter is None or not hasattr(reporter, "_tw"):
            return None
        from _pytest.config import create_terminal_writer

        previous = reporter._tw
        reporter._tw = create_terminal_writer(_config, sys.stdout)
        return reporter, previous

    def _relay(self, pending: bytes) -> None:
        signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals())  # the main thread's
        master, stream = self.master, self.stream
        if pending:
            self._to_pty(pending)
        watched: list[Any] = [master, stream, self.stop_r]
        while True:
            ready, _, _ = select.select(watched, [], [])
            if master in ready:
                try:
                    data = os.read(master, 65536)
                except OSError:  # EIO: every slave fd is closed
                    data = b""
                if not data:
                    return
                with contextlib.suppress(OSError):
                    stream.sendall(data)
            if stream in ready:
                data = stream.recv(65536)
                if data:
                    self._to_pty(data)
                else:  # the supervisor is gone; pdb waits until this process is ended
                    watched.remove(stream)
            if self.stop_r in ready:
                return

    def _to_pty(self, data: bytes) -> None:
        with contextlib.suppress(OSError):
            os.write(self.master, data)
        if b"\x03" in data and self.main is not None:
            with contextlib.suppress(termios.error):
                if termios.tcgetattr(self.slave)[3] & termios.ISIG:
                    self._interrupt_main(self.main)

    def _interrupt_main(self, main: int) -> None:
        """Raise KeyboardInterrupt in pdb's thread, as a terminal's Ctrl-C would.

        ``readline`` checks for signals only when its ``select`` is interrupted: a SIGINT that
        arrives while it handles the keys typed just before is noted and not acted on until the
        next one. So the signal is sent again until the handler has run (it raises once)."""
        self.interrupted.clear()
        self.interrupt_pending = True
        for _ in range(INTERRUPT_TRIES):
            signal.pthread_kill(main, signal.SIGINT)
            if self.interrupted.wait(INTERRUPT_RETRY_S):
                return
        self.interrupt_pending = False

    def _on_sigint(self, signum: int, frame: Any) -> None:
        if self.interrupt_pending:
            self.interrupt_pending = False
            self.interrupted.set()
            raise KeyboardInterrupt

    def close(self) -> None:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
        with contextlib.suppress(Exception):
            sys.stderr.flush()
        for fd, saved in zip((0, 1, 2), self.saved, strict=True):
            os.dup2(saved, fd)
            os.close(saved)
        os.close(self.slave)
        # The relay forwards what is left in the pty, then meets its end (EIO); a process the
        # test started that still holds the pty is not waited for long.
        self.thread.join(2.0)
        if self.thread.is_alive():
            os.write(self.stop_w, b"x")
            self.thread.join(1.0)
        for fd in (self.master, self.stop_r, self.stop_w):
            os.close(fd)
        self.stream.close()
        if self.sigint is not None:
            signal.signal(signal.SIGINT, self.sigint)
        if self.writer is not None:
            reporter, previous = self.writer
            reporter._tw = previous
