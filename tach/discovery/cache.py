"""Per-file discovery cache under ``<rootdir>/.tach/``.

One file, ``.tach/discovery-v<N>.cache``, maps each absolute file path to
``{"size", "mtime_ns", "hash", "seen_ns", "summary"}``. A file whose size and ``mtime_ns``
match its entry is not read at all, unless it was modified less than a second before the entry
was made (a write in the same timestamp granule could hide behind an equal mtime); then, as for
any changed stat, the file is read and its blake2b content hash compared: an equal hash reuses
the summary without parsing.

Format: Tach's cache files (this one, and the whole-run documents of ``tach list``) are
``marshal`` frames behind a header that names the format version, the interpreter's marshal
version and its Python version, and a CRC-32 of the frames (:func:`encode_frames`). The cache
is private to one interpreter, and ``marshal`` is built in: no import at start-up, and it
reads faster than JSON. The discovery cache's first frame names its schema; the others hold
entries, a share of the files at a time, as the processes that read them encoded them.

Robustness: a file whose header, checksum, frames or schema are not as written (truncated,
corrupt, foreign, of another Tach or Python version) is ignored and rebuilt, never trusted:
``marshal`` only ever reads bytes whose checksum matches. Each entry is then checked for shape
and for the summary version. Writes go to a temporary file in the same directory and are moved
into place with ``os.replace``, so a reader sees either the old or the new file, and two
processes writing at once each replace the whole file (the last one wins; neither corrupts it).
The entries that discovery workers made arrive encoded and are written as they are
(:meth:`SummaryCache.merge_delta`), as are those the parent of the workers encoded a share at a
time (:meth:`SummaryCache.seal`).

:class:`CacheStats` counts what happened, so tests can assert that a second run parsed nothing.
"""

from __future__ import annotations

import binascii
import contextlib
import itertools
import marshal
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .parse import SUMMARY_VERSION, summarize
from .pool import split_frames

try:  # blake2b without loading OpenSSL (``hashlib`` costs ~5 ms of every start)
    from _blake2 import blake2b as _blake2b
except ImportError:  # pragma: no cover - CPython always has it
    from hashlib import blake2b as _blake2b

SCHEMA = "tach-discovery-cache"
#: Raised whenever what discovery records for a file changes (a cache of another version is
#: read as none).
CACHE_VERSION = 5
#: the first bytes of every cache file Tach writes
MAGIC = b"tach-cache %d marshal %d python %d.%d\n" % (
    CACHE_VERSION,
    marshal.version,
    *sys.version_info[:2],
)
_RACY_NS = 1_000_000_000


@dataclass
class CacheStats:
    """What the cache did during one discovery.

    With worker processes (``tach.discovery.pool``) the counts add up what each process did:
    a module that test modules of two workers import is counted by both.
    """

    #: files parsed with ast (cache miss or changed content).
    parsed: int = 0
    #: files whose entry was used without reading the file.
    hits: int = 0
    #: files read and hashed whose content was unchanged (summary reused).
    rehashed: int = 0
    #: entries dropped because they were malformed or of another version.
    rejected: int = 0
    #: whether the cache document itself was unreadable and ignored.
    corrupt: bool = False


def content_hash(data: bytes) -> str:
    """The content hash used in cache keys."""
    return _blake2b(data, digest_size=16).hexdigest()


def short_hash(data: bytes) -> str:
    """A short (8-byte) blake2b hex digest, for file names."""
    return _blake2b(data, digest_size=8).hexdigest()


def _valid_entry(entry: Any) -> bool:
    return (
        isinstance(entry, dict)
        and isinstance(entry.get("size"), int)
        and isinstance(entry.get("mtime_ns"), int)
        and isinstance(entry.get("hash"), str)
        and isinstance(entry.get("seen_ns"), int)
        and isinstance(entry.get("summary"), dict)
        and entry["summary"].get("v") == SUMMARY_VERSION
    )


