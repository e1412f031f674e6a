"""The debugger's request channel (tach.debugger.wire): requests with a session's socket."""

from __future__ import annotations

import os
import socket

import pytest

from tach.debugger.wire import grant, make_channel, recv_request, send_request


def test_a_request_brings_its_session_stream():
    ours, theirs = make_channel()
    session, kept = socket.socketpair()
    with ours, theirs, session, kept:
        send_request(theirs, {"op": "start", "id": "t.py::test"}, session.fileno())
        request, stream = recv_request(ours)
        assert request == {"op": "start", "id": "t.py::test"}
        assert stream is not None
        with stream:
            stream.sendall(grant(24, 80))
            assert kept.recv(100) == b'{"rows":24,"cols":80}\n'


def test_requests_from_many_senders_stay_whole():
    ours, theirs = make_channel()
    with ours, theirs:
        for n in range(50):
            send_request(theirs, {"op": "quit", "reason": "x" * n})
        for n in range(50):
            request, stream = recv_request(ours)
            assert request["reason"] == "x" * n and stream is None


def test_a_malformed_request_raises_and_closes_its_stream():
    ours, theirs = make_channel()
    session, kept = socket.socketpair()
    with ours, theirs, session, kept:
        socket.send_fds(theirs, [b"not json"], [session.fileno()])
        before = set(os.listdir("/proc/self/fd"))
        with pytest.raises(ValueError):
            recv_request(ours)
        assert set(os.listdir("/proc/self/fd")) <= before  # the received fd was closed


def test_end_of_stream():
    ours, theirs = make_channel()
    with ours:
        theirs.close()
        assert recv_request(ours) is None
