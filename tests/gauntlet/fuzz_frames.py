"""Coverage-guided fuzzing of what the supervisor reads, with atheris (not in the default run):

    pip install atheris
    python tests/gauntlet/fuzz_frames.py -max_total_time=60

Each input goes through the frame decoder (whole, and fed to the stream decoder in two parts)
and into a result ring that a supervisor with one slot drains: only ``ProtocolError`` /
``FrameError`` may come out of the decoders, and the supervisor must never raise. Inputs are
also turned into well-formed frames (a valid header around the fuzzer's bytes, or a JSON object
of known keys and fuzzed values) so that the payload handling is reached.
"""

from __future__ import annotations

import contextlib
import io
import socket
import sys

import atheris

with atheris.instrument_imports():
    from tach._native import frame
    from tach._native.memfd import LogBuffer
    from tach._native.ring import FrameTooLarge, Ring
    from tach.lifecycle import RunSpec, Slot, Supervisor
    from tach.protocol import MAX_KIND, Channel, MessageKind, ProtocolError, decode_one, encode
    from tach.reporter import Reporters
    from tach.reporter.json import JsonReporter

SUPERVISOR = Supervisor(
    RunSpec(python=sys.executable, invocation_dir=".", pytest_args=[], workers=1),
    Reporters([JsonReporter(io.BytesIO())]),
)
LEFT, RIGHT = socket.socketpair()
SLOT = Slot(0, Channel(LEFT, "command channel of slot 0"), Ring(1 << 16), LogBuffer("fuzz"))
SLOT.worker_pid, SLOT.ready = 4242, True
SUPERVISOR.slots.append(SLOT)


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
    "phase",
]


def fuzzed_value(fdp: atheris.FuzzedDataProvider, depth: int = 0) -> object:
    choice = fdp.ConsumeIntInRange(0, 6 if depth < 3 else 4)
    if choice == 0:
        return fdp.ConsumeInt(8)
    if choice == 1:
        return fdp.ConsumeUnicodeNoSurrogates(8)
    if choice == 2:
        return fdp.ConsumeBool()
    if choice == 3:
        return None
    if choice == 4:
        return fdp.ConsumeFloat()
    if choice == 5:
        return [fuzzed_value(fdp, depth + 1) for _ in range(fdp.ConsumeIntInRange(0, 3))]
    return {
        KEYS[fdp.ConsumeIntInRange(0, len(KEYS) - 1)]: fuzzed_value(fdp, depth + 1)
        for _ in range(fdp.ConsumeIntInRange(0, 4))
    }


def drain(data: bytes) -> None:
    try:
        SLOT.ring.push(data)
    except FrameTooLarge:
        return
    SUPERVISOR.internal_errors.clear()
    SUPERVISOR._drain(SLOT)
    assert all("(slot 0)" in error for error in SUPERVISOR.internal_errors)


def one_input(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    kind = MessageKind(fdp.ConsumeIntInRange(1, int(MAX_KIND)))
    payload = {
        KEYS[fdp.ConsumeIntInRange(0, len(KEYS) - 1)]: fuzzed_value(fdp)
        for _ in range(fdp.ConsumeIntInRange(0, 6))
    }
    drain(encode(kind, payload))
    drain(frame.encode_raw(kind, fdp.ConsumeBytes(64), flags=0))
    with contextlib.suppress(ProtocolError):
        decode_one(data)
    decoder = frame.FrameDecoder(max_kind=MAX_KIND)
    cut = len(data) // 2
    try:
        decoder.feed(data[:cut])
        decoder.feed(data[cut:])
        decoder.eof()
    except frame.FrameError:
        pass
    drain(data)


if __name__ == "__main__":
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()
