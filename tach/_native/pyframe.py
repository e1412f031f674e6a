"""The frame wire format, in pure Python: the reference that :mod:`tach._native.frame` must equal.

A frame is an 8-byte little-endian header followed by its payload::

    offset  size  field
    0       4     payload length in bytes (uint32)
    4       2     kind (uint16, 1..max_kind; 0 is never valid)
    6       1     flags (uint8; only the bits in KNOWN_FLAGS may be set)
    7       1     version (uint8; must equal VERSION)
    8       n     payload: orjson-encoded JSON, or opaque bytes when FLAG_RAW is set

Decoding validates the header before it touches the payload, so a hostile or corrupt header —
a 4 GiB length, an unknown kind or version, stray flag bits — raises at once, without waiting for
(or allocating) the bytes it announces. The exception classes live here so that the Cython codec
and this reference raise the very same types; tests run one suite against both.

This module is also the baseline of ``tach-bench frame``.
"""

from __future__ import annotations

import struct
from typing import Any

import orjson

HEADER_SIZE = 8
VERSION = 1
FLAG_RAW = 0x01
KNOWN_FLAGS = FLAG_RAW
MAX_KIND = 0xFFFF
#: The largest payload a decoder accepts unless told otherwise (16 MiB). A test's output is
#: never sent in one frame; anything bigger than this is corruption, not data.
DEFAULT_MAX_PAYLOAD = 16 * 1024 * 1024
#: The largest payload the header can express.
LENGTH_LIMIT = 0xFFFFFFFF

_HEADER = struct.Struct("<IHBB")


class FrameError(ValueError):
    """A byte stream that is not a valid sequence of frames."""


class TruncatedFrame(FrameError):
    """The bytes end inside a frame (the header or the payload is incomplete)."""


class FrameTooLarge(FrameError):
    """A header announces a payload longer than the decoder accepts."""


class UnknownKind(FrameError):
    """A header carries a kind outside 1..max_kind."""


class UnsupportedVersion(FrameError):
    """A header carries a protocol version this codec does not speak."""


class BadFlags(FrameError):
    """A header sets flag bits this codec does not know."""


class BadPayload(FrameError):
    """A JSON frame's payload is not valid JSON."""


def _check_encode_args(kind: int, flags: int) -> None:
    if not 1 <= kind <= MAX_KIND:
        raise UnknownKind(f"frame kind {kind} is outside 1..{MAX_KIND}")
    if flags & ~KNOWN_FLAGS or flags < 0:
        raise BadFlags(f"frame flags {flags:#x} set bits outside {KNOWN_FLAGS:#x}")


def encode(kind: int, obj: Any, flags: int = 0) -> bytes:
    """Encode ``obj`` as JSON in a frame of ``kind``."""
    _check_encode_args(kind, flags)
    if flags & FLAG_RAW:
        raise BadFlags("encode() writes JSON frames; use encode_raw() for FLAG_RAW")
    payload = orjson.dumps(obj)
    return _HEADER.pack(len(payload), kind, flags, VERSION) + payload


def encode_raw(kind: int, payload: bytes, flags: int = FLAG_RAW) -> bytes:
    """Frame already-encoded ``payload`` bytes verbatim (FLAG_RAW unless other flags are given)."""
    _check_encode_args(kind, flags)
    payload = bytes(payload)
    if len(payload) > LENGTH_LIMIT:
        raise FrameTooLarge(f"payload of {len(payload)} bytes exceeds the {LENGTH_LIMIT} limit")
    return _HEADER.pack(len(payload), kind, flags, VERSION) + payload


def decode_header(
    buf: bytes, max_kind: int = MAX_KIND, max_payload: int = DEFAULT_MAX_PAYLOAD
) -> tuple[int, int, int]:
    """Validate the header at the start of ``buf``; return ``(payload_length, kind, flags)``."""
    if len(buf) < HEADER_SIZE:
        raise TruncatedFrame(f"frame header needs {HEADER_SIZE} bytes, got {len(buf)}")
    length, kind, flags, version = _HEADER.unpack_from(buf, 0)
    if version != VERSION:
        raise UnsupportedVersion(f"frame version {version} is not the supported {VERSION}")
    if not 1 <= kind <= max_kind:
        raise UnknownKind(f"frame kind {kind} is outside 1..{max_kind}")
    if flags & ~KNOWN_FLAGS:
        raise BadFlags(f"frame flags {flags:#x} set bits outside {KNOWN_FLAGS:#x}")
    if length > max_payload:
        raise FrameTooLarge(f"frame payload of {length} bytes exceeds the limit of {max_payload}")
    return length, kind, flags


def _payload_object(flags: int, payload: bytes) -> Any:
    if flags & FLAG_RAW:
        return payload
    try:
        return orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise BadPayload(f"frame payload is not valid JSON: {exc}") from None


def decode(
    buf: bytes, max_kind: int = MAX_KIND, max_payload: int = DEFAULT_MAX_PAYLOAD
) -> tuple[int, int, Any, int]:
    """Decode the frame at the start of ``buf``: ``(kind, flags, payload, frame_size)``.

    The payload is the decoded JSON value, or the raw bytes for a FLAG_RAW frame. Bytes after
    the frame are ignored; ``frame_size`` says where the next frame starts.
    """
    length, kind, flags = decode_header(buf, max_kind, max_payload)
    end = HEADER_SIZE + length
    if len(buf) < end:
        raise TruncatedFrame(f"frame payload needs {length} bytes, got {len(buf) - HEADER_SIZE}")
    return kind, flags, _payload_object(flags, bytes(buf[HEADER_SIZE:end])), end


class FrameDecoder:
    """Reassembles frames from a byte stream that arrives in arbitrary pieces.

    ``feed`` returns every frame completed by the new bytes, as ``(kind, flags, payload)``.
    A header is validated as soon as its 8 bytes are present. A :class:`FrameError` raised by
    ``feed`` carries the frames completed before the bad bytes in its ``frames`` attribute, so
    nothing valid is lost; after it the stream has lost its framing and the decoder refuses
    further input.
    """

    def __init__(self, max_kind: int = MAX_KIND, max_payload: int = DEFAULT_MAX_PAYLOAD) -> None:
        self.max_kind = max_kind
        self.max_payload = max_payload
        self._buf = bytearray()
        self._broken: FrameError | None = None

    @property
    def pending(self) -> int:
        """Bytes received that do not yet form a whole frame."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[tuple[int, int, Any]]:
        """Add ``data``; return the frames it completes."""
        if self._broken is not None:
            raise FrameError(f"the stream is broken by an earlier error: {self._broken}")
        self._buf += data
        frames = []
        pos = 0
        buf = self._buf
        try:
            while len(buf) - pos >= HEADER_SIZE:
                length, kind, flags = decode_header(
                    buf[pos : pos + HEADER_SIZE], self.max_kind, self.max_payload
                )
                end = pos + HEADER_SIZE + length
                if len(buf) < end:
                    break
                payload = _payload_object(flags, bytes(buf[pos + HEADER_SIZE : end]))
                frames.append((kind, flags, payload))
                pos = end
        except FrameError as exc:
            exc.frames = frames
            self._broken = exc
            raise
        del buf[:pos]
        return frames

    def eof(self) -> None:
        """Declare the end of the stream: raise :class:`TruncatedFrame` if a frame is unfinished."""
        if self._buf:
            raise TruncatedFrame(f"stream ended inside a frame ({len(self._buf)} bytes pending)")