class SummaryCache:
    """Summaries of source files, read from and written back to ``<dir>/discovery-v4.cache``."""

    def __init__(self, directory: Path | None) -> None:
        self.directory = directory
        self.path = directory / f"discovery-v{CACHE_VERSION}.cache" if directory else None
        self.entries: dict[str, dict[str, Any]] = {}
        self.stats = CacheStats()
        self.dirty = False
        #: set by discovery to record what it read
        self.inputs: Inputs | None = None
        #: keys written since :meth:`begin_delta` (in a discovery worker), else None
        self._delta: set[str] | None = None
        #: keys written and not yet encoded by :meth:`delta_entries` or :meth:`seal`
        self._unsent: list[str] = []
        #: entries from workers, kept as the frames they arrived in: (keys, frames)
        self._raw: list[tuple[set[str], list[bytes | memoryview]]] = []
        #: this process's entries encoded by :meth:`seal`: (keys, frame)
        self._sealed: list[tuple[set[str], bytes]] = []
        self._load()

    def _load(self) -> None:
        if self.path is None:
            return
        try:
            raw = self.path.read_bytes()
        except OSError:
            return
        frames = decode_frames(raw)
        if not (
            frames
            and frames[0] == {"schema": SCHEMA}
            and all(isinstance(f, dict) for f in frames[1:])
        ):
            self.stats.corrupt = True
            self.dirty = True
            return
        for entries in frames[1:]:
            for key, entry in entries.items():
                if isinstance(key, str) and _valid_entry(entry):
                    self.entries[key] = entry
                else:
                    self.stats.rejected += 1
                    self.dirty = True

    def _stat(self, path: Path, key: str) -> tuple[os.stat_result | None, str | None]:
        """The stat of ``path`` (``key`` is its string), recorded as an input of the run; or
        None and the error message."""
        try:
            st = os.stat(key)
        except OSError as exc:
            return None, f"cannot read: {exc.strerror or exc}"
        if self.inputs is not None:
            self.inputs.file(path, st)
        return st, None

    def summary(self, path: Path) -> tuple[dict[str, Any] | None, str | None]:
        """The summary of ``path`` and None, or None and an error message (unreadable file)."""
        key = str(path)
        entry = self.entries.get(key)
        if entry is None:
            # nothing to compare the file with: open it at once and stat what was opened (one
            # lookup of the path, not two)
            try:
                st, data = _read_new(key)
            except OSError as exc:
                # what a stat first, then the read, would have said
                stat_error = self._stat(path, key)[1]
                return None, stat_error or f"cannot read: {exc.strerror or exc}"
            if self.inputs is not None:
                self.inputs.file(path, st)
        else:
            st, stat_error = self._stat(path, key)
            if st is None:
                return None, stat_error
            if (
                entry["size"] == st.st_size
                and entry["mtime_ns"] == st.st_mtime_ns
                and st.st_mtime_ns < entry["seen_ns"] - _RACY_NS
            ):
                self.stats.hits += 1
                return entry["summary"], None
            try:
                data = _read(key, st.st_size)
            except OSError as exc:
                return None, f"cannot read: {exc.strerror or exc}"
        digest = content_hash(data)
        now = time.time_ns()
        if entry is not None and entry["hash"] == digest:
            self.stats.rehashed += 1
            summary = entry["summary"]
        else:
            self.stats.parsed += 1
            summary = summarize(data, key)
        self.entries[key] = {
            "size": st.st_size,
            "mtime_ns": st.st_mtime_ns,
            "hash": digest,
            "seen_ns": now,
            "summary": summary,
        }
        self.dirty = True
        self._unsent.append(key)
        if self._delta is not None:
            self._delta.add(key)
        return summary, None

    # -- discovery workers (see ``tach.discovery.pool``) ----------------------------------------

    def begin_delta(self) -> None:
        """In a worker: from now on, remember which entries change, and count afresh."""
        self._delta = set()
        self._unsent = []
        self.stats = CacheStats()

    def delta_entries(self) -> bytes:
        """The entries written since :meth:`begin_delta` and not returned by an earlier call,
        as one frame (empty bytes when there are none): a worker encodes them a share at a
        time, while other processes still collect."""
        keys, self._unsent = self._unsent, []
        return marshal.dumps({k: self.entries[k] for k in keys}) if keys else b""

    def seal(self) -> None:
        """Encode the entries written since the last call now, as :meth:`save` would: in the
        parent of discovery workers, a share at a time, while the workers still collect
        (what :meth:`save` then has left to encode is small)."""
        keys, self._unsent = self._unsent, []
        if keys:
            self._sealed.append((set(keys), marshal.dumps({k: self.entries[k] for k in keys})))

    def delta(self) -> tuple[list[str], list[int]]:
        """The keys of the entries written since :meth:`begin_delta` and the counts (parsed,
        hits, rehashed): for the parent process."""
        s = self.stats
        return sorted(self._delta or ()), [s.parsed, s.hits, s.rehashed]

    def merge_delta(
        self, keys: list[str], raw: Sequence[bytes | memoryview], counts: list[int]
    ) -> None:
        """In the parent: take a worker's :meth:`delta` and its :meth:`delta_entries`.

        The entries are not decoded: :meth:`save` writes their frames as they are (the parent
        does not need them, and decoding then re-encoding a few megabytes would cost more than
        their parsing saved). Entries of a file that another worker also read are decoded
        instead, so that no key appears twice in the file.
        """
        keyset = set(keys)
        if any(keyset & other for other, _ in self._raw):
            for part in raw:
                for key, entry in marshal.loads(part).items():
                    if _valid_entry(entry):
                        self.entries[key] = entry
        elif keys:
            self._raw.append((keyset, list(raw)))
        self.dirty = True
        self.stats.parsed += counts[0]
        self.stats.hits += counts[1]
        self.stats.rehashed += counts[2]

    def _document(self) -> list[bytes | memoryview]:
        """The cache file, in parts, with the workers' entries and the sealed ones as the
        frames they were encoded in (views of them: a few megabytes are not copied)."""
        own = self.entries
        taken: set[str] = set().union(*(keys for keys, _ in self._raw))
        # a sealed part holding a file a worker also read is left out: its entries are
        # encoded again below, without that file
        sealed = [(keys, raw) for keys, raw in self._sealed if not keys & taken]
        taken.update(*(keys for keys, _ in sealed))
        if taken:
            own = {k: v for k, v in own.items() if k not in taken}
        return encode_frames(
            [
                marshal.dumps({"schema": SCHEMA}),
                *([marshal.dumps(own)] if own else []),
                *(part for _, parts in self._raw for part in parts),
                *(raw for _, raw in sealed),
            ]
        )

    def save(self) -> None:
        """Write the document atomically (temp file + ``os.replace``) if anything changed."""
        if self.path is None or self.directory is None or not self.dirty:
            return
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            gitignore = self.directory / ".gitignore"
            if not gitignore.exists():
                _atomic_write(gitignore, b"# created by tach\n*\n")
            _atomic_write(self.path, self._document())
            self.dirty = False
        except OSError:
            # A read-only checkout still lists its tests; the cache is an optimisation.
            pass


