# cython: annotation_typing=False
# (annotations document the Python API in the embedded signatures; the C types are declared
# with cdef, so no annotation silently turns into a conversion.)
"""A shared-memory ring of frames: one producer, one consumer, any two processes.

Why a ring
==========

Every test process reports its events (test start, one report per phase, logs) to the supervisor.
A pipe or a socket costs a syscall per frame on the writing side and another on the reading side,
and wakes the reader for every frame. The ring costs a ``memcpy`` and two cache-line transfers per
frame, and a syscall only when the other side is asleep. The supervisor creates one ring per worker
slot and is its only consumer; the worker and the unit/test children it forks are the producers,
one at a time (a worker does not push while its child runs).

Layout
======

The ring lives in a memfd mapped ``MAP_SHARED`` by everyone who uses it, so it survives ``fork()``
and can be handed to an exec'd process as two file descriptors (the memfd and an eventfd, see
``Ring.fds()`` and ``Ring.attach()``)::

    offset  cache line  written by       contents
    0       0           creator, once    magic "TACHRING", layout version, header size,
                                         capacity, max_frame
    64      1           producer         head: bytes ever published (u64)
    128     2           consumer         tail: bytes ever consumed (u64);
                                         space_seq: futex word, bumped when space is freed (u32)
    192     3           consumer (+ CAS) wake word: consumer sleep generation << 2 | woken << 1
                                         | sleeping
    256     4           producer         producer_waiting: a producer sleeps on space_seq (u32)
    320     5           creator, once    the ring's name, NUL-terminated (64 bytes)
    page    -           producer         the data area: ``capacity`` bytes, a power of two and a
                                         multiple of the page size

Each word that one side writes often sits on a cache line of its own, so the producer publishing
``head`` does not invalidate the line the consumer writes ``tail`` on (false sharing would cost a
line transfer per access instead of per batch).

``head`` and ``tail`` are monotonically increasing 64-bit byte counters; a position in the data
area is ``counter & (capacity - 1)``. ``head - tail`` is the number of unread bytes, never more
than ``capacity``. 2**64 bytes never wrap in practice, so "empty" (``head == tail``) and "full"
(``head - tail == capacity``) need no extra bit.

A record is ``[u32 length][length bytes]``, padded to a multiple of 8 so that every record and
every length word is 8-aligned (a length word never straddles the end of the data area). When a
record does not fit between its position and the end of the data area, the producer writes a pad
marker (length ``0xFFFFFFFF``) there and the record at offset 0; the pad and the record are
published together. Lengths are native-endian: both sides run on the same machine.

``max_frame`` is ``capacity // 2 - 4``: a record of at most half the capacity always fits into an
empty ring wherever ``head`` stands (if it would cross the end, the pad before it is shorter than
the record itself), so a frame up to ``max_frame`` is always eventually accepted, and a longer one
is refused with ``FrameTooLarge`` instead of waiting forever.

Publishing and memory ordering
==============================

The producer copies the record (and pad marker) into free space, then stores ``head`` with
*release*; the consumer loads ``head`` with *acquire* before reading records. Release/acquire
makes every byte written before the store visible to a reader that sees the new ``head``, so a
reader never sees a torn frame. Symmetrically the consumer stores ``tail`` with *release* after
copying a record out, and the producer loads ``tail`` with *acquire* before overwriting that
space, so the producer never overwrites bytes the consumer is still reading.

Kill safety
===========

A producer can be SIGKILLed at any instruction (a test calls ``os.kill(os.getpid(), 9)``, the
supervisor enforces a timeout, the OOM killer strikes). All producer state lives in ``head``:
a record is invisible until ``head`` moves past it, and ``head`` moves in one aligned 8-byte store.
A producer killed mid-copy leaves ``head`` where it was, so the next producer (the worker, or its
next child) writes its record over the unpublished bytes as if they had never been there. Nothing
has to be repaired, and no lock can be left held by a dead process, because there is none.

The Ring object caches the last ``tail`` it saw (``_tail_cache``) to avoid touching the
consumer's cache line on every push. That cache is only ever *behind* the real ``tail`` (``tail``
only grows), so a stale copy, e.g. one inherited through ``fork()``, underestimates free space and
makes the producer reload ``tail``; it can never make it overwrite unread bytes.

The consumer never trusts the mapping: any process holding the memfd can scribble on it. Every
length is checked against ``max_frame``, against the bytes published (``head - tail``) and against
the end of the data area before anything is allocated or copied, and a bad value raises
``RingCorrupt``. The producer likewise checks ``head``/``tail`` before writing, and every write is
masked into the data area. The memfd is sealed against shrinking and growing (``F_SEAL_SHRINK``,
``F_SEAL_GROW``): a truncated memfd would turn the supervisor's next access into SIGBUS.

Waking the consumer
===================

The consumer either polls (``pop``/``pop_many`` in its own loop) or sleeps on the eventfd. The
producer must not pay a syscall per frame, so it writes the eventfd only when the consumer said it
is asleep, with the Dekker pattern on the *wake word*:

    consumer (arm)                          producer (after publishing)
    wake = gen << 2 | SLEEPING              head = new head        (release)
    fence (seq_cst)                         fence (seq_cst)
    if head != tail: don't sleep            w = wake
    poll(eventfd)                           if w & (SLEEPING|WOKEN) == SLEEPING:
                                                write(eventfd, 1); CAS(wake, w, w | WOKEN)

The two seq_cst fences forbid both loads from missing both stores: either the consumer sees the
new ``head`` and does not sleep, or the producer sees SLEEPING and writes the eventfd. No wakeup
is lost.

The producer never *clears* SLEEPING: were it to clear it first and then be killed before its
``write()``, the consumer would sleep forever on a ring that has data, and no later producer would
ever wake it (they would all see the flag clear). Instead it marks the sleep generation WOKEN
*after* the write. A producer killed between the write and the CAS costs one spurious wakeup;
killed before the write, the flag stays set and the next producer writes. ``gen``, bumped by
every ``arm()``, makes the CAS fail if the consumer woke up and went back to sleep in between (an
ABA that would otherwise mark the *new* sleep as already woken). Only the consumer writes ``gen``
and clears the flags (``clear_wakeup()`` and a ``wait()`` that returns).

A consumer that polls a busy ring on a timer instead of arming it (the supervisor does, so that
a stream of results costs no wake-up per frame) is still woken at once for the frames it must
act on without delay: the producer calls ``notify()`` after pushing one, which writes the eventfd
whatever the wake word says. The consumer treats that like any wake-up (``clear_wakeup()``, then
pop); a notification that finds the consumer awake only makes its next poll return at once.

Waiting for space
=================

A producer that finds the ring full sleeps on a futex, *shared* (not ``FUTEX_PRIVATE_FLAG``)
since the waker is another process, on ``space_seq``, again with Dekker so that the consumer
makes the ``futex_wake`` syscall only when a producer said it is waiting:

    producer                                consumer (after consuming)
    seq = space_seq       (acquire)         tail = new tail        (release)
    producer_waiting = 1  (seq_cst)         fence (seq_cst)
    fence (seq_cst)                         if producer_waiting:
    if enough space: done                       producer_waiting = 0
    futex_wait(space_seq, seq, timeout)         space_seq += 1     (release)
                                                futex_wake(space_seq)

``futex_wait`` returns at once if ``space_seq`` no longer equals ``seq``, so a bump between the
check and the sleep is not lost. A producer killed while waiting leaves ``producer_waiting`` set:
the consumer makes one unnecessary ``futex_wake``, which wakes nobody.

Threads: a Ring object may be used by one producer thread and one consumer thread at a time. The
GIL is released only around the calls that block (futex, ppoll); the object is kept alive and
``close()`` is refused while such a call runs.
"""

