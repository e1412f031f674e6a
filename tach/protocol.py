"""Messages between the supervisor, the zygote, the workers and the test processes.

Every message is one frame of :mod:`tach._native.frame` (8-byte header, orjson payload); the
kind is a :class:`MessageKind`. Three kinds of channel carry them:

* the **control channel**, a socketpair between the supervisor and the zygote;
* one **command channel** per worker slot, a socketpair between the supervisor and whichever
  worker holds that slot (created by the supervisor, inherited by the zygote, handed to each
  worker it forks for the slot);
* one **result ring** per worker slot (:mod:`tach._native.ring`), written by the slot's worker and
  by the test process it forks, one at a time, and read only by the supervisor.

A run on a terminal has one more socketpair, outside this protocol: the debugger's request
channel, whose datagrams and per-session streams :mod:`tach.debugger.wire` defines.

The exchange of one run:

1. The supervisor starts ``python -m tach.zygote`` with the spec (pytest arguments, fds, slots)
   and the fds of every channel. The zygote runs ``pytest.main`` with Tach's plugin: pytest parses
   its configuration, loads plugins and initial conftests, starts the session; the plugin loads
   the conftests of every test directory and the warm imports, then freezes the heap.
   As soon as pytest has parsed its command line (with every plugin's and initial conftest's
   options, ``addopts`` and ``PYTEST_ADDOPTS`` applied):
   Zygote -> supervisor: ``Configured`` {args, args_source, rootdir, inifile, options}: what
   pytest made of the arguments (the supervisor never parses pytest's options itself; see
   ``tach.zygote.configured_options``). The supervisor starts the zygote first and runs static
   discovery while pytest starts up in it (again, when pytest's arguments turn out to select
   other tests); the zygote waits for the result before loading conftests:
   Supervisor -> zygote: ``Plan`` {conftest_dirs, warm_imports, collection_paths} (or end of
   stream: the run was abandoned, for instance over a usage error).
   A run zygote forked from a warm session layer *ahead* of its run (``tach --watch`` forks the
   next one as soon as a run ends; see ``tach.layers``) first waits for
   Supervisor -> zygote: ``Resume`` {conftest_dirs}: the run starts now. It checks what it
   imported and goes on, or it answers Zygote -> supervisor: ``Stale`` {paths} (the files that
   changed) and exits. End of stream instead of ``Resume``: it was not needed; it exits.
2. Zygote -> supervisor: ``ZygoteReady`` {pid, rootdir, pytest_version, python, warm_imports,
   warm_failures, threads, report_header, run_last, left_out} (``report_header``: the plugins'
   header lines; ``run_last``: units' paths a plugin orders after the others; ``left_out``:
   units' module paths pytest's walk leaves out, dropped from the queue). If
   pytest stops before that (a usage error, a conftest that raises), the zygote exits with
   pytest's exit code and its stderr says why.
3. Supervisor -> zygote: ``SpawnWorker`` {slot}, once per slot (again if a worker dies).
   The zygote forks a worker; zygote -> supervisor ``WorkerExited`` {slot, pid, status} when it
   is reaped, after a ``Warning`` for each process the worker left behind (the zygote, a
   subreaper, ended it). A zygote that dies mid-run is replaced: the exchange starts again at 1
   with the same rings and output buffers.
4. Worker -> ring: ``WorkerReady`` {slot, pid}.
5. Supervisor -> worker: ``RunUnit`` {unit, args, isolation}: collect ``args`` (file paths or node
   ids) with pytest and run the items.
6. Worker -> ring: ``UnitCollected`` {unit, ids, final, errors, deselected, usage_error}:
   pytest's own collection of the unit, in parts of at most 2,000 ids; the part with ``final``
   carries the failed collection reports (serialised by pytest's hooks), the count of deselected
   items and pytest's usage error (a node id that does not exist), if any.
7. Test process -> ring, per test: ``TestStart`` {id, pid, timeout} (``timeout``: the seconds of
   its ``timeout`` mark, or null), then ``TestReport`` {report} once per
   phase (setup, call, teardown), ``report`` being ``pytest_report_to_serializable``'s output plus
   ``longreprtext`` and the worker's ``slot``; ``Warning`` {message, category, filename, lineno,
   nodeid} for each warning recorded. A phase that passed with nothing to tell but its timing
   (no output, no properties, nothing a plugin added: ``tach.plugin.is_plain_pass``) is sent as
   ``PhasePassed`` {id, when, location, duration, start, stop, teststatus, pid} instead; the
   supervisor rebuilds from it the report pytest's serialisation would have given
   (``tach.results.passed_phase_report``). ``TerminalText`` {id, text} before a phase's report
   when something wrote to pytest's terminal writer since the last one (``--setup-show``'s
   lines, a plugin's ``terminalreporter.write_line``): what pytest would have printed there.
8. Worker -> ring: ``TestReport`` for a test whose process died (a crash report the worker builds
   for the phase the process was in), and for a wider fixture's teardown error.
9. Worker -> ring: ``UnitFinished`` {unit}. Back to 5 until the supervisor sends ``StopWorker``.
10. The worker tears down what it holds, then -> ring: ``TerminalText`` {id: "", text} for what
    those teardowns wrote to the terminal writer (if anything), and ``WorkerDone`` {slot}; it
    exits.
11. Supervisor -> zygote: ``Shutdown`` {testsfailed, testscollected}: the run's counts, which the
    zygote gives its pytest session; it finishes the session (its exit status that of a serial
    run: the plugins' session-finish hooks run there, as pytest-xdist's controller runs them)
    and, before it exits:
    Zygote -> supervisor: ``SessionFinished`` {report, failures, exitstatus}: what the plugins
    wrote to the terminal at the session's end (``pytest_terminal_summary``: a coverage
    report, say), and the failures they added to the session (``--cov-fail-under``).

Message kinds are numbered from 1 without gaps, so the frame decoder's ``max_kind`` check is the
whole validity check of a kind.
"""

