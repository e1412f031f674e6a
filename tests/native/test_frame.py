"""The frame codec: one suite run against the Cython codec and the pure-Python reference."""

from __future__ import annotations

import json
import pathlib
import tracemalloc

import orjson
import pytest

from tach._native import frame as native_frame
from tach._native import pyframe

CORPUS = pathlib.Path(__file__).parent / "data" / "bad_frames"


@pytest.fixture(params=["native", "reference"])
def codec(request):
    return native_frame if request.param == "native" else pyframe


SAMPLES = [
    (1, None),
    (2, {"event": "test_start", "id": "tests/test_a.py::test_x[1-a]", "pid": 4242}),
    (0xFFFF, [1, 2.5, "three", True, False, None, {"nested": ["deep"]}]),
    (7, "ünïcödé ✓"),
    (9, {"big": "x" * 100_000}),
    (3, 0),
]


def test_exceptions_are_shared_with_the_reference():
    for name in ("FrameError", "TruncatedFrame", "FrameTooLarge", "UnknownKind",
                 "UnsupportedVersion", "BadFlags", "BadPayload"):
        assert getattr(native_frame, name) is getattr(pyframe, name)
    assert issubclass(native_frame.FrameError, ValueError)


@pytest.mark.parametrize(("kind", "obj"), SAMPLES)
def test_round_trip(codec, kind, obj):
    data = codec.encode(kind, obj)
    assert data[8:] == orjson.dumps(obj)
    assert codec.decode(data) == (kind, 0, obj, len(data))
    assert codec.decode_header(data) == (len(data) - 8, kind, 0)


@pytest.mark.parametrize(("kind", "obj"), SAMPLES)
def test_native_bytes_equal_reference_bytes(kind, obj):
    assert native_frame.encode(kind, obj) == pyframe.encode(kind, obj)


def test_header_layout_is_little_endian(codec):
    data = codec.encode_raw(0x0102, b"abc")
    assert data == b"\x03\x00\x00\x00\x02\x01\x01\x01abc"


def test_raw_frames_carry_bytes_verbatim(codec):
    for payload in (b"", b"\x00\xff" * 1000, bytearray(b"abc"), memoryview(b"xyz")):
        data = codec.encode_raw(5, payload)
        assert codec.decode(data) == (5, codec.FLAG_RAW, bytes(payload), 8 + len(payload))


def test_raw_bytes_sent_as_json_are_decoded_as_json(codec):
    data = codec.encode_raw(5, orjson.dumps({"k": [1, 2]}), flags=0)
    assert codec.decode(data)[2] == {"k": [1, 2]}


def test_trailing_bytes_are_left_for_the_next_frame(codec):
    first, second = codec.encode(1, "a"), codec.encode(2, "b")
    kind, _, obj, size = codec.decode(first + second)
    assert (kind, obj, size) == (1, "a", len(first))
    assert codec.decode((first + second)[size:])[:3] == (2, 0, "b")


@pytest.mark.parametrize(("kind", "obj"), SAMPLES[:4])
def test_every_prefix_of_a_valid_frame_is_truncated(codec, kind, obj):
    data = codec.encode(kind, obj)
    for cut in range(len(data)):
        with pytest.raises(codec.TruncatedFrame):
            codec.decode(data[:cut])
        decoder = codec.FrameDecoder()
        assert decoder.feed(data[:cut]) == []
        assert decoder.pending == cut
        if cut:
            with pytest.raises(codec.TruncatedFrame):
                decoder.eof()
        assert decoder.feed(data[cut:]) == [(kind, 0, obj)]
        decoder.eof()


@pytest.mark.parametrize(
    ("kind", "flags", "error"),
    [
        (0, 0, "UnknownKind"),
        (0x10000, 0, "UnknownKind"),
        (1, 0x02, "BadFlags"),
        (1, -1, "BadFlags"),
    ],
)
def test_encode_refuses_bad_arguments(codec, kind, flags, error):
    with pytest.raises(getattr(codec, error)):
        codec.encode(kind, {}, flags)