from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.bytes cimport (
    PyBytes_AS_STRING,
    PyBytes_CheckExact,
    PyBytes_FromStringAndSize,
    PyBytes_GET_SIZE,
)
from cpython.exc cimport PyErr_CheckSignals
from cpython.ref cimport Py_DECREF, Py_INCREF
from libc.errno cimport EAGAIN, EINTR, ETIMEDOUT, errno
from libc.stdint cimport int64_t, uint32_t, uint64_t
from libc.string cimport memcpy, memset, strerror
from posix.fcntl cimport F_DUPFD_CLOEXEC, F_GETFD, fcntl
from posix.mman cimport MAP_FAILED, MAP_SHARED, PROT_READ, PROT_WRITE, mmap, munmap
from posix.stat cimport S_ISREG, fstat, struct_stat
from posix.time cimport CLOCK_MONOTONIC, clock_gettime, timespec
from posix.types cimport off_t
from posix.unistd cimport _SC_PAGESIZE, close, ftruncate, pread, read, sysconf, write

from includes.errcheck cimport raise_errnum, raise_oserror
from includes.linux cimport (
    EFD_CLOEXEC,
    EFD_NONBLOCK,
    MFD_ALLOW_SEALING,
    MFD_CLOEXEC,
    eventfd,
    memfd_create,
    tach_exchange_u32,
    tach_fence_seq_cst,
    tach_futex_wait,
    tach_futex_wake,
    tach_load_acquire_u32,
    tach_load_acquire_u64,
    tach_store_release_u32,
    tach_store_release_u64,
)