from __future__ import annotations

import enum
import os
import select
import socket
import struct
from typing import Any, Protocol

import orjson

from tach._native import frame

__all__ = [
    "Channel",
    "LayerLink",
    "Message",
    "MessageKind",
    "ProtocolError",
    "decode_frames",
    "encode",
    "output_excerpt",
    "peer_uid",
]


class MessageKind(enum.IntEnum):
    """The kind of a frame: what its payload means (see the module docstring)."""

    SpawnWorker = 1
    Shutdown = 2
    ZygoteReady = 3
    WorkerExited = 4
    RunUnit = 5
    StopWorker = 6
    WorkerReady = 7
    UnitCollected = 8
    TestStart = 9
    TestReport = 10
    Warning = 11
    UnitFinished = 12
    WorkerDone = 13
    Plan = 14
    Record = 15
    PhasePassed = 16
    Configured = 17
    SessionFinished = 18
    TerminalText = 19
    Resume = 20
    Stale = 21


MAX_KIND = max(MessageKind)
_KINDS = {int(kind): kind for kind in MessageKind}

Message = tuple[MessageKind, dict[str, Any]]


class ProtocolError(RuntimeError):
    """A peer sent bytes that are not a valid message; the channel cannot be trusted any more."""


#: Longest repr sent for an object JSON cannot carry.
REPR_LIMIT = 512


def _as_json(obj: Any) -> Any:
    """What JSON carries for an object it has no type for: its repr (bounded, never raising).

    Reports may carry arbitrary objects (``subTest(func=len, r=range(3))`` puts them in the
    subtest's context); a report must cross the process boundary whatever it holds.
    """
    if isinstance(obj, set | frozenset):
        return sorted(obj, key=repr)
    try:
        text = repr(obj)
    except Exception as exc:  # a broken __repr__ must not break reporting
        text = f"<{type(obj).__name__} object (repr raised {type(exc).__name__})>"
    return text if len(text) <= REPR_LIMIT else text[: REPR_LIMIT - 3] + "..."


