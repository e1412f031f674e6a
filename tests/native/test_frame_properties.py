"""Property tests: the Cython codec behaves exactly like the pure-Python reference."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from tach._native import frame as native
from tach._native import pyframe as reference

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(), children, max_size=5)
    ),
    max_leaves=20,
)
kinds = st.integers(min_value=1, max_value=0xFFFF)


def outcome(fn, *args):
    """What a call did: its result, or the exception type it raised (messages may differ)."""
    try:
        return ("ok", fn(*args))
    except ValueError as exc:
        return ("error", type(exc))


@given(kinds, json_values)
def test_json_round_trip_and_identical_bytes(kind, value):
    data = native.encode(kind, value)
    assert data == reference.encode(kind, value)
    assert native.decode(data) == reference.decode(data) == (kind, 0, value, len(data))


@given(kinds, st.binary(max_size=2048))
def test_raw_round_trip(kind, payload):
    data = native.encode_raw(kind, payload)
    assert data == reference.encode_raw(kind, payload)
    assert native.decode(data) == (kind, native.FLAG_RAW, payload, len(data))


@given(st.binary(max_size=64), st.integers(min_value=1, max_value=0xFFFF),
       st.integers(min_value=0, max_value=2**32))
def test_decode_of_arbitrary_bytes_agrees(data, max_kind, max_payload):
    assert outcome(native.decode, data, max_kind, max_payload) == outcome(
        reference.decode, data, max_kind, max_payload
    )


@given(st.lists(st.tuples(kinds, json_values), max_size=12), st.data())
@settings(max_examples=200)
def test_stream_reassembly_under_any_chunking(frames, data):
    stream = b"".join(native.encode(kind, value) for kind, value in frames)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=10)))
    decoder = native.FrameDecoder()
    got = []
    start = 0
    for cut in [*cuts, len(stream)]:
        got.extend(decoder.feed(stream[start:cut]))
        start = cut
    decoder.eof()
    assert got == [(kind, 0, value) for kind, value in frames]


@given(st.lists(st.binary(max_size=40), max_size=8), st.integers(1, 0xFFFF), st.integers(0, 4096))
def test_stream_decoders_agree_on_arbitrary_input(chunks, max_kind, max_payload):
    fast = native.FrameDecoder(max_kind=max_kind, max_payload=max_payload)
    slow = reference.FrameDecoder(max_kind=max_kind, max_payload=max_payload)
    for chunk in chunks:
        result = outcome(fast.feed, chunk)
        assert result == outcome(slow.feed, chunk)
        if result[0] == "error":
            break
    else:
        assert fast.pending == slow.pending
        assert outcome(fast.eof) == outcome(slow.eof)
