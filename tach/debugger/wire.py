"""What a test process and the supervisor say to each other about a debugger session.

One ``SOCK_SEQPACKET`` socketpair is made by the supervisor for the run: it keeps one end, and
the zygote inherits the other, which every worker and test process forked from it shares. Each
message on it is one datagram of JSON, so test processes writing at the same time never
interleave. A test process that wants the terminal makes a fresh stream socketpair of its own and
sends one end with its request (``SCM_RIGHTS``): that private stream is the session. Nothing is
ever bound to a path: only processes of the run's own tree hold either socket.

Requests (test process -> supervisor, on the shared socket):

* ``{"op": "start", "pid", "slot", "id", "where", "how"}`` with the session's fd: the test
  ``id`` stopped at ``where`` (``path:line``), by ``how`` (``breakpoint``, ``post_mortem``,
  ``trace``) and waits for the terminal.
* ``{"op": "quit", "pid", "reason"}``: the user quit the debugger; the run stops, as pytest's does.

On the private stream the supervisor first writes a grant, one line of JSON
(``{"rows": R, "cols": C}``) when it is the session's turn; after it both directions carry the
terminal's bytes unchanged. The session ends when the test process closes its end (or dies).
"""

from __future__ import annotations

import socket
from typing import Any

import orjson

#: The largest request datagram.
MAX_REQUEST = 65536


def make_channel() -> tuple[socket.socket, socket.socket]:
    """The run's shared request channel: (the supervisor's end, the test processes' end)."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    return ours, theirs


def send_request(channel: socket.socket, request: dict[str, Any], fd: int | None = None) -> None:
    """Send one request, with ``fd`` attached if given."""
    data = orjson.dumps(request)
    if fd is None:
        channel.send(data)
    else:
        socket.send_fds(channel, [data], [fd])


def recv_request(channel: socket.socket) -> tuple[dict[str, Any], socket.socket | None] | None:
    """The next request and the session stream that came with it; None at end of stream.

    A malformed datagram raises ``ValueError``; its fds are closed."""
    data, fds, _, _ = socket.recv_fds(channel, MAX_REQUEST, 1)
    stream = socket.socket(fileno=fds[0]) if fds else None
    if not data and stream is None:
        return None
    try:
        request = orjson.loads(data)
        if not isinstance(request, dict):
            raise ValueError("a request must be a JSON object")
    except ValueError:
        if stream is not None:
            stream.close()
        raise
    return request, stream


def grant(rows: int, cols: int) -> bytes:
    """The line that gives a waiting session the terminal."""
    return orjson.dumps({"rows": rows, "cols": cols}) + b"\n"
