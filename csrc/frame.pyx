# cython: language_level=3
"""The frame codec: Tach's wire format for the control channel and the result rings.

A frame is an 8-byte little-endian header — payload length (uint32), kind (uint16), flags
(uint8), version (uint8) — followed by the payload: orjson-encoded JSON, or opaque bytes when
FLAG_RAW is set. :mod:`tach._native.pyframe` is the pure-Python reference of the same format and
owns the exception classes, so both codecs raise identical types.

Why it is written this way:

* The header is validated before the payload is looked at, and a stream decoder never
  allocates for bytes it has not received: a header announcing 4 GiB costs nothing until
  4 GiB arrive, and the default limit (16 MiB) refuses it at once.
* ``FrameDecoder.feed`` parses straight out of the caller's buffer when nothing is pending,
  and keeps only the unfinished tail; the common case — whole frames per read — copies each
  payload exactly once, into the ``bytes`` handed to orjson (or to the caller for FLAG_RAW).
* Integers are assembled byte by byte, so the format is little-endian on any host; compilers
  turn the shifts into single loads on little-endian machines.
"""

from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t
from libc.string cimport memcpy

import orjson

from tach._native.pyframe import (
    BadFlags,
    BadPayload,
    DEFAULT_MAX_PAYLOAD,
    FLAG_RAW,
    FrameError,
    FrameTooLarge,
    HEADER_SIZE,
    KNOWN_FLAGS,
    LENGTH_LIMIT,
    MAX_KIND,
    TruncatedFrame,
    UnknownKind,
    UnsupportedVersion,
    VERSION,
)

__all__ = [
    "BadFlags", "BadPayload", "DEFAULT_MAX_PAYLOAD", "FLAG_RAW", "FrameDecoder", "FrameError",
    "FrameTooLarge", "HEADER_SIZE", "KNOWN_FLAGS", "LENGTH_LIMIT", "MAX_KIND", "TruncatedFrame",
    "UnknownKind", "UnsupportedVersion", "VERSION", "decode", "decode_header", "encode",
    "encode_raw",
]

cdef enum:
    C_HEADER_SIZE = 8
    C_VERSION = 1
    C_FLAG_RAW = 0x01
    C_KNOWN_FLAGS = 0x01
    C_MAX_KIND = 0xFFFF

cdef object _dumps = orjson.dumps
cdef object _loads = orjson.loads
cdef object _JSONDecodeError = orjson.JSONDecodeError


cdef struct Header:
    uint32_t length
    uint16_t kind
    uint8_t flags
    uint8_t version


cdef inline void _write_header(char *out, uint32_t length, uint16_t kind, uint8_t flags) noexcept:
    cdef uint8_t *p = <uint8_t *>out
    p[0] = length & 0xFF
    p[1] = (length >> 8) & 0xFF
    p[2] = (length >> 16) & 0xFF
    p[3] = (length >> 24) & 0xFF
    p[4] = kind & 0xFF
    p[5] = (kind >> 8) & 0xFF
    p[6] = flags
    p[7] = C_VERSION


cdef inline Header _read_header(const char *data) noexcept:
    cdef const uint8_t *p = <const uint8_t *>data
    cdef Header h
    h.length = (<uint32_t>p[0]) | (<uint32_t>p[1] << 8) | (<uint32_t>p[2] << 16) | (<uint32_t>p[3] << 24)
    h.kind = (<uint16_t>p[4]) | (<uint16_t>p[5] << 8)
    h.flags = p[6]
    h.version = p[7]
    return h


cdef int _check_header(Header h, uint64_t max_kind, uint64_t max_payload) except -1:
    """Raise the FrameError a bad header deserves; the order matches the reference codec."""
    if h.version != C_VERSION:
        raise UnsupportedVersion(f"frame version {h.version} is not the supported {C_VERSION}")
    if h.kind < 1 or h.kind > max_kind:
        raise UnknownKind(f"frame kind {h.kind} is outside 1..{max_kind}")
    if h.flags & ~C_KNOWN_FLAGS:
        raise BadFlags(f"frame flags {h.flags:#x} set bits outside {C_KNOWN_FLAGS:#x}")
    if h.length > max_payload:
        raise FrameTooLarge(f"frame payload of {h.length} bytes exceeds the limit of {max_payload}")
    return 0


