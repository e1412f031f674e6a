"""The frame codec: 8-byte little-endian header (length u32, kind u16, flags u8, version u8),
then an orjson payload or, with FLAG_RAW, opaque bytes. See :mod:`tach._native.pyframe`."""

from typing import Any

from tach._native.pyframe import BadFlags as BadFlags
from tach._native.pyframe import BadPayload as BadPayload
from tach._native.pyframe import FrameError as FrameError
from tach._native.pyframe import FrameTooLarge as FrameTooLarge
from tach._native.pyframe import TruncatedFrame as TruncatedFrame
from tach._native.pyframe import UnknownKind as UnknownKind
from tach._native.pyframe import UnsupportedVersion as UnsupportedVersion

Buffer = bytes | bytearray | memoryview

HEADER_SIZE: int
VERSION: int
FLAG_RAW: int
KNOWN_FLAGS: int
MAX_KIND: int
DEFAULT_MAX_PAYLOAD: int
LENGTH_LIMIT: int

def encode(kind: int, obj: Any, flags: int = 0) -> bytes: ...
def encode_raw(kind: int, payload: Buffer, flags: int = ...) -> bytes: ...
def decode_header(
    buf: Buffer, max_kind: int = ..., max_payload: int = ...
) -> tuple[int, int, int]: ...
def decode(
    buf: Buffer, max_kind: int = ..., max_payload: int = ...
) -> tuple[int, int, Any, int]: ...

class FrameDecoder:
    """Reassembles frames from a byte stream that arrives in arbitrary pieces."""

    max_kind: int
    max_payload: int
    def __init__(self, max_kind: int = ..., max_payload: int = ...) -> None: ...
    @property
    def pending(self) -> int: ...
    def feed(self, data: Buffer) -> list[tuple[int, int, Any]]: ...
    def eof(self) -> None: ...
