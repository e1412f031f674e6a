"""Bad input reaching the supervisor: malformed frames on a result ring or the control channel,
and well-formed frames whose payloads have the wrong shape, become internal errors naming the
worker (or the zygote); the supervisor never raises and never waits for more."""

from __future__ import annotations

import io
import socket
import sys
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tach._native.memfd import LogBuffer
from tach._native.ring import Ring
from tach.lifecycle import RunSpec, Slot, Supervisor
from tach.protocol import Channel, MessageKind, encode
from tach.reporter import Reporters
from tach.reporter.human import HumanReporter
from tach.reporter.json import JsonReporter
from tach.scheduler import Unit

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)
KEYS = [
    "id",
    "pid",
    "slot",
    "report",
    "ids",
    "final",
    "errors",
    "deselected",
    "unit",
    "nodeid",
    "when",
    "outcome",
    "teststatus",
    "crash",
    "timeout",
    "status",
    "message",
]
payloads = st.dictionaries(st.sampled_from(KEYS), json_values, max_size=8) | st.fixed_dictionaries(
    {
        "report": st.dictionaries(st.sampled_from(KEYS), json_values, max_size=8),
        "id": st.text(max_size=10),
        "pid": st.integers(-5, 5),
    }
)


class Harness:
    """A supervisor with one slot and no processes: frames are pushed into its ring by hand."""

    def __init__(self) -> None:
        out = io.StringIO()
        reporter = Reporters(
            [
                HumanReporter(
                    out, verbosity=0, reportchars="fE", durations=None, color="no", tbstyle="auto"
                ),
                JsonReporter(io.BytesIO()),
            ]
        )
        spec = RunSpec(python=sys.executable, invocation_dir=".", pytest_args=[], workers=1)
        self.supervisor = Supervisor(spec, reporter)
        self.left, self.right = socket.socketpair()
        self.slot = Slot(
            0,
            Channel(self.left, "command channel of slot 0"),
            Ring(1 << 16),
            LogBuffer("test-output"),
        )
        self.slot.worker_pid = 4242
        self.slot.ready = True
        self.slot.unit = Unit("tests/test_x.py", ["tests/test_x.py"], ["tests/test_x.py::t"])
        self.supervisor.slots.append(self.slot)

    def push(self, data: bytes) -> None:
        self.slot.ring.push(data)

    def close(self) -> None:
        self.supervisor.selector.close()
        self.slot.channel.close()
        self.slot.ring.close()
        assert self.slot.output is not None
        self.slot.output.close()
        self.right.close()


@pytest.fixture
def harness():
    made = Harness()
    yield made
    made.close()


@settings(
    max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None
)
@given(data=st.binary(max_size=64))
def test_garbage_on_a_ring_is_an_internal_error_naming_the_worker(harness, data):
    harness.supervisor.internal_errors.clear()
    harness.push(data)
    assert harness.supervisor._drain(harness.slot) == 1
    for error in harness.supervisor.internal_errors:
        assert "(slot 0)" in error


@settings(
    max_examples=120, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None
)
@given(kind=st.sampled_from(list(MessageKind)), payload=payloads)
def test_payloads_of_the_wrong_shape_never_raise(harness, kind, payload: dict[str, Any]):
    harness.supervisor.internal_errors.clear()
    harness.push(encode(kind, payload))
    harness.supervisor._drain(harness.slot)  # must not raise
    for error in harness.supervisor.internal_errors:
        assert "(slot 0)" in error


def test_a_bad_frame_names_the_worker(harness):
    harness.push(b"\xff" * 16)
    harness.push(encode(MessageKind.TestStart, {"no": "id"}))
    harness.supervisor._drain(harness.slot)
    errors = harness.supervisor.internal_errors
    assert len(errors) == 2
    assert errors[0].startswith("worker 4242 (slot 0) sent a malformed message")
    assert errors[1].startswith("worker 4242 (slot 0) sent a message Tach cannot use (KeyError")


@settings(max_examples=60, deadline=None)
@given(data=st.binary(min_size=1, max_size=64))
def test_garbage_on_the_control_channel_ends_the_run_with_an_internal_error(data):
    spec = RunSpec(python=sys.executable, invocation_dir=".", pytest_args=[], workers=1)
    supervisor = Supervisor(spec, Reporters([JsonReporter(io.BytesIO())]))
    ours, theirs = socket.socketpair()
    supervisor.control = Channel(ours, "control channel")
    supervisor.selector.register(ours.fileno(), 1, None)
    try:
        theirs.sendall(data)
        theirs.close()
        while supervisor.control is not None:  # ends at the latest at end of stream
            supervisor._on_control()
        assert all("zygote" in error for error in supervisor.internal_errors)
    finally:
        supervisor.selector.close()
        ours.close()