def encode_frames(frames: Sequence[bytes | memoryview]) -> list[bytes | memoryview]:
    """A cache file holding ``frames`` (each the bytes of one ``marshal.dumps``), in parts to
    write one after the other: :data:`MAGIC`, the CRC-32 of the rest, and each frame behind
    its length."""
    body: list[bytes | memoryview] = []
    crc = 0
    for frame in frames:
        head = len(frame).to_bytes(8, "big")
        crc = binascii.crc32(frame, binascii.crc32(head, crc))
        body += (head, frame)
    return [MAGIC, crc.to_bytes(4, "big"), *body]


def decode_frames(data: bytes) -> list[Any] | None:
    """The objects of the frames of a cache file :func:`encode_frames` wrote; None when it is
    not one, or not whole (wrong header, checksum or frame lengths)."""
    if not data.startswith(MAGIC):
        return None
    view = memoryview(data)
    at = len(MAGIC) + 4
    if binascii.crc32(view[at:]) != int.from_bytes(view[at - 4 : at], "big"):
        return None
    frames = split_frames(view[at:])
    if frames is None:
        return None
    try:
        return [marshal.loads(frame) for frame in frames]
    except (EOFError, TypeError, ValueError):
        return None


_TMP_COUNTER = itertools.count()


# os.open/os.read: a third of the cost of a buffered ``open().read()`` per small file


def _read(path: str, size: int) -> bytes:
    """The content of ``path``, which a stat found ``size`` bytes long."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    try:
        return _read_fd(fd, size)
    finally:
        os.close(fd)


def _read_new(path: str) -> tuple[os.stat_result, bytes]:
    """The stat and the content of ``path``."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    try:
        st = os.fstat(fd)
        return st, _read_fd(fd, st.st_size)
    finally:
        os.close(fd)


def _read_fd(fd: int, size: int) -> bytes:
    data = os.read(fd, size + 1)
    if len(data) == size:
        return data  # all the stat saw, and no more
    chunks = [data]
    while chunks[-1]:  # the file has grown since the stat, or the read was short: to the end
        chunks.append(os.read(fd, 1 << 16))
    return b"".join(chunks)