def _sanitized(obj: Any, depth: int = 0) -> Any:
    """``obj`` with string keys, 64-bit integers and no nesting deeper than encoders allow."""
    if depth > 32:
        return _as_json(obj)
    if isinstance(obj, dict):
        return {
            key if isinstance(key, str) else str(_as_json(key)): _sanitized(value, depth + 1)
            for key, value in obj.items()
        }
    if isinstance(obj, list | tuple):
        return [_sanitized(value, depth + 1) for value in obj]
    if isinstance(obj, int) and not -(2**63) <= obj < 2**64:
        return str(obj)  # JSON encoders stop at 64 bits
    return obj


def encode(kind: MessageKind, payload: dict[str, Any]) -> bytes:
    """One message as a frame; objects JSON has no type for travel as their repr."""
    try:
        data = orjson.dumps(payload, default=_as_json, option=orjson.OPT_NON_STR_KEYS)
    except TypeError:  # keys or integers JSON cannot express, or deep nesting: slow but safe
        data = orjson.dumps(_sanitized(payload), default=_as_json)
    return frame.encode_raw(kind, data, flags=0)


def _message(kind: int, payload: Any) -> Message:
    if type(payload) is not dict:
        raise ProtocolError(
            f"message of kind {kind} carries {type(payload).__name__}, not an object"
        )
    try:
        return _KINDS[kind], payload
    except KeyError:
        raise ProtocolError(f"unknown message kind {kind}") from None


def decode_frames(frames: list[tuple[int, int, Any]]) -> list[Message]:
    """Decoded frames as messages (payloads are JSON objects)."""
    return [_message(kind, payload) for kind, _flags, payload in frames]


def decode_one(data: bytes) -> Message:
    """The single message that is the whole of ``data`` (a record taken from a result ring)."""
    try:
        kind, _flags, payload, size = frame.decode(data, MAX_KIND)
    except frame.FrameError as exc:
        raise ProtocolError(str(exc)) from exc
    if size != len(data):
        raise ProtocolError(f"{len(data) - size} stray bytes after a message of kind {kind}")
    return _message(kind, payload)


class Channel:
    """Framed messages over a connected stream socket (blocking sends, buffered receives)."""

    def __init__(self, sock: socket.socket, name: str) -> None:
        self.sock = sock
        self.name = name
        self._decoder = frame.FrameDecoder(max_kind=MAX_KIND)
        self._pending: list[Message] = []

    @classmethod
    def from_fd(cls, fd: int, name: str) -> Channel:
        """A channel over an inherited socket file descriptor (the channel owns it)."""
        return cls(socket.socket(fileno=fd), name)

    def fileno(self) -> int:
        return self.sock.fileno()

    def send(self, kind: MessageKind, payload: dict[str, Any]) -> None:
        """Send one message; raises OSError (BrokenPipeError...) when the peer is gone."""
        self.sock.sendall(encode(kind, payload))

    def read_available(self) -> list[Message] | None:
        """Receive what one ``recv`` brings (call when readable); ``None`` at end of stream."""
        try:
            data = self.sock.recv(1 << 16)
        except ConnectionResetError:  # the peer died with unread data: an end all the same
            data = b""
        if not data:
            try:
                self._decoder.eof()
            except frame.FrameError as exc:
                raise ProtocolError(f"{self.name}: {exc}") from exc
            return None
        try:
            return decode_frames(self._decoder.feed(data))
        except frame.FrameError as exc:
            raise ProtocolError(f"{self.name}: {exc}") from exc

    def poll(self) -> list[Message] | None:
        """Read what has arrived without blocking, keep it for :meth:`recv`, and return all
        messages waiting (``None`` once the peer has closed the channel)."""
        while True:
            readable, _, _ = select.select([self.sock], [], [], 0)
            if not readable:
                return list(self._pending)
            messages = self.read_available()
            if messages is None:
                return None
            self._pending.extend(messages)

    def recv(self) -> Message | None:
        """Block until one whole message arrives; ``None`` when the peer closed the channel."""
        while not self._pending:
            messages = self.read_available()
            if messages is None:
                return None
            self._pending.extend(messages)
        return self._pending.pop(0)

    def expect(self, kind: MessageKind) -> dict[str, Any] | None:
        """The payload of the next message if it is of ``kind``; None when the peer closed
        the channel, broke the protocol or sent another kind (it gave up: its exit says why)."""
        try:
            message = self.recv()
        except (OSError, ProtocolError):
            return None
        if message is None or message[0] is not kind:
            return None
        return message[1]

    def close(self) -> None:
        self.sock.close()