def test_encode_refuses_the_raw_flag_for_json(codec):
    with pytest.raises(codec.BadFlags):
        codec.encode(1, {}, codec.FLAG_RAW)


def test_unencodable_object_raises_orjson_error(codec):
    with pytest.raises(TypeError):
        codec.encode(1, {"x": object()})


def test_max_kind_is_enforced(codec):
    data = codec.encode(9, {})
    assert codec.decode(data, max_kind=9)[0] == 9
    with pytest.raises(codec.UnknownKind, match=r"outside 1\.\.8"):
        codec.decode(data, max_kind=8)
    with pytest.raises(codec.UnknownKind):
        codec.FrameDecoder(max_kind=8).feed(data)


def test_max_payload_is_enforced_before_the_payload_arrives(codec):
    data = codec.encode_raw(1, b"x" * 100)
    with pytest.raises(codec.FrameTooLarge, match=r"100 bytes exceeds the limit of 99"):
        codec.FrameDecoder(max_payload=99).feed(data[:8])
    assert codec.FrameDecoder(max_payload=100).feed(data) == [(1, codec.FLAG_RAW, b"x" * 100)]


def test_a_4gib_header_allocates_nothing(codec):
    header = b"\xff\xff\xff\xff\x01\x00\x01\x01"
    tracemalloc.start()
    try:
        with pytest.raises(codec.FrameTooLarge):
            codec.decode(header + b"x" * 64)
        # A decoder allowed to take the whole range still only holds what it has received.
        decoder = codec.FrameDecoder(max_payload=codec.LENGTH_LIMIT)
        for _ in range(64):
            assert decoder.feed(b"y" * 1024 if decoder.pending else header) == []
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert decoder.pending == 8 + 63 * 1024
    assert peak < 1024 * 1024, f"peak {peak} bytes for a 4 GiB header"


def test_stream_decoder_many_frames_per_read_and_odd_chunks(codec, rand):
    frames = [
        (rand.randrange(1, 50), {"i": i, "pad": "p" * rand.randrange(0, 300)}) for i in range(300)
    ]
    stream = b"".join(codec.encode(kind, obj) for kind, obj in frames)
    decoder = codec.FrameDecoder()
    got = []
    pos = 0
    while pos < len(stream):
        step = rand.choice([1, 2, 7, 8, 9, 64, 1000, 5000])
        got.extend(decoder.feed(stream[pos : pos + step]))
        pos += step
    decoder.eof()
    assert got == [(kind, 0, obj) for kind, obj in frames], rand


def test_stream_decoder_accepts_any_buffer(codec):
    data = codec.encode(4, [1]) * 3
    for chunk in (data, bytearray(data), memoryview(data)):
        assert codec.FrameDecoder().feed(chunk) == [(4, 0, [1])] * 3


def test_stream_error_keeps_earlier_frames_and_breaks_the_stream(codec):
    good = codec.encode(1, "ok")
    bad = b"\x02\x00\x00\x00\x01\x00\x00\x07{}"
    decoder = codec.FrameDecoder()
    with pytest.raises(codec.UnsupportedVersion) as excinfo:
        decoder.feed(good + good + bad)
    assert excinfo.value.frames == [(1, 0, "ok"), (1, 0, "ok")]
    with pytest.raises(codec.FrameError, match="broken by an earlier error"):
        decoder.feed(good)


CORPUS_INDEX = json.loads((CORPUS / "index.json").read_text())


@pytest.mark.parametrize("name", sorted(CORPUS_INDEX))
def test_bad_frame_corpus(codec, name):
    data = (CORPUS / name).read_bytes()
    error = getattr(codec, CORPUS_INDEX[name])
    with pytest.raises(error):
        codec.decode(data)
    decoder = codec.FrameDecoder()
    if error is codec.TruncatedFrame:
        assert decoder.feed(data) == []
        if data:  # an empty stream is a clean end, anything else ends inside a frame
            with pytest.raises(codec.TruncatedFrame):
                decoder.eof()
        else:
            decoder.eof()
    else:
        with pytest.raises(error):
            decoder.feed(data)