cdef extern from *:
    """
    #include <fcntl.h>
    #include <poll.h>
    #include <stddef.h>
    #include <stdint.h>

    /* The shared header. Explicit padding instead of _Alignas, so that the offsets are the
     * documented ones whatever the compiler; the static asserts pin them. */
    typedef struct {
        /* line 0: written once by the creator */
        uint64_t magic;
        uint32_t version;
        uint32_t header_size;
        uint64_t capacity;
        uint64_t max_frame;
        char _pad0[64 - 32];
        /* line 1: producer */
        uint64_t head;
        char _pad1[64 - 8];
        /* line 2: consumer */
        uint64_t tail;
        uint32_t space_seq;
        char _pad2[64 - 12];
        /* line 3: consumer sleep generation and flags (producers only CAS the WOKEN bit) */
        uint64_t wake;
        char _pad3[64 - 8];
        /* line 4: producer */
        uint32_t producer_waiting;
        char _pad4[64 - 4];
        /* line 5: creator, once */
        char name[64];
    } tach_ring_header;

    _Static_assert(offsetof(tach_ring_header, head) == 64, "head on its own cache line");
    _Static_assert(offsetof(tach_ring_header, tail) == 128, "tail on its own cache line");
    _Static_assert(offsetof(tach_ring_header, space_seq) == 136, "space_seq next to tail");
    _Static_assert(offsetof(tach_ring_header, wake) == 192, "wake word on its own cache line");
    _Static_assert(offsetof(tach_ring_header, producer_waiting) == 256, "waiting flag line");
    _Static_assert(offsetof(tach_ring_header, name) == 320, "name");
    _Static_assert(sizeof(tach_ring_header) == 384, "header size");

    /* Not in compat.h, and only the ring needs them. */
    static inline uint32_t tach_ring_load_relaxed_u32(const uint32_t *p) {
        return __atomic_load_n(p, __ATOMIC_RELAXED);
    }
    static inline int tach_ring_cas_u64(uint64_t *p, uint64_t expected, uint64_t desired) {
        return __atomic_compare_exchange_n(p, &expected, desired, 0,
                                           __ATOMIC_SEQ_CST, __ATOMIC_RELAXED);
    }

    #ifndef F_ADD_SEALS
    #define F_ADD_SEALS 1033
    #define F_GET_SEALS 1034
    #define F_SEAL_SEAL 0x0001
    #define F_SEAL_SHRINK 0x0002
    #define F_SEAL_GROW 0x0004
    #endif
    """
    ctypedef struct tach_ring_header:
        uint64_t magic
        uint32_t version
        uint32_t header_size
        uint64_t capacity
        uint64_t max_frame
        uint64_t head
        uint64_t tail
        uint32_t space_seq
        uint64_t wake
        uint32_t producer_waiting
        char name[64]

    uint32_t tach_ring_load_relaxed_u32(const uint32_t *p) nogil
    bint tach_ring_cas_u64(uint64_t *p, uint64_t expected, uint64_t desired) nogil

    int F_ADD_SEALS
    int F_GET_SEALS
    int F_SEAL_SEAL
    int F_SEAL_SHRINK
    int F_SEAL_GROW

    struct pollfd:
        int fd
        short events
        short revents
    short POLLIN
    int ppoll(pollfd *fds, unsigned long nfds, const timespec *timeout, const void *sigmask) nogil


# b"TACHRING" read as a little-endian u64.
cdef uint64_t RING_MAGIC = 0x474E495248434154
cdef uint32_t RING_VERSION = 1
cdef uint32_t PAD_MARKER = 0xFFFFFFFF
cdef uint64_t WAKE_SLEEPING = 1
cdef uint64_t WAKE_WOKEN = 2
cdef uint64_t MAX_CAPACITY = 1 << 31
cdef Py_ssize_t NAME_MAX_BYTES = 63

#: Where each header field lives (byte offsets into the memfd), for tests and debugging tools.
_LAYOUT = {
    "magic": 0,
    "version": 8,
    "header_size": 12,
    "capacity": 16,
    "max_frame": 24,
    "head": 64,
    "tail": 128,
    "space_seq": 136,
    "wake": 192,
    "producer_waiting": 256,
    "name": 320,
}

#: The layout version this module reads and writes; attach() refuses any other.
LAYOUT_VERSION = RING_VERSION
#: The largest capacity a ring may have (frames stay below 2**30 bytes, lengths fit a u32).
MAX_RING_CAPACITY = MAX_CAPACITY


class FrameTooLarge(ValueError):
    """A frame longer than the ring's ``max_frame``: it could never fit, so it is refused."""


class RingCorrupt(RuntimeError):
    """The shared mapping holds values no correct producer writes (it was scribbled on)."""


cdef inline uint64_t _align8(uint64_t n) noexcept nogil:
    return (n + 7) & ~(<uint64_t>7)


cdef inline int64_t _now_ns() noexcept nogil:
    cdef timespec ts
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return <int64_t>ts.tv_sec * 1000000000 + ts.tv_nsec


cdef int64_t _deadline_ns(object timeout) except -2:
    """Monotonic deadline in ns for a timeout in seconds; -1 for None (wait forever)."""
    if timeout is None:
        return -1
    cdef double t = timeout
    if not t >= 0.0:  # also catches NaN
        raise ValueError(f"timeout must be a non-negative number or None, not {timeout!r}")
    if t > 1e9:  # ~31 years: as good as forever, and keeps the ns arithmetic in range
        return -1
    return _now_ns() + <int64_t>(t * 1e9)


cdef inline void _ns_to_timespec(int64_t ns, timespec *ts) noexcept nogil:
    if ns < 0:
        ns = 0
    ts.tv_sec = ns // 1000000000
    ts.tv_nsec = ns % 1000000000