class LayerLink:
    """Requests and their answers between the supervisor and a warm layer (the base, a session).

    A ``SOCK_SEQPACKET`` socket: each message is one packet, an orjson object with the file
    descriptors it hands over attached (``SCM_RIGHTS``), so a layer can be given the channels,
    rings and buffers of a process it is to fork without inheriting them at its own start.
    """

    #: Largest message; requests carry a spec, never results.
    MAX_SIZE = 1 << 20
    #: Most file descriptors one message hands over (the fds of 64 worker slots and a few more).
    MAX_FDS = 300

    def __init__(self, sock: socket.socket, name: str) -> None:
        self.sock = sock
        self.name = name

    @classmethod
    def pair(cls, name: str) -> tuple[LayerLink, socket.socket]:
        """A link and the socket its peer inherits."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        return cls(ours, name), theirs

    @classmethod
    def from_fd(cls, fd: int, name: str) -> LayerLink:
        return cls(socket.socket(fileno=fd), name)

    def fileno(self) -> int:
        return self.sock.fileno()

    def send(self, message: dict[str, Any], fds: list[int] | tuple[int, ...] = ()) -> None:
        """Send ``message``, handing over copies of ``fds``; raises OSError when the peer is
        gone."""
        data = orjson.dumps(message)
        if fds:
            socket.send_fds(self.sock, [data], list(fds))
        else:
            self.sock.send(data)

    def recv(self) -> tuple[dict[str, Any], list[int]] | None:
        """Block for one message and the fds it carries (the caller owns them); ``None`` once
        the peer has closed the link."""
        try:
            data, fds, _flags, _addr = socket.recv_fds(self.sock, self.MAX_SIZE, self.MAX_FDS)
        except ConnectionResetError:
            return None
        if not data:
            for fd in fds:
                os.close(fd)
            return None
        try:
            message = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            for fd in fds:
                os.close(fd)
            raise ProtocolError(f"{self.name}: {exc}") from exc
        if type(message) is not dict:
            for fd in fds:
                os.close(fd)
            raise ProtocolError(f"{self.name}: a message that is not an object")
        return message, fds

    def close(self) -> None:
        self.sock.close()


def peer_uid(conn: socket.socket) -> int:
    """The uid of the process at the other end of a Unix socket (``SO_PEERCRED``)."""
    creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _pid, uid, _gid = struct.unpack("3i", creds)
    return uid


class _Output(Protocol):
    def size(self) -> int: ...
    def read(self, offset: int = 0, size: int = -1) -> bytes: ...
    def read_tail(self, n: int) -> bytes: ...


#: How much of a test process's output a report keeps: its head and its tail.
OUTPUT_HEAD = 4 * 1024
OUTPUT_TAIL = 60 * 1024


def output_excerpt(output: _Output, head: int = OUTPUT_HEAD, tail: int = OUTPUT_TAIL) -> str:
    """The head and tail of a process's output buffer (a memfd), saying how much was left out.

    Never more than ``head + tail`` bytes are read, however much the process wrote.
    """
    size = output.size()
    if size <= head + tail:
        data = output.read(0, -1)
    else:
        dropped = size - head - tail
        data = (
            output.read(0, head)
            + f"\n[... {dropped} bytes of output dropped ...]\n".encode()
            + output.read_tail(tail)
        )
    return data.decode("utf-8", "replace")