cdef int _check_encode_args(long kind, long flags) except -1:
    if kind < 1 or kind > C_MAX_KIND:
        raise UnknownKind(f"frame kind {kind} is outside 1..{C_MAX_KIND}")
    if flags < 0 or flags & ~C_KNOWN_FLAGS:
        raise BadFlags(f"frame flags {flags:#x} set bits outside {C_KNOWN_FLAGS:#x}")
    return 0


cdef object _payload_object(uint8_t flags, const char *data, Py_ssize_t length):
    payload = PyBytes_FromStringAndSize(data, length)
    if flags & C_FLAG_RAW:
        return payload
    try:
        return _loads(payload)
    except _JSONDecodeError as exc:
        raise BadPayload(f"frame payload is not valid JSON: {exc}") from None


cdef bytes _frame(long kind, long flags, const char *payload, Py_ssize_t length):
    if length > LENGTH_LIMIT:
        raise FrameTooLarge(f"payload of {length} bytes exceeds the {LENGTH_LIMIT} limit")
    cdef bytes out = PyBytes_FromStringAndSize(NULL, C_HEADER_SIZE + length)
    cdef char *dst = PyBytes_AS_STRING(out)
    _write_header(dst, <uint32_t>length, <uint16_t>kind, <uint8_t>flags)
    if length:
        memcpy(dst + C_HEADER_SIZE, payload, length)
    return out


def encode(long kind, obj, long flags=0):
    """Encode ``obj`` as JSON (orjson) in a frame of ``kind``; returns the frame's bytes."""
    _check_encode_args(kind, flags)
    if flags & C_FLAG_RAW:
        raise BadFlags("encode() writes JSON frames; use encode_raw() for FLAG_RAW")
    cdef bytes payload = _dumps(obj)
    return _frame(kind, flags, PyBytes_AS_STRING(payload), PyBytes_GET_SIZE(payload))


def encode_raw(long kind, payload, long flags=C_FLAG_RAW):
    """Frame already-encoded ``payload`` (any bytes-like object) verbatim.

    FLAG_RAW is set unless other flags are given: pass ``flags=0`` to send bytes that are
    already JSON and should be decoded as such on the other side.
    """
    _check_encode_args(kind, flags)
    cdef Py_buffer view
    if type(payload) is bytes:
        return _frame(kind, flags, PyBytes_AS_STRING(payload), PyBytes_GET_SIZE(payload))
    PyObject_GetBuffer(payload, &view, PyBUF_SIMPLE)
    try:
        return _frame(kind, flags, <const char *>view.buf, view.len)
    finally:
        PyBuffer_Release(&view)


def decode_header(buf, uint64_t max_kind=C_MAX_KIND, uint64_t max_payload=DEFAULT_MAX_PAYLOAD):
    """Validate the header at the start of ``buf``; return ``(payload_length, kind, flags)``."""
    cdef Py_buffer view
    cdef Header h
    PyObject_GetBuffer(buf, &view, PyBUF_SIMPLE)
    try:
        if view.len < C_HEADER_SIZE:
            raise TruncatedFrame(f"frame header needs {C_HEADER_SIZE} bytes, got {view.len}")
        h = _read_header(<const char *>view.buf)
        _check_header(h, max_kind, max_payload)
        return h.length, h.kind, h.flags
    finally:
        PyBuffer_Release(&view)


def decode(buf, uint64_t max_kind=C_MAX_KIND, uint64_t max_payload=DEFAULT_MAX_PAYLOAD):
    """Decode the frame at the start of ``buf``: ``(kind, flags, payload, frame_size)``.

    The payload is the decoded JSON value, or the raw bytes for a FLAG_RAW frame. Bytes after
    the frame are ignored; ``frame_size`` says where the next frame starts.
    """
    cdef Py_buffer view
    if type(buf) is bytes:  # the common case: no buffer protocol round trip
        return _decode_one(PyBytes_AS_STRING(buf), PyBytes_GET_SIZE(buf), max_kind, max_payload)
    PyObject_GetBuffer(buf, &view, PyBUF_SIMPLE)
    try:
        return _decode_one(<const char *>view.buf, view.len, max_kind, max_payload)
    finally:
        PyBuffer_Release(&view)