def _atomic_write(path: Path, data: bytes | Sequence[bytes | memoryview]) -> None:
    """Write ``data`` (bytes, or parts written one after the other) to ``path`` atomically."""
    # a temporary file of our own in the same directory (``O_EXCL``: never another
    # process's), then ``os.replace``: readers see the old or the new document, never a part
    for _ in range(100):
        tmp = path.parent / f".{path.name}.{os.getpid()}.{next(_TMP_COUNTER)}.tmp"
        try:
            fd = os.open(
                tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o600
            )
            break
        except FileExistsError:  # left behind by a killed process that had our pid
            continue
    else:  # pragma: no cover
        raise FileExistsError(f"no free temporary name next to {path}")
    try:
        with os.fdopen(fd, "wb") as f:
            if isinstance(data, bytes):
                f.write(data)
            else:
                f.writelines(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


class Inputs:
    """What one discovery looked at: files read and directories whose contents mattered.

    A later run can skip discovery entirely when :func:`inputs_unchanged` says that every file
    still has its size and ``mtime_ns`` and every directory still lists the same names (so no
    file appeared where discovery looked for one, and none vanished).
    """

    def __init__(self) -> None:
        self.files: dict[str, tuple[int, int]] = {}
        self.dirs: set[str] = set()

    def file(self, path: Path, st: os.stat_result) -> None:
        """Record a file that was read."""
        s = str(path)
        self.files[s] = (st.st_size, st.st_mtime_ns)
        head = s.rpartition("/")[0] if os.sep == "/" and s.startswith("/") else None
        self.dirs.add(head or str(path.parent))

    def probe(self, path: Path) -> None:
        """Record that the existence of ``path`` mattered."""
        d = path.parent
        # os.path.isdir, not Path.is_dir: False, not an error, below a directory that cannot
        # be searched
        while not os.path.isdir(d) and d.parent != d:
            d = d.parent
        self.dirs.add(str(d))

    def directory(self, path: Path) -> None:
        """Record a directory whose listing was walked."""
        self.dirs.add(str(path))

    def begin_delta(self) -> None:
        """In a discovery worker: record afresh (the parent has what came before)."""
        self.files = {}
        self.dirs = set()

    def delta(self) -> tuple[dict[str, tuple[int, int]], list[str]]:
        """What was recorded since :meth:`begin_delta`, JSON-able."""
        return self.files, sorted(self.dirs)

    def merge_delta(self, files: Any, dirs: Any) -> None:
        """In the parent: add a worker's :meth:`delta`."""
        for path, (size, mtime_ns) in files.items():
            self.files[path] = (size, mtime_ns)
        self.dirs.update(dirs)

    def snapshot(self) -> dict[str, Any]:
        """JSON-able state of the inputs now."""
        dirs = {}
        for d in sorted(self.dirs):
            try:
                dirs[d] = sorted(os.listdir(d))
            except OSError:
                dirs[d] = None
        return {"taken_ns": time.time_ns(), "files": self.files, "dirs": dirs}


def inputs_unchanged(snap: Any) -> bool:
    """Whether the inputs recorded in ``snap`` are all as they were (see :class:`Inputs`)."""
    try:
        limit = snap["taken_ns"] - _RACY_NS
        for path, (size, mtime_ns) in snap["files"].items():
            st = os.stat(path)
            if st.st_size != size or st.st_mtime_ns != mtime_ns or mtime_ns >= limit:
                return False
        for d, names in snap["dirs"].items():
            try:
                now = sorted(os.listdir(d))
            except OSError:
                now = None
            if now != names:
                return False
    except (OSError, KeyError, TypeError, ValueError):
        return False
    return True


def read_document(path: Path, schema: str) -> dict[str, Any] | None:
    """A document :func:`write_document` wrote, with ``schema``; None when there is none, or
    it is not whole, or of another schema (another version fails :data:`MAGIC`)."""
    try:
        frames = decode_frames(path.read_bytes())
    except OSError:
        return None
    if frames and len(frames) == 1 and isinstance(frames[0], dict):
        doc = frames[0]
        if doc.get("schema") == schema:
            return doc
    return None


def write_document(path: Path, doc: dict[str, Any]) -> None:
    """Write ``doc`` (built of ``marshal``'s types) atomically; errors are ignored (the cache
    is an optimisation)."""
    try:
        data = encode_frames([marshal.dumps(doc)])
    except ValueError:  # an object marshal cannot hold: no cache then
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        _atomic_write(path, data)
    except OSError:
        pass