cdef class Ring:
    """A single-producer/single-consumer ring of frames in a shared memfd mapping, with an eventfd.

    ``Ring(capacity, name)`` creates a new ring; ``Ring.attach(memfd, eventfd)`` maps an existing
    one (for example in a process that received ``ring.fds()``). A forked child shares the
    parent's ring through the inherited mapping. At any moment, at most one process pushes and
    one process pops.
    """

    cdef tach_ring_header *_hdr
    cdef char *_data
    cdef size_t _map_size
    cdef uint64_t _capacity
    cdef uint64_t _mask
    cdef uint64_t _max_frame
    # The producer's last view of tail: never ahead of the real tail (see the module docstring).
    cdef uint64_t _tail_cache
    cdef int _memfd
    cdef int _efd
    # Blocking calls in progress (GIL released); close() is refused while non-zero.
    cdef int _busy
    cdef str _name

    def __cinit__(self):
        self._hdr = NULL
        self._data = NULL
        self._map_size = 0
        self._memfd = -1
        self._efd = -1
        self._busy = 0
        self._tail_cache = 0
        self._name = ""

    def __init__(self, capacity: int = 1 << 20, name: str = "tach-ring"):
        """Create a ring with a data area of ``capacity`` bytes (a power of two, a multiple of the
        page size, at most 2**31), in a new memfd named ``name``."""
        cdef long page = sysconf(_SC_PAGESIZE)
        cdef uint64_t cap
        cdef bytes bname
        cdef void *base
        if self._hdr != NULL:
            raise RuntimeError("Ring.__init__ called twice")
        if not isinstance(capacity, int) or isinstance(capacity, bool):
            raise TypeError(f"capacity must be an int, not {type(capacity).__name__}")
        if capacity < page or capacity > MAX_CAPACITY or capacity & (capacity - 1):
            raise ValueError(
                f"capacity must be a power of two between the page size ({page}) and "
                f"{MAX_CAPACITY}, not {capacity}"
            )
        if not isinstance(name, str):
            raise TypeError(f"name must be a str, not {type(name).__name__}")
        bname = name.encode("utf-8")
        if b"\0" in bname or len(bname) > NAME_MAX_BYTES:
            raise ValueError(
                f"name must be at most {NAME_MAX_BYTES} UTF-8 bytes without NUL, not {name!r}"
            )
        cap = capacity
        try:
            # MFD_ALLOW_SEALING so that the size can be sealed below; MFD_CLOEXEC so that an
            # exec'd process gets the fd only when it is passed on purpose (pass_fds).
            self._memfd = memfd_create(bname, MFD_CLOEXEC | MFD_ALLOW_SEALING)
            if self._memfd < 0:
                raise_oserror("memfd_create")
            if ftruncate(self._memfd, <off_t>(page + cap)) < 0:
                raise_oserror("ftruncate")
            # A process that shrank the memfd would turn the consumer's next access into
            # SIGBUS: seal the size, and the seals themselves.
            if fcntl(self._memfd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0:
                raise_oserror("fcntl(F_ADD_SEALS)")
            self._efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)
            if self._efd < 0:
                raise_oserror("eventfd")
            base = mmap(NULL, page + cap, PROT_READ | PROT_WRITE, MAP_SHARED, self._memfd, 0)
            if base == MAP_FAILED:
                raise_oserror("mmap")
            self._map(base, page + cap, cap)
            # A fresh memfd reads as zeros: head, tail and the wake words start at 0. Nobody
            # else can see the mapping yet, but publish the magic last anyway so that a header
            # with the magic is always complete.
            self._hdr.version = RING_VERSION
            self._hdr.header_size = <uint32_t>page
            self._hdr.capacity = cap
            self._hdr.max_frame = self._max_frame
            memcpy(self._hdr.name, <const char *>bname, len(bname))
            tach_store_release_u64(&self._hdr.magic, RING_MAGIC)
            self._name = name
        except BaseException:
            self._release()
            raise

    @classmethod
    def attach(cls, memfd: int, eventfd: int) -> Ring:
        """Map the ring whose memfd and eventfd are ``memfd`` and ``eventfd`` (as returned by
        ``fds()`` in the creating process). Both fds are duplicated: the caller keeps ownership
        of its own and may close them. Raises ValueError if the fds do not hold a valid ring."""
        cdef Ring self = cls.__new__(cls)
        cdef long page = sysconf(_SC_PAGESIZE)
        cdef struct_stat st
        cdef tach_ring_header hdr
        cdef ssize_t got
        cdef int seals
        cdef void *base
        cdef uint64_t cap, expected_size
        try:
            # Check both before duplicating either: the first copy could otherwise take the
            # number of a closed second fd and make it look valid.
            if fcntl(memfd, F_GETFD) < 0:
                raise_oserror(f"attach: memfd {memfd}")
            if fcntl(eventfd, F_GETFD) < 0:
                raise_oserror(f"attach: eventfd {eventfd}")
            # F_DUPFD_CLOEXEC from 3: the copies are CLOEXEC and never land on 0-2.
            self._memfd = fcntl(memfd, F_DUPFD_CLOEXEC, 3)
            if self._memfd < 0:
                raise_oserror(f"attach: dup of memfd {memfd}")
            self._efd = fcntl(eventfd, F_DUPFD_CLOEXEC, 3)
            if self._efd < 0:
                raise_oserror(f"attach: dup of eventfd {eventfd}")
            if fstat(self._memfd, &st) < 0:
                raise_oserror("attach: fstat")
            if not S_ISREG(st.st_mode):
                raise ValueError(f"attach: fd {memfd} is not a memfd (not a regular file)")
            if st.st_size < page:
                raise ValueError(
                    f"attach: memfd {memfd} is {st.st_size} bytes, too small for a ring header "
                    f"({page} bytes) and data area"
                )
            # Read the header with pread before mapping anything, so a bad fd is refused
            # without touching memory it describes.
            memset(&hdr, 0, sizeof(hdr))
            got = pread(self._memfd, &hdr, sizeof(hdr), 0)
            if got < 0:
                raise_oserror("attach: pread")
            if <size_t>got < sizeof(hdr) or hdr.magic != RING_MAGIC:
                raise ValueError(
                    f"attach: memfd {memfd} does not hold a tach ring (bad magic "
                    f"{hdr.magic:#018x}, expected {RING_MAGIC:#018x})"
                )
            if hdr.version != RING_VERSION:
                raise ValueError(
                    f"attach: memfd {memfd} holds ring layout version {hdr.version}; "
                    f"this build reads version {RING_VERSION}"
                )
            cap = hdr.capacity
            if (hdr.header_size != page or cap < <uint64_t>page or cap > MAX_CAPACITY
                    or cap & (cap - 1) or hdr.max_frame != cap // 2 - 4):
                raise ValueError(
                    f"attach: memfd {memfd} has an invalid ring header (header_size "
                    f"{hdr.header_size}, capacity {cap}, max_frame {hdr.max_frame}; page "
                    f"size {page})"
                )
            expected_size = <uint64_t>page + cap
            if <uint64_t>st.st_size != expected_size:
                raise ValueError(
                    f"attach: memfd {memfd} is {st.st_size} bytes but its header says capacity "
                    f"{cap}, so it should be {expected_size} bytes"
                )
            seals = fcntl(self._memfd, F_GET_SEALS)
            if seals < 0:
                raise ValueError(f"attach: fd {memfd} is not a memfd (F_GET_SEALS failed)")
            if not (seals & F_SEAL_SHRINK):
                raise ValueError(
                    f"attach: memfd {memfd} is not sealed against shrinking; a ring's memfd "
                    "always is (a truncated mapping would crash the reader with SIGBUS)"
                )
            _check_eventfd(self._efd, eventfd)
            base = mmap(NULL, expected_size, PROT_READ | PROT_WRITE, MAP_SHARED, self._memfd, 0)
            if base == MAP_FAILED:
                raise_oserror("attach: mmap")
            self._map(base, expected_size, cap)
            self._name = bytes(hdr.name[:NAME_MAX_BYTES]).split(b"\0", 1)[0].decode(
                "utf-8", "replace"
            )
        except BaseException:
            self._release()
            raise
        return self

    cdef void _map(self, void *base, size_t size, uint64_t cap) noexcept:
        self._hdr = <tach_ring_header *>base
        self._map_size = size
        self._data = <char *>base + (size - cap)
        self._capacity = cap
        self._mask = cap - 1
        self._max_frame = cap // 2 - 4

    cdef void _release(self) noexcept:
        if self._hdr != NULL:
            munmap(self._hdr, self._map_size)
            self._hdr = NULL
            self._data = NULL
        if self._memfd >= 0:
            close(self._memfd)
            self._memfd = -1
        if self._efd >= 0:
            close(self._efd)
            self._efd = -1

    def __dealloc__(self):
        self._release()

    cdef inline int _check_open(self) except -1:
        if self._hdr == NULL:
            raise ValueError("operation on a closed ring")
        return 0

    def close(self) -> None:
        """Unmap the ring and close its memfd and eventfd (this process's copies only: other
        processes that map the ring keep it alive). Closing twice is a no-op."""
        if self._busy:
            raise RuntimeError(
                f"ring {self._name!r}: cannot close while another thread blocks in push() or "
                "wait() on it"
            )
        self._release()

    def __enter__(self):
        self._check_open()
        return self

    def __exit__(self, *exc_info):
        self.close()

    def __reduce__(self):
        raise TypeError(
            "a Ring cannot be pickled; pass ring.fds() to the other process and call "
            "Ring.attach() there"
        )

    def __repr__(self):
        if self._hdr == NULL:
            return f"<Ring {self._name!r} closed>"
        return (
            f"<Ring {self._name!r} capacity={self._capacity} pending_bytes={self.pending_bytes}>"
        )

    # --- properties -------------------------------------------------------------------------

    @property
    def capacity(self) -> int:
        """Size of the data area in bytes."""
        self._check_open()
        return self._capacity

    @property
    def max_frame(self) -> int:
        """The longest frame the ring accepts (``capacity // 2 - 4``); longer ones raise
        FrameTooLarge."""
        self._check_open()
        return self._max_frame

    @property
    def pending_bytes(self) -> int:
        """Bytes published and not yet consumed, record headers and padding included."""
        self._check_open()
        return tach_load_acquire_u64(&self._hdr.head) - tach_load_acquire_u64(&self._hdr.tail)

    @property
    def name(self) -> str:
        """The name given at creation (also the memfd's name in /proc/<pid>/fd)."""
        return self._name

    @property
    def closed(self) -> bool:
        """True once close() has run."""
        return self._hdr == NULL

    @property
    def _producer_waiting(self) -> bool:
        """Test and debugging aid: a producer has said it is about to sleep on a full ring."""
        self._check_open()
        return tach_load_acquire_u32(&self._hdr.producer_waiting) != 0

    def fds(self) -> tuple[int, int]:
        """``(memfd, eventfd)``, to hand to another process (both are CLOEXEC: pass them with
        ``subprocess``'s ``pass_fds`` or over a Unix socket). They stay owned by this ring."""
        self._check_open()
        return (self._memfd, self._efd)

    def fileno(self) -> int:
        """The eventfd: readable when frames may be available after an arm() (for selectors and
        asyncio). Call clear_wakeup() once it has become readable."""
        self._check_open()
        return self._efd

    # --- producer ---------------------------------------------------------------------------

    cdef int _produce(self, const char *p, Py_ssize_t n, Py_ssize_t limit) except -1:
        """Write one record and publish it. Returns 1 if written, 0 if the ring has no room.

        With ``limit >= 0`` (the _push_partial test hook) write only the first ``limit`` bytes
        of the record's byte stream (pad marker, length word, payload) and publish nothing.
        """
        cdef tach_ring_header *hdr = self._hdr
        cdef uint64_t cap = self._capacity
        cdef uint64_t head, tail, pos, rec, need, w
        cdef uint32_t n32, marker
        cdef size_t left, k
        if <uint64_t>n > self._max_frame:
            raise FrameTooLarge(
                f"frame of {n} bytes exceeds max_frame {self._max_frame} of ring {self._name!r} "
                f"(capacity {cap}); such a frame can never fit"
            )
        # We are the only producer now, but earlier producers (a parent, a killed child)
        # published with release: acquire their head.
        head = tach_load_acquire_u64(&hdr.head)
        rec = _align8(4 + <uint64_t>n)
        pos = head & self._mask
        need = rec if pos + rec <= cap else (cap - pos) + rec
        tail = self._tail_cache
        if head - tail > cap or head - tail + need > cap:
            # Acquire pairs with the consumer's release of tail: its reads of the bytes we are
            # about to overwrite happened before.
            tail = tach_load_acquire_u64(&hdr.tail)
            self._tail_cache = tail
            if head - tail > cap or (head | tail) & 7:
                raise RingCorrupt(
                    f"ring {self._name!r}: head {head} and tail {tail} are inconsistent "
                    f"(capacity {cap}); the shared header was overwritten"
                )
            if head - tail + need > cap:
                return 0
        n32 = <uint32_t>n
        if limit < 0:
            if pos + rec > cap:
                marker = PAD_MARKER
                memcpy(self._data + pos, &marker, 4)
                pos = 0
            memcpy(self._data + pos, &n32, 4)
            memcpy(self._data + pos + 4, p, n)
            # Release: the record's bytes are visible before the head that covers them.
            tach_store_release_u64(&hdr.head, head + need)
            # Dekker with arm(): head store, fence, wake-word load (see the module docstring).
            tach_fence_seq_cst()
            w = tach_load_acquire_u64(&hdr.wake)
            if w & (WAKE_SLEEPING | WAKE_WOKEN) == WAKE_SLEEPING:
                self._wake_consumer(w)
            return 1
        left = <size_t>limit
        if pos + rec > cap:
            marker = PAD_MARKER
            k = 4 if left > 4 else left
            memcpy(self._data + pos, &marker, k)
            left -= k
            pos = 0
        k = 4 if left > 4 else left
        memcpy(self._data + pos, &n32, k)
        left -= k
        k = <size_t>n if left > <size_t>n else left
        memcpy(self._data + pos + 4, p, k)
        return 1

    cdef int _write_eventfd(self) except -1:
        cdef uint64_t one = 1
        cdef ssize_t rc
        while True:
            rc = write(self._efd, &one, 8)
            if rc == 8:
                return 0
            if rc < 0 and errno == EINTR:
                continue
            if rc < 0 and errno == EAGAIN:
                return 0  # the counter is saturated: the consumer will wake anyway
            raise_oserror(f"ring {self._name!r}: eventfd write (the frame was published)")

    cdef int _wake_consumer(self, uint64_t w) except -1:
        self._write_eventfd()
        # After the write, never before: a producer killed before the write leaves SLEEPING
        # set for the next producer. Fails harmlessly if the consumer re-armed (gen changed).
        tach_ring_cas_u64(&self._hdr.wake, w, w | WAKE_WOKEN)
        return 0

    cdef int _wait_for_space(self, Py_ssize_t n, int64_t deadline, object timeout) except -1:
        """Block until a record of n payload bytes fits, or raise TimeoutError at deadline."""
        cdef tach_ring_header *hdr = self._hdr
        cdef uint64_t cap = self._capacity
        cdef uint64_t head, tail, pos, rec, need
        cdef uint32_t seq
        cdef int64_t left
        cdef timespec ts
        cdef timespec *tsp
        cdef int rc, err
        Py_INCREF(self)
        self._busy += 1
        try:
            while True:
                head = tach_load_acquire_u64(&hdr.head)
                rec = _align8(4 + <uint64_t>n)
                pos = head & self._mask
                need = rec if pos + rec <= cap else (cap - pos) + rec
                # Acquire: a bump we see comes with the producer_waiting = 0 the consumer
                # stored before it, so our store of 1 below is not lost behind it.
                seq = tach_load_acquire_u32(&hdr.space_seq)
                tach_exchange_u32(&hdr.producer_waiting, 1)
                # Dekker with the consumer: flag store, fence, tail load.
                tach_fence_seq_cst()
                tail = tach_load_acquire_u64(&hdr.tail)
                self._tail_cache = tail
                if head - tail > cap or (head | tail) & 7:
                    raise RingCorrupt(
                        f"ring {self._name!r}: head {head} and tail {tail} are inconsistent "
                        f"(capacity {cap}); the shared header was overwritten"
                    )
                if head - tail + need <= cap:
                    return 0
                if deadline >= 0:
                    left = deadline - _now_ns()
                    if left <= 0:
                        raise TimeoutError(
                            f"ring {self._name!r}: push timed out after {timeout}s waiting for "
                            f"{need} bytes of free space ({head - tail} of {cap} bytes unread; "
                            "is the consumer alive?)"
                        )
                    _ns_to_timespec(left, &ts)
                    tsp = &ts
                else:
                    tsp = NULL
                with nogil:
                    rc = tach_futex_wait(&hdr.space_seq, seq, tsp)
                    err = errno
                if rc < 0:
                    if err == EINTR:
                        PyErr_CheckSignals()
                    elif err != EAGAIN and err != ETIMEDOUT:
                        raise_errnum(err, f"ring {self._name!r}: futex_wait")
        finally:
            # Whether we got space or gave up, nobody needs to wake us any more.
            tach_store_release_u32(&hdr.producer_waiting, 0)
            self._busy -= 1
            Py_DECREF(self)

    cdef int _push(self, const char *p, Py_ssize_t n, object timeout) except -1:
        cdef int64_t deadline
        if timeout is not None and not timeout >= 0:  # refused even when no wait is needed
            _deadline_ns(timeout)
        if self._produce(p, n, -1):
            return 0
        deadline = _deadline_ns(timeout)
        while True:
            self._wait_for_space(n, deadline, timeout)
            if self._produce(p, n, -1):
                return 0

    def push(self, frame, timeout: float | None = None) -> None:
        """Append ``frame`` (any bytes-like object) to the ring, waiting up to ``timeout``
        seconds (None: forever) for the consumer to make room. Raises TimeoutError if it does
        not, FrameTooLarge if the frame is longer than ``max_frame``."""
        cdef Py_buffer view
        self._check_open()
        if PyBytes_CheckExact(frame):
            self._push(PyBytes_AS_STRING(frame), PyBytes_GET_SIZE(frame), timeout)
            return
        PyObject_GetBuffer(frame, &view, PyBUF_SIMPLE)
        try:
            self._push(<const char *>view.buf, view.len, timeout)
        finally:
            PyBuffer_Release(&view)

    def notify(self) -> None:
        """Wake the consumer now, armed or not: for a frame just pushed that it must not leave
        to its next poll."""
        self._check_open()
        self._write_eventfd()

    def try_push(self, frame) -> bool:
        """Append ``frame`` if it fits now; return False (and write nothing) if the ring is
        full."""
        cdef Py_buffer view
        self._check_open()
        if PyBytes_CheckExact(frame):
            return self._produce(PyBytes_AS_STRING(frame), PyBytes_GET_SIZE(frame), -1) == 1
        PyObject_GetBuffer(frame, &view, PyBUF_SIMPLE)
        try:
            return self._produce(<const char *>view.buf, view.len, -1) == 1
        finally:
            PyBuffer_Release(&view)

    def _push_partial(self, frame, nbytes: int) -> bool:
        """Test hook: write the first ``nbytes`` of ``frame``'s record as push() would (pad
        marker if the record wraps, then the u32 length, then the payload) and do NOT publish,
        as if the producer had been SIGKILLed right there. False if the ring has no room."""
        cdef Py_buffer view
        self._check_open()
        if nbytes < 0:
            raise ValueError(f"nbytes must be >= 0, not {nbytes}")
        PyObject_GetBuffer(frame, &view, PyBUF_SIMPLE)
        try:
            return self._produce(<const char *>view.buf, view.len, nbytes) == 1
        finally:
            PyBuffer_Release(&view)

    # --- consumer ---------------------------------------------------------------------------

    cdef inline int _check_magic(self) except -1:
        if self._hdr.magic != RING_MAGIC:
            raise RingCorrupt(
                f"ring {self._name!r}: header magic overwritten ({self._hdr.magic:#018x})"
            )
        return 0

    cdef object _read_record(self, uint64_t head, uint64_t *tailp):
        """Copy out the record at *tailp, validating it against head and the capacity; advance
        *tailp past it (and past a pad marker before it). Raises RingCorrupt."""
        cdef uint64_t tail = tailp[0]
        cdef uint64_t cap = self._capacity
        cdef uint64_t avail = head - tail
        cdef uint64_t pos, skip, rec
        cdef uint32_t n
        if avail > cap or (avail | tail) & 7 or avail < 8:
            raise RingCorrupt(
                f"ring {self._name!r}: head {head} and tail {tail} are inconsistent "
                f"(capacity {cap}); the shared header was overwritten"
            )
        pos = tail & self._mask
        # One relaxed load into a local: a scribbler changing the word after we checked it
        # cannot make us use an unchecked value.
        n = tach_ring_load_relaxed_u32(<uint32_t *>(self._data + pos))
        if n == PAD_MARKER:
            skip = cap - pos
            if skip + 8 > avail or pos == 0:
                raise RingCorrupt(
                    f"ring {self._name!r}: pad marker at offset {pos} skips {skip} bytes but "
                    f"only {avail} bytes are published"
                )
            tail += skip
            avail -= skip
            pos = 0
            n = tach_ring_load_relaxed_u32(<uint32_t *>self._data)
        if n > self._max_frame:
            raise RingCorrupt(
                f"ring {self._name!r}: record at offset {pos} claims {n} bytes, more than "
                f"max_frame {self._max_frame}"
            )
        rec = _align8(4 + <uint64_t>n)
        if rec > avail or pos + rec > cap:
            raise RingCorrupt(
                f"ring {self._name!r}: record at offset {pos} claims {n} bytes but only "
                f"{avail} bytes are published (or it runs past the end of the data area)"
            )
        frame = PyBytes_FromStringAndSize(self._data + pos + 4, n)
        tailp[0] = tail + rec
        return frame

    cdef inline void _consumed(self, uint64_t tail) noexcept:
        cdef tach_ring_header *hdr = self._hdr
        # Release: our copies out of the freed space are done before a producer may reuse it.
        tach_store_release_u64(&hdr.tail, tail)
        # Dekker with a producer waiting for space: tail store, fence, flag load.
        tach_fence_seq_cst()
        if tach_load_acquire_u32(&hdr.producer_waiting):
            tach_store_release_u32(&hdr.producer_waiting, 0)
            # Release: the flag clear is ordered before the bump (see _wait_for_space).
            tach_store_release_u32(&hdr.space_seq, hdr.space_seq + 1)
            tach_futex_wake(&hdr.space_seq, 0x7FFFFFFF)

    def pop(self) -> bytes | None:
        """Remove and return the oldest frame, or None if the ring is empty. Raises RingCorrupt
        if the shared mapping holds garbage."""
        cdef uint64_t head, tail
        self._check_open()
        self._check_magic()
        # Acquire pairs with the producer's release: the record's bytes are visible.
        head = tach_load_acquire_u64(&self._hdr.head)
        tail = tach_load_acquire_u64(&self._hdr.tail)
        if head == tail:
            return None
        frame = self._read_record(head, &tail)
        self._consumed(tail)
        return frame

    def pop_many(self, max_count: int = -1) -> list[bytes]:
        """Remove and return up to ``max_count`` frames (all available ones if negative), oldest
        first; an empty list if there are none. If garbage follows some valid frames, those
        frames are returned and the next call raises RingCorrupt."""
        cdef uint64_t head, tail
        cdef Py_ssize_t limit = max_count
        cdef Py_ssize_t count = 0
        cdef list frames = []
        self._check_open()
        self._check_magic()
        # Acquire pairs with the producer's release: every record below head is complete.
        head = tach_load_acquire_u64(&self._hdr.head)
        tail = tach_load_acquire_u64(&self._hdr.tail)
        while tail != head and count != limit:
            try:
                frames.append(self._read_record(head, &tail))
            except RingCorrupt:
                if count == 0:
                    raise
                break
            count += 1
        if count:
            self._consumed(tail)
        return frames

    cdef bint _available(self) noexcept:
        return tach_load_acquire_u64(&self._hdr.head) != tach_load_acquire_u64(&self._hdr.tail)

    cdef bint _arm(self) noexcept:
        """Set SLEEPING under a new generation; False (and disarmed) if frames are available."""
        cdef tach_ring_header *hdr = self._hdr
        cdef uint64_t gen = (tach_load_acquire_u64(&hdr.wake) >> 2) + 1
        tach_store_release_u64(&hdr.wake, gen << 2 | WAKE_SLEEPING)
        # Dekker with the producer: flag store, fence, head load (see the module docstring).
        tach_fence_seq_cst()
        if self._available():
            tach_store_release_u64(&hdr.wake, gen << 2)
            return False
        return True

    cdef void _disarm(self) noexcept:
        # Only the consumer writes the generation; clearing SLEEPING|WOKEN makes a late
        # producer CAS (expecting SLEEPING) fail.
        cdef uint64_t w = tach_load_acquire_u64(&self._hdr.wake)
        tach_store_release_u64(&self._hdr.wake, w & ~(WAKE_SLEEPING | WAKE_WOKEN))

    cdef void _drain_eventfd(self) noexcept:
        cdef uint64_t count
        # Non-blocking eventfd: EAGAIN when already drained; EINTR cannot happen then.
        read(self._efd, &count, 8)

    def arm(self) -> bool:
        """Tell producers the consumer is about to sleep on fileno(). Returns False if frames
        are already available: then do not sleep, pop them (and arm again before the next
        sleep). After True, the eventfd becomes readable once a frame is pushed."""
        self._check_open()
        return self._arm()

    def clear_wakeup(self) -> None:
        """Drain the eventfd after it became readable and mark the consumer awake, so that
        producers stop making wakeup syscalls until the next arm()."""
        self._check_open()
        self._drain_eventfd()
        self._disarm()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until frames are available or ``timeout`` seconds (None: forever) pass.
        Returns True if frames are available."""
        cdef pollfd pfd
        cdef int64_t deadline, left
        cdef timespec ts
        cdef timespec *tsp
        cdef int rc, err
        self._check_open()
        deadline = _deadline_ns(timeout)
        if self._available():
            return True
        Py_INCREF(self)
        self._busy += 1
        try:
            while True:
                if not self._arm():
                    return True
                if deadline >= 0:
                    left = deadline - _now_ns()
                    if left <= 0:
                        return self._available()
                    _ns_to_timespec(left, &ts)
                    tsp = &ts
                else:
                    tsp = NULL
                pfd.fd = self._efd
                pfd.events = POLLIN
                pfd.revents = 0
                with nogil:
                    rc = ppoll(&pfd, 1, tsp, NULL)
                    err = errno
                if rc < 0:
                    if err != EINTR:
                        raise_errnum(err, f"ring {self._name!r}: ppoll")
                    PyErr_CheckSignals()
                elif rc > 0:
                    self._drain_eventfd()
                    self._disarm()
                    # A count left over from an earlier timed-out wait can wake us with nothing
                    # new: check, and sleep again if so.
                    if self._available():
                        return True
        finally:
            self._disarm()
            self._busy -= 1
            Py_DECREF(self)


cdef int _check_eventfd(int fd, int orig_fd) except -1:
    """Refuse an fd that is not an eventfd: the consumer would poll something else."""
    import os

    try:
        target = os.readlink(f"/proc/self/fd/{fd}")
    except OSError as e:
        raise ValueError(f"attach: cannot inspect fd {orig_fd}: {e}") from None
    if target != "anon_inode:[eventfd]":
        raise ValueError(f"attach: fd {orig_fd} is not an eventfd (it is {target!r})")
    return 0