cdef tuple _decode_one(const char *data, Py_ssize_t size, uint64_t max_kind, uint64_t max_payload):
    if size < C_HEADER_SIZE:
        raise TruncatedFrame(f"frame header needs {C_HEADER_SIZE} bytes, got {size}")
    cdef Header h = _read_header(data)
    _check_header(h, max_kind, max_payload)
    if <uint64_t>(size - C_HEADER_SIZE) < h.length:
        raise TruncatedFrame(f"frame payload needs {h.length} bytes, got {size - C_HEADER_SIZE}")
    return (
        h.kind,
        h.flags,
        _payload_object(h.flags, data + C_HEADER_SIZE, h.length),
        C_HEADER_SIZE + <Py_ssize_t>h.length,
    )


cdef class FrameDecoder:
    """Reassembles frames from a byte stream that arrives in arbitrary pieces.

    ``feed`` returns every frame completed by the new bytes, as ``(kind, flags, payload)``.
    A header is validated as soon as its 8 bytes are present. A :class:`FrameError` raised by
    ``feed`` carries the frames completed before the bad bytes in its ``frames`` attribute, so
    nothing valid is lost; after it the stream has lost its framing and the decoder refuses
    further input.
    """

    cdef readonly uint64_t max_kind
    cdef readonly uint64_t max_payload
    cdef bytearray _buf
    cdef object _broken

    def __cinit__(self, uint64_t max_kind=C_MAX_KIND, uint64_t max_payload=DEFAULT_MAX_PAYLOAD):
        self.max_kind = max_kind
        self.max_payload = max_payload
        self._buf = bytearray()
        self._broken = None

    @property
    def pending(self):
        """Bytes received that do not yet form a whole frame."""
        return len(self._buf)

    cdef Py_ssize_t _parse(self, const char *data, Py_ssize_t size, list frames) except -1:
        """Append the whole frames at the start of ``data``; return how many bytes they used."""
        cdef Py_ssize_t pos = 0
        cdef Header h
        while size - pos >= C_HEADER_SIZE:
            h = _read_header(data + pos)
            _check_header(h, self.max_kind, self.max_payload)
            if <uint64_t>(size - pos - C_HEADER_SIZE) < h.length:
                break
            frames.append(
                (h.kind, h.flags, _payload_object(h.flags, data + pos + C_HEADER_SIZE, h.length))
            )
            pos += C_HEADER_SIZE + h.length
        return pos

    def feed(self, data):
        """Add ``data`` (any bytes-like object); return the frames it completes."""
        if self._broken is not None:
            raise FrameError(f"the stream is broken by an earlier error: {self._broken}")
        cdef list frames = []
        cdef Py_buffer view
        cdef Py_ssize_t used
        try:
            if not self._buf:
                # Nothing pending: parse in place, keep only the unfinished tail.
                PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
                try:
                    used = self._parse(<const char *>view.buf, view.len, frames)
                    if used < view.len:
                        self._buf += (<const char *>view.buf)[used:view.len]
                finally:
                    PyBuffer_Release(&view)
            else:
                self._buf += data
                # The exported buffer pins the bytearray: it cannot be resized under us.
                PyObject_GetBuffer(self._buf, &view, PyBUF_SIMPLE)
                try:
                    used = self._parse(<const char *>view.buf, view.len, frames)
                finally:
                    PyBuffer_Release(&view)
                if used:
                    del self._buf[:used]
        except FrameError as exc:
            exc.frames = frames
            self._broken = exc
            raise
        return frames

    def eof(self):
        """Declare the end of the stream: raise :class:`TruncatedFrame` if a frame is unfinished."""
        if self._buf:
            raise TruncatedFrame(f"stream ended inside a frame ({len(self._buf)} bytes pending)")
