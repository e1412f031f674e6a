"""tach._native.ring: the shared-memory SPSC ring of frames.

Cross-process tests fork real producers (or exec a fresh interpreter) and check every frame's
sequence number and content on the consumer side. Nothing sleeps to let a race settle: where a
test needs the other process to reach a state (blocked on a futex), it polls for that state with a
deadline. Every forked child is reaped (the autouse fixture in conftest.py checks it).
"""

from __future__ import annotations

import array
import contextlib
import fcntl
import gc
import os
import pickle
import selectors
import signal
import struct
import subprocess
import sys
import textwrap
import threading
import time
import traceback

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tach._native.ring import _LAYOUT, LAYOUT_VERSION, FrameTooLarge, Ring, RingCorrupt

PAGE = os.sysconf("SC_PAGE_SIZE")
DATA = PAGE  # the data area starts one page into the memfd
SEQ = struct.Struct("<Q")
PATTERN = bytes(range(256)) * 16


# --- helpers -----------------------------------------------------------------------------------


def make_frame(seq: int, big_every: int = 997, big: int = 1500) -> bytes:
    """Frame number ``seq``: its sequence number, then a seq-dependent slice of PATTERN whose
    length varies (0..96 bytes, and ``big`` bytes every ``big_every`` frames, forcing wraps)."""
    length = big if seq % big_every == big_every - 1 else (seq * 7919) % 97
    start = seq % 251
    return SEQ.pack(seq) + PATTERN[start : start + length]


def check_frame(frame: bytes, expected_seq: int, **kw: int) -> None:
    if frame != make_frame(expected_seq, **kw):
        got = SEQ.unpack_from(frame)[0] if len(frame) >= 8 else None
        raise AssertionError(
            f"frame {expected_seq} wrong: got seq {got}, {len(frame)} bytes: {frame[:40]!r}..."
        )


#: Forked children not reaped yet; the fixture below kills and reaps them if a test fails early.
_unreaped: set[int] = set()


@pytest.fixture(autouse=True)
def _kill_leftover_children():
    yield
    while _unreaped:
        pid = _unreaped.pop()
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)


def fork_child(body) -> int:
    """Fork; the child runs ``body()`` and exits 0, or prints the traceback and exits 1."""
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            body()
            code = 0
        except BaseException:
            traceback.print_exc()
        finally:
            os._exit(code)
    _unreaped.add(pid)
    return pid


def reap(pid: int, timeout: float = 60.0) -> int:
    """Wait for ``pid`` (killing it after ``timeout``) and return its wait status."""
    pidfd = os.pidfd_open(pid)
    try:
        with selectors.DefaultSelector() as sel:
            sel.register(pidfd, selectors.EVENT_READ)
            if not sel.select(timeout):
                raise AssertionError(f"child {pid} still running after {timeout}s")
    finally:
        os.close(pidfd)
    _unreaped.discard(pid)
    return os.waitpid(pid, 0)[1]


def reap_ok(pid: int, timeout: float = 60.0) -> None:
    status = reap(pid, timeout)
    assert os.waitstatus_to_exitcode(status) == 0, f"child failed (wait status {status})"


def wait_until(predicate, what: str, timeout: float = 10.0) -> None:
    """Spin (yielding the CPU) until ``predicate()`` holds; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        os.sched_yield()


def sleeps_in(kernel_function: str, pid: int, tid: int | None = None) -> bool:
    """True once the process (or thread) sleeps in the kernel in ``kernel_function`` (from its
    wchan); where the kernel hides wchan, in any interruptible sleep."""
    task = f"/proc/{pid}/task/{tid}" if tid else f"/proc/{pid}"
    try:
        with open(f"{task}/wchan") as f:
            where = f.read()
        with open(f"{task}/stat") as f:
            state = f.read().rpartition(")")[2].split()[0]
    except FileNotFoundError:
        return False
    if where in ("", "0"):
        return state == "S"
    return kernel_function in where


def poke(ring: Ring, offset: int, value: int, fmt: str = "<Q") -> None:
    """Scribble on the ring's memfd as another process could."""
    os.pwrite(ring.fds()[0], struct.pack(fmt, value), offset)


def peek(ring: Ring, offset: int, fmt: str = "<Q") -> int:
    return struct.unpack(fmt, os.pread(ring.fds()[0], struct.calcsize(fmt), offset))[0]


def fill(ring: Ring, frame: bytes) -> int:
    """try_push ``frame`` until the ring is full; return how many went in."""
    count = 0
    while ring.try_push(frame):
        count += 1
    return count


def consume(ring: Ring, count: int, first_seq: int = 0, **kw: int) -> int:
    """Pop at least ``count`` frames (all of the last batch), checking each against
    make_frame(first_seq...): no loss, no duplicate, no reordering, intact content. Returns the
    sequence number of the next frame expected."""
    expected = first_seq
    while expected < first_seq + count:
        frames = ring.pop_many()
        if not frames:
            assert ring.wait(timeout=30), f"no frame {expected} within 30s (lost wakeup?)"
            continue
        for frame in frames:
            check_frame(frame, expected, **kw)
            expected += 1
    return expected


# --- single process: framing -------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, 3, 4, 5, 7, 8, 9, 100, 4092, 100_000, (1 << 19) - 4])
def test_round_trip_sizes(size):
    with Ring(1 << 20) as ring:
        frame = bytes(PATTERN[i % 256] for i in range(size)) if size < 5000 else os.urandom(size)
        ring.push(frame)
        assert ring.pending_bytes == (4 + size + 7) // 8 * 8
        assert ring.pop() == frame
        assert ring.pending_bytes == 0
        assert ring.pop() is None


def test_pop_on_empty_ring():
    with Ring(PAGE) as ring:
        assert ring.pop() is None
        assert ring.pop_many() == []
        ring.push(b"")
        assert ring.pop() == b""  # an empty frame is a frame, not "nothing"
        assert ring.pop() is None


def test_fifo_order_and_pop_many_limits():
    with Ring(1 << 16) as ring:
        for i in range(100):
            ring.push(make_frame(i))
        assert ring.pop() == make_frame(0)
        assert ring.pop_many(0) == []
        assert ring.pop_many(3) == [make_frame(i) for i in (1, 2, 3)]
        assert ring.pop_many() == [make_frame(i) for i in range(4, 100)]
        assert ring.pop_many() == []


def test_wraparound_writes_a_pad_marker():
    with Ring(PAGE) as ring:
        cap = ring.capacity
        # Three records of 1024 bytes put head at 3/4 of the data area...
        for _ in range(3):
            ring.push(b"a" * (cap // 4 - 4))
        assert len(ring.pop_many()) == 3
        # ... so a 1504-byte record cannot fit before the end: pad (cap/4) + record.
        frame = os.urandom(1500)
        ring.push(frame)
        assert ring.pending_bytes == cap // 4 + 1504
        assert peek(ring, DATA + 3 * cap // 4, "<I") == 0xFFFFFFFF
        assert peek(ring, DATA, "<I") == 1500
        assert ring.pop() == frame
        assert ring.pending_bytes == 0


def test_interleaved_push_pop_against_a_model(rand):
    from collections import deque

    model: deque[bytes] = deque()
    with Ring(PAGE) as ring:
        for step in range(20_000):
            if rand.random() < 0.55:
                frame = PATTERN[: rand.choice([0, 1, 7, 8, 60, 500, ring.max_frame])]
                frame = SEQ.pack(step) + frame[8:] if len(frame) >= 8 else frame
                if ring.try_push(frame):
                    model.append(frame)
                else:
                    assert ring.pending_bytes + len(frame) + 4 > ring.capacity // 2, rand
            elif rand.random() < 0.5:
                assert ring.pop() == (model.popleft() if model else None), rand
            else:
                n = rand.randrange(-1, 5)
                want = [model.popleft() for _ in range(len(model) if n < 0 else min(n, len(model)))]
                assert ring.pop_many(n) == want, rand
        assert ring.pop_many() == list(model)


def test_max_frame_fits_an_empty_ring_at_every_position():
    with Ring(PAGE) as ring:
        big = os.urandom(ring.max_frame)
        assert ring.max_frame == ring.capacity // 2 - 4
        for offset in range(0, ring.capacity, 8):
            assert ring.try_push(big), f"max_frame refused with head at offset {offset}"
            assert ring.pop() == big
            # advance head by one 8-byte record for the next position
            ring.push(b"")
            assert ring.pop() == b""


def test_bytes_like_frames():
    with Ring(PAGE) as ring:
        ring.push(bytearray(b"bytearray"))
        ring.push(memoryview(b"xxmemoryviewxx")[2:-2])
        ring.push(array.array("I", [1, 2]))
        assert ring.try_push(bytearray(b"try"))
        assert ring.pop_many() == [b"bytearray", b"memoryview", array.array("I", [1, 2]).tobytes(),
                                   b"try"]
        with pytest.raises(TypeError):
            ring.push("text is not bytes")
        with pytest.raises((TypeError, BufferError)):
            ring.push(memoryview(b"abcdef")[::2])  # not contiguous
        assert ring.pending_bytes == 0


def test_frame_too_large_is_refused_not_waited_for():
    with Ring(PAGE, name="small") as ring:
        ring.push(b"x" * ring.max_frame)
        too_big = b"y" * (ring.max_frame + 1)
        for call in (ring.push, ring.try_push, lambda f: ring.push(f, timeout=None)):
            with pytest.raises(FrameTooLarge) as info:
                call(too_big)
            assert isinstance(info.value, ValueError)
            message = str(info.value)
            assert str(ring.max_frame + 1) in message and str(ring.max_frame) in message
            assert "small" in message
        assert ring.pop_many() == [b"x" * ring.max_frame]


@pytest.mark.parametrize(
    ("capacity", "exc"),
    [(PAGE // 2, ValueError), (PAGE * 3, ValueError), (1 << 32, ValueError), (0, ValueError),
     (-PAGE, ValueError), (True, TypeError), (4096.0, TypeError), ("4096", TypeError)],
)
def test_bad_capacity(capacity, exc):
    with pytest.raises(exc, match="capacity"):
        Ring(capacity)


@pytest.mark.parametrize("name", ["nul\0byte", "x" * 64, "é" * 32])
def test_bad_name(name):
    with pytest.raises(ValueError, match="name"):
        Ring(PAGE, name=name)


def test_properties_and_repr():
    ring = Ring(1 << 16, name="props")
    assert (ring.capacity, ring.max_frame, ring.pending_bytes) == (1 << 16, (1 << 15) - 4, 0)
    assert ring.name == "props" and not ring.closed
    ring.push(b"abc")
    assert ring.pending_bytes == 8
    assert repr(ring) == "<Ring 'props' capacity=65536 pending_bytes=8>"
    ring.close()
    assert ring.closed and repr(ring) == "<Ring 'props' closed>"
    assert peek_version_of_new_ring() == LAYOUT_VERSION


def peek_version_of_new_ring() -> int:
    with Ring(PAGE) as ring:
        return peek(ring, _LAYOUT["version"], "<I")


def test_header_layout_is_the_documented_one():
    with Ring(PAGE, name="layout") as ring:
        memfd = ring.fds()[0]
        assert os.fstat(memfd).st_size == PAGE + PAGE  # the data area starts on a page
        assert os.pread(memfd, 8, _LAYOUT["magic"]) == b"TACHRING"
        assert peek(ring, _LAYOUT["version"], "<I") == LAYOUT_VERSION
        assert peek(ring, _LAYOUT["header_size"], "<I") == PAGE
        assert peek(ring, _LAYOUT["capacity"]) == PAGE
        assert peek(ring, _LAYOUT["max_frame"]) == ring.max_frame
        assert os.pread(memfd, 64, _LAYOUT["name"]).rstrip(b"\0") == b"layout"
        # head, tail, the wake word and the waiting flag each own a 64-byte cache line
        lines = [_LAYOUT[k] // 64 for k in ("head", "tail", "wake", "producer_waiting")]
        assert len(set(lines)) == 4 and lines[0] > _LAYOUT["max_frame"] // 64
        assert all(_LAYOUT[k] % 64 == 0 for k in ("head", "tail", "wake", "producer_waiting"))
        # monotonically increasing byte counters: push moves only head, pop only tail
        for i in range(1, 2001):
            ring.push(b"12345")  # a 16-byte record ([u32 length][5 bytes] padded to 8)
            head, tail = peek(ring, _LAYOUT["head"]), peek(ring, _LAYOUT["tail"])
            assert (head, tail) == (16 * i, 16 * (i - 1))
            assert peek(ring, DATA + tail % ring.capacity, "<I") == 5
            ring.pop()
            assert peek(ring, _LAYOUT["tail"]) == 16 * i
        assert peek(ring, _LAYOUT["head"]) > ring.capacity  # counters, not offsets
        # wake word: generation << 2 | WOKEN << 1 | SLEEPING
        assert ring.arm()
        gen = peek(ring, _LAYOUT["wake"]) >> 2
        assert peek(ring, _LAYOUT["wake"]) == gen << 2 | 1
        ring.push(b"x")  # writes the eventfd, then marks this sleep WOKEN
        assert peek(ring, _LAYOUT["wake"]) == gen << 2 | 3
        ring.clear_wakeup()
        assert peek(ring, _LAYOUT["wake"]) == gen << 2
        assert ring.arm() is False and peek(ring, _LAYOUT["wake"]) == (gen + 1) << 2
        assert peek(ring, _LAYOUT["producer_waiting"], "<I") == 0


def test_stub_matches_the_module():
    import ast
    import pathlib

    import tach._native.ring as module

    stub = pathlib.Path(module.__file__).with_name("ring.pyi")
    tree = ast.parse(stub.read_text())
    ring_stub = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Ring")
    stubbed = {n.name for n in ring_stub.body if isinstance(n, ast.FunctionDef)}
    runtime = {n for n in vars(Ring) if not n.startswith("__") or n in ("__init__", "__enter__",
                                                                         "__exit__")}
    assert stubbed == runtime - {"__reduce__"}
    top = {n.name for n in tree.body if isinstance(n, ast.ClassDef)} | {
        n.target.id for n in tree.body if isinstance(n, ast.AnnAssign)
    }
    assert top == {n for n in vars(module) if not n.startswith("__") and n != "Ring"} | {"Ring"}


def test_closed_ring_refuses_every_operation():
    ring = Ring(PAGE)
    with ring as entered:
        assert entered is ring
    assert ring.closed
    ring.close()  # idempotent
    calls = [
        lambda: ring.push(b"x"), lambda: ring.try_push(b"x"), ring.pop, ring.pop_many,
        ring.wait, ring.arm, ring.clear_wakeup, ring.fileno, ring.fds,
        lambda: ring.capacity, lambda: ring.max_frame, lambda: ring.pending_bytes,
        lambda: ring._push_partial(b"x", 1), ring.__enter__,
    ]
    for call in calls:
        with pytest.raises(ValueError, match="closed"):
            call()


def test_ring_cannot_be_pickled():
    with Ring(PAGE) as ring, pytest.raises(TypeError, match="fds"):
        pickle.dumps(ring)


# --- resources ---------------------------------------------------------------------------------


def _ring_fds_and_maps(name: str) -> tuple[int, int]:
    with open("/proc/self/maps") as f:
        maps = sum(f"memfd:{name}" in line for line in f)
    return len(os.listdir("/proc/self/fd")), maps


def test_no_fd_or_mapping_leaks_over_many_rings():
    before = _ring_fds_and_maps("leakcheck")
    for _round in range(2):
        for _ in range(100):
            ring = Ring(PAGE, name="leakcheck")
            attached = Ring.attach(*ring.fds())
            attached.push(b"x")
            assert ring.pop() == b"x"
            attached.close()
            ring.close()
        for _ in range(100):  # dropped without close(): __dealloc__ releases everything
            ring = Ring(PAGE, name="leakcheck")
            Ring.attach(*ring.fds())
            del ring
        gc.collect()
        for _ in range(50):  # failed attaches release what they had taken
            with Ring(PAGE, name="leakcheck") as ring:
                r, w = os.pipe()
                with pytest.raises(ValueError):
                    Ring.attach(ring.fds()[0], r)
                os.close(r)
                os.close(w)
        assert _ring_fds_and_maps("leakcheck") == before


def test_fds_are_cloexec_and_the_eventfd_nonblocking():
    with Ring(PAGE) as ring:
        memfd, efd = ring.fds()
        assert efd == ring.fileno()
        assert not os.get_inheritable(memfd) and not os.get_inheritable(efd)
        assert not os.get_blocking(efd)
        assert os.readlink(f"/proc/self/fd/{memfd}").startswith("/memfd:tach-ring")
        assert os.readlink(f"/proc/self/fd/{efd}") == "anon_inode:[eventfd]"
        with Ring.attach(memfd, efd) as attached:
            for fd in attached.fds():
                assert fd > 2 and not os.get_inheritable(fd)
                assert fd not in (memfd, efd)


def test_memfd_is_sealed_against_resizing():
    with Ring(PAGE) as ring:
        memfd = ring.fds()[0]
        seals = fcntl.fcntl(memfd, fcntl.F_GET_SEALS)
        assert seals & fcntl.F_SEAL_SHRINK and seals & fcntl.F_SEAL_GROW
        assert seals & fcntl.F_SEAL_SEAL
        with pytest.raises(PermissionError):
            os.ftruncate(memfd, PAGE)


# --- attach ------------------------------------------------------------------------------------


def test_attach_in_the_same_process_and_fd_ownership():
    ring = Ring(1 << 16, name="shared")
    memfd, efd = (os.dup(fd) for fd in ring.fds())
    attached = Ring.attach(memfd, efd)
    os.close(memfd)  # attach() took copies: the caller's fds are its own to close
    os.close(efd)
    assert (attached.name, attached.capacity) == ("shared", 1 << 16)
    attached.push(b"one")
    ring.push(b"two")
    assert ring.pop_many() == [b"one", b"two"]
    ring.close()  # the mapping outlives the creator's handle
    attached.push(b"three")
    assert attached.pop() == b"three"
    attached.close()


def test_attach_from_an_exec_d_interpreter():
    code = textwrap.dedent(
        """
        import sys
        from tach._native.ring import Ring

        with Ring.attach(int(sys.argv[1]), int(sys.argv[2])) as ring:
            assert ring.pop() == b"from parent", "parent's frame missing"
            assert ring.name == "exec-test"
            for i in range(1000):
                ring.push(i.to_bytes(4, "little") * (i % 50))
        """
    )
    with Ring(1 << 18, name="exec-test") as ring:
        ring.push(b"from parent")
        memfd, efd = ring.fds()
        subprocess.run(
            [sys.executable, "-c", code, str(memfd), str(efd)],
            pass_fds=(memfd, efd), check=True, timeout=120,
        )
        assert ring.pop_many() == [i.to_bytes(4, "little") * (i % 50) for i in range(1000)]


def test_attach_refuses_closed_fds():
    with Ring(PAGE) as ring:
        memfd, efd = ring.fds()
        spare = os.dup(efd)
        os.close(spare)
        with pytest.raises(OSError) as info:
            Ring.attach(spare, efd)
        assert info.value.errno == 9 and "memfd" in str(info.value)
        with pytest.raises(OSError) as info:
            Ring.attach(memfd, spare)
        assert info.value.errno == 9 and "eventfd" in str(info.value)


def test_attach_refuses_fds_that_are_not_a_ring(tmp_path):
    with Ring(PAGE) as ring:
        memfd, efd = ring.fds()
        r, w = os.pipe()
        try:
            with pytest.raises(ValueError, match="not a memfd"):
                Ring.attach(r, efd)
            with pytest.raises(ValueError, match="not an eventfd"):
                Ring.attach(memfd, r)
            with pytest.raises(ValueError, match="not an eventfd"):
                Ring.attach(memfd, memfd)
        finally:
            os.close(r)
            os.close(w)
        header = os.pread(memfd, PAGE, 0)
        # A plain file with a perfect copy of the ring is still not a (sealed) memfd.
        path = tmp_path / "ring"
        path.write_bytes(header + bytes(ring.capacity))
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
        try:
            with pytest.raises(ValueError, match="not a memfd"):
                Ring.attach(fd, efd)
        finally:
            os.close(fd)


@pytest.mark.parametrize(
    ("size", "patch", "match"),
    [
        (100, None, "too small"),
        (PAGE + PAGE, {"magic": 0}, "bad magic"),
        (PAGE + PAGE, {}, None),  # sanity: an exact copy is refused only for lack of seals
        (PAGE + 2 * PAGE, {}, "should be"),  # right header, wrong size
        (PAGE + PAGE, {"version": (LAYOUT_VERSION + 1, "<I")}, "version"),
        (PAGE + PAGE, {"capacity": PAGE + 8}, "invalid ring header"),
        (PAGE + PAGE, {"header_size": (PAGE * 2, "<I")}, "invalid ring header"),
        (PAGE + PAGE, {"max_frame": PAGE}, "invalid ring header"),
    ],
)
def test_attach_validates_the_header(size, patch, match):
    with Ring(PAGE) as ring:
        memfd, efd = ring.fds()
        header = os.pread(memfd, PAGE, 0)
        fake = os.memfd_create("fake", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
        try:
            os.ftruncate(fake, size)
            if patch is not None:
                os.pwrite(fake, header[:size], 0)
                for field, value in patch.items():
                    value, fmt = value if isinstance(value, tuple) else (value, "<Q")
                    os.pwrite(fake, struct.pack(fmt, value), _LAYOUT[field])
            with pytest.raises(ValueError, match=match or "not sealed"):
                Ring.attach(fake, efd)
            # Once sealed like a real ring's, an exact copy is accepted.
            if patch == {} and size == PAGE + PAGE:
                fcntl.fcntl(fake, fcntl.F_ADD_SEALS, fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW)
                with Ring.attach(fake, efd) as copy:
                    assert copy.capacity == PAGE and copy.pop() is None
        finally:
            os.close(fake)


def test_attach_refuses_a_scribbled_magic():
    with Ring(PAGE) as ring:
        poke(ring, _LAYOUT["magic"], 0x1234)
        with pytest.raises(ValueError, match="does not hold a tach ring"):
            Ring.attach(*ring.fds())


# --- corruption --------------------------------------------------------------------------------


def _ring_with_frames(n: int = 3) -> Ring:
    ring = Ring(PAGE, name="victim")
    for i in range(n):
        ring.push(make_frame(i))
    return ring


@pytest.mark.parametrize(
    ("scribble", "match"),
    [
        (lambda r: poke(r, _LAYOUT["head"], r.capacity + 8), "inconsistent"),
        (lambda r: poke(r, _LAYOUT["head"], peek(r, _LAYOUT["head"]) + 3), "inconsistent"),
        (lambda r: poke(r, _LAYOUT["tail"], peek(r, _LAYOUT["head"]) + 8), "inconsistent"),
        (lambda r: poke(r, _LAYOUT["tail"], 4), "inconsistent"),
        (lambda r: poke(r, DATA, 0x7FFFFFFF, "<I"), "more than max_frame"),
        (lambda r: poke(r, DATA, 0xFFFFFFFE, "<I"), "more than max_frame"),
        (lambda r: poke(r, DATA, r.max_frame, "<I"), "only .* bytes are published"),
        (lambda r: poke(r, DATA, 0xFFFFFFFF, "<I"), "pad marker"),
        (lambda r: poke(r, _LAYOUT["magic"], 0), "magic"),
    ],
)
def test_scribbled_mapping_raises_ring_corrupt(scribble, match):
    with _ring_with_frames() as ring:
        scribble(ring)
        with pytest.raises(RingCorrupt, match=match):
            ring.pop_many()
        with pytest.raises(RingCorrupt, match=match):
            ring.pop()  # stays corrupt; never a crash, hang or huge allocation


def test_pop_many_returns_the_valid_prefix_before_garbage():
    with _ring_with_frames(3) as ring:
        second = DATA + (4 + len(make_frame(0)) + 7) // 8 * 8
        poke(ring, second, 0x7FFFFFFF, "<I")
        assert ring.pop_many() == [make_frame(0)]
        with pytest.raises(RingCorrupt, match="claims 2147483647 bytes"):
            ring.pop_many()


def test_producer_refuses_to_write_through_a_scribbled_head():
    with _ring_with_frames() as ring:
        poke(ring, _LAYOUT["head"], 10 * ring.capacity)
        with pytest.raises(RingCorrupt, match="inconsistent"):
            ring.push(b"x")
        with pytest.raises(RingCorrupt, match="inconsistent"):
            ring.push(b"x" * 1000, timeout=1)


scribbles = st.lists(
    st.tuples(
        st.one_of(
            st.sampled_from([_LAYOUT[k] for k in ("head", "tail", "wake", "producer_waiting",
                                                  "space_seq")]),
            st.integers(DATA, DATA + PAGE - 8).map(lambda x: x & ~3),
        ),
        st.one_of(
            st.integers(0, 2**64 - 1).map(lambda v: struct.pack("<Q", v)),
            st.integers(0, 2**32 - 1).map(lambda v: struct.pack("<I", v)),
        ),
    ),
    min_size=1,
    max_size=6,
)


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(scribbles)
def test_random_scribbles_never_crash_or_hang(writes):
    with _ring_with_frames(20) as ring:
        for offset, data in writes:
            os.pwrite(ring.fds()[0], data, offset)
        for _ in range(30):  # every call ends; the ring yields frames or says it is corrupt
            try:
                frames = ring.pop_many()
            except RingCorrupt:
                continue
            assert all(len(f) <= ring.max_frame for f in frames)
        for call in (lambda: ring.try_push(b"z" * 100), lambda: ring.wait(0), ring.arm,
                     ring.clear_wakeup):
            with contextlib.suppress(RingCorrupt):
                call()


# --- kill safety -------------------------------------------------------------------------------


# (frame length, wraps?) -> the record stream is [pad marker if wrapping][u32 length][payload]
@pytest.mark.parametrize("wrap", [False, True], ids=["inline", "wrapping"])
@pytest.mark.parametrize("nbytes", [0, 1, 2, 3, 4, 5, 7, 8, 9, 60, 103, 104, 107, 108, 10_000])
def test_producer_killed_at_an_exact_point(wrap, nbytes):
    with Ring(PAGE, name="killed") as ring:
        if wrap:  # put head 16 bytes before the end of the data area
            for _ in range(2):
                ring.push(b"w" * (ring.capacity // 2 - 12))
            assert len(ring.pop_many()) == 2
        partial = b"P" * 100  # a 104-byte record; 108 stream bytes when wrapping

        def killed_producer():
            assert ring._push_partial(partial, nbytes)
            os.kill(os.getpid(), signal.SIGKILL)

        status = reap(fork_child(killed_producer))
        assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
        assert ring.pop() is None and ring.pending_bytes == 0  # nothing was published

        def next_producer():
            ring.push(b"B" * 7)
            ring.push(make_frame(5))
            ring.push(b"C" * 300)

        reap_ok(fork_child(next_producer))
        assert ring.pop_many() == [b"B" * 7, make_frame(5), b"C" * 300]
        assert ring.pop() is None


def test_push_partial_left_garbage_is_overwritten_in_process():
    with Ring(PAGE) as ring:
        # A partial record that claims a huge length, then the next push over it.
        assert ring._push_partial(b"\xff" * 2000, 4 + 2000)
        assert ring.pop() is None
        ring.push(b"ok")
        assert ring.pop_many() == [b"ok"]
        # With no room, nothing is written at all.
        fill(ring, b"f" * 1000)
        assert not ring._push_partial(b"x" * 1000, 5)
        with pytest.raises(ValueError):
            ring._push_partial(b"x", -1)


def test_producer_sigkilled_mid_stream_leaves_the_ring_usable(rand):
    big = {"big_every": 7, "big": 2000}  # big frames: a kill lands mid-copy more often
    with Ring(1 << 14, name="midstream") as ring:
        seq = 0
        for round_ in range(5):

            def producer(first=seq):
                for i in range(first, first + 10**9):
                    ring.push(make_frame(i, **big))

            pid = fork_child(producer)
            # Take a random number of frames (the producer often fills the ring and blocks on
            # the futex meanwhile), then kill it wherever it is.
            seq = consume(ring, rand.randrange(1, 3000), seq, **big)
            os.kill(pid, signal.SIGKILL)
            status = reap(pid)
            assert os.WIFSIGNALED(status), (round_, rand)
            # Whatever it published before dying arrives intact, in order, exactly once.
            for frame in ring.pop_many():
                check_frame(frame, seq, **big)
                seq += 1
            assert ring.pop() is None
        # A new producer after all those kills: its frames arrive intact.
        first = seq
        pid = fork_child(lambda: [ring.push(make_frame(i)) for i in range(first, first + 20_000)])
        assert consume(ring, 20_000, first) == first + 20_000
        reap_ok(pid)
        assert ring.pop() is None


# --- two processes -----------------------------------------------------------------------------


@pytest.mark.parametrize("capacity", [PAGE, 1 << 20], ids=["one-page", "1MiB"])
def test_a_million_frames_between_two_processes(capacity):
    count = 10**6
    big = {"big": 1500}  # every 997th frame; fits max_frame of a one-page ring
    with Ring(capacity, name="million") as ring:

        def producer():
            for i in range(count):
                ring.push(make_frame(i, **big), timeout=60)

        pid = fork_child(producer)
        # checks no loss, no duplicate, no reordering and the content of every frame
        assert consume(ring, count, 0, **big) == count
        reap_ok(pid)
        assert ring.pop() is None and ring.pending_bytes == 0


def test_push_on_a_full_ring_times_out_without_a_consumer():
    with Ring(PAGE, name="nobody-reads") as ring:
        n = fill(ring, b"f" * 100)
        assert n == PAGE // 104
        for timeout in (0, 0.2):
            start = time.monotonic()
            with pytest.raises(TimeoutError) as info:
                ring.push(b"g" * 100, timeout=timeout)
            assert time.monotonic() - start >= timeout
            message = str(info.value)
            assert "nobody-reads" in message and "waiting for" in message
            assert "free space" in message
            assert not ring._producer_waiting  # no stale flag after giving up
        with pytest.raises(ValueError, match="timeout"):
            ring.push(b"g", timeout=-1)
        with pytest.raises(ValueError, match="timeout"):
            ring.push(b"g", timeout=float("nan"))
        assert ring.pop() == b"f" * 100
        ring.push(b"g" * 100, timeout=0)  # room again: no wait at all
        assert len(ring.pop_many()) == n


def test_a_producer_blocked_on_a_full_ring_is_woken_by_the_consumer():
    with Ring(PAGE, name="blocked") as ring:

        def producer():
            n = fill(ring, b"f" * 200)
            ring.push(b"L" * 200, timeout=60)  # blocks until the parent pops
            assert n == PAGE // 208

        pid = fork_child(producer)
        # The child is asleep in the kernel on the futex (not spinning) before we free space.
        wait_until(lambda: ring._producer_waiting and sleeps_in("futex", pid),
                   "the producer sleeps on the futex")
        assert ring.pop() == b"f" * 200
        reap_ok(pid, timeout=30)  # a lost wakeup would leave it blocked: reap() would fail
        frames = ring.pop_many()
        assert frames == [b"f" * 200] * (PAGE // 208 - 1) + [b"L" * 200]
        assert not ring._producer_waiting


def test_a_stale_producer_waiting_flag_costs_nothing():
    with Ring(PAGE) as ring:
        poke(ring, _LAYOUT["producer_waiting"], 1, "<I")  # a producer killed while waiting
        seq = peek(ring, _LAYOUT["space_seq"], "<I")
        ring.push(b"x")
        assert ring.pop() == b"x"
        assert not ring._producer_waiting
        assert peek(ring, _LAYOUT["space_seq"], "<I") == seq + 1


# --- waking the consumer -----------------------------------------------------------------------


def test_wait_returns_at_once_when_frames_are_pending():
    with Ring(PAGE) as ring:
        ring.push(b"x")
        assert ring.wait(timeout=0) and ring.wait(timeout=None) and ring.wait(60)
        assert not ring.arm()  # frames available: don't sleep
        ring.pop()
        with pytest.raises(ValueError, match="timeout"):
            ring.wait(-0.5)


def test_wait_times_out_on_an_empty_ring():
    with Ring(PAGE) as ring:
        assert not ring.wait(timeout=0)
        start = time.monotonic()
        assert not ring.wait(timeout=0.2)
        assert time.monotonic() - start >= 0.2


def test_one_eventfd_write_per_sleep_not_per_frame():
    with Ring(1 << 16) as ring:
        efd = ring.fileno()
        assert ring.arm()
        with selectors.DefaultSelector() as sel:
            sel.register(efd, selectors.EVENT_READ)
            assert sel.select(0) == []
            for _ in range(1000):
                ring.push(b"frame")
            assert sel.select(0) != []
        assert os.eventfd_read(efd) == 1  # one write for the whole burst
        ring.clear_wakeup()
        assert len(ring.pop_many()) == 1000
        for _ in range(1000):  # the consumer is awake: producers make no syscall at all
            ring.push(b"frame")
        with pytest.raises(BlockingIOError):
            os.eventfd_read(efd)
        ring.clear_wakeup()  # draining an empty eventfd is fine
        assert len(ring.pop_many()) == 1000


def test_notify_wakes_a_consumer_that_polls_without_arming():
    with Ring(1 << 16) as ring, selectors.DefaultSelector() as sel:
        sel.register(ring.fileno(), selectors.EVENT_READ)
        ring.push(b"routine")  # the consumer is awake (never armed): nobody is woken
        assert sel.select(0) == []
        reap_ok(fork_child(lambda: (ring.push(b"urgent"), ring.notify())))
        assert sel.select(timeout=30), "notify() did not wake the consumer"
        ring.clear_wakeup()
        assert sel.select(0) == []
        assert ring.pop_many() == [b"routine", b"urgent"]
        assert ring.arm()  # a notification the consumer has cleared leaves no stale wake-up
        assert sel.select(0) == []


def test_a_producer_killed_before_its_wakeup_write_does_not_strand_the_consumer():
    # Publish a frame the way push() does, but "die" before the eventfd write: the consumer
    # stays SLEEPING and not WOKEN, so the next producer's push must still wake it.
    with Ring(PAGE) as ring, selectors.DefaultSelector() as sel:
        sel.register(ring.fileno(), selectors.EVENT_READ)
        assert ring.arm()
        assert ring._push_partial(b"published by the dead", 4 + 21)
        poke(ring, _LAYOUT["head"], 32)  # the release store of head, then SIGKILL
        assert sel.select(0) == []  # nobody woke the consumer
        reap_ok(fork_child(lambda: ring.push(b"from the next producer")))
        assert sel.select(timeout=30), "the next producer did not wake the sleeping consumer"
        ring.clear_wakeup()
        assert ring.pop_many() == [b"published by the dead", b"from the next producer"]


def _voluntary_switches() -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("voluntary_ctxt"))


def _pong(ping: Ring, pong: Ring, rounds: int) -> None:
    switches = _voluntary_switches()
    for _ in range(rounds):
        assert ping.wait(timeout=30), "ping never came (lost wakeup?)"
        frame = ping.pop()
        assert frame is not None
        pong.push(frame, timeout=30)
    # The ping side really slept between rounds (ppoll on the eventfd), not only spun past.
    assert _voluntary_switches() - switches > rounds // 10


def test_ping_pong_with_wait_loses_no_wakeup():
    rounds = 10_000
    with Ring(PAGE, name="ping") as ping, Ring(PAGE, name="pong") as pong:
        pid = fork_child(lambda: _pong(ping, pong, rounds))
        for i in range(rounds):
            ping.push(SEQ.pack(i))
            assert pong.wait(timeout=30), f"round {i}: no pong within 30s (lost wakeup?)"
            assert pong.pop() == SEQ.pack(i)
        reap_ok(pid)


def test_ping_pong_with_a_selector_on_fileno_loses_no_wakeup():
    rounds = 10_000
    with Ring(PAGE, name="ping") as ping, Ring(PAGE, name="pong") as pong, \
            selectors.DefaultSelector() as sel:
        pid = fork_child(lambda: _pong(ping, pong, rounds))
        sel.register(pong.fileno(), selectors.EVENT_READ)
        sleeps = 0
        for i in range(rounds):
            ping.push(SEQ.pack(i))
            while (frame := pong.pop()) is None:
                if pong.arm():  # empty and armed: sleep until a producer writes the eventfd
                    assert sel.select(timeout=30), f"round {i}: lost wakeup"
                    pong.clear_wakeup()
                    sleeps += 1
            assert frame == SEQ.pack(i)
        reap_ok(pid)
        assert sleeps > 0  # the sleeping path was exercised, not only the fast path


# --- signals and threads -----------------------------------------------------------------------


class Interrupted(Exception):
    pass


def _raise_interrupted(signum, frame):
    raise Interrupted


@pytest.mark.parametrize("blocking_call", ["wait", "push"])
def test_a_signal_handler_exception_interrupts_a_blocking_call(blocking_call):
    with Ring(PAGE) as ring:
        if blocking_call == "push":
            fill(ring, b"f" * 100)
            call = lambda: ring.push(b"g" * 100, timeout=30)  # noqa: E731
        else:
            call = lambda: ring.wait(timeout=30)  # noqa: E731
        old = signal.signal(signal.SIGALRM, _raise_interrupted)
        try:
            signal.setitimer(signal.ITIMER_REAL, 0.05)
            start = time.monotonic()
            with pytest.raises(Interrupted):
                call()
            assert time.monotonic() - start < 10
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, old)
        assert not ring._producer_waiting
        ring.close()  # not "in use by a blocking call" any more


@pytest.mark.parametrize("blocking_call", ["wait", "push"])
def test_blocking_calls_resume_after_eintr_and_keep_their_deadline(blocking_call):
    hits = []
    with Ring(PAGE) as ring:
        if blocking_call == "push":
            fill(ring, b"f" * 100)
        old = signal.signal(signal.SIGALRM, lambda signum, frame: hits.append(signum))
        try:
            signal.setitimer(signal.ITIMER_REAL, 0.02, 0.02)
            start = time.monotonic()
            if blocking_call == "push":
                with pytest.raises(TimeoutError):
                    ring.push(b"g" * 100, timeout=0.3)
            else:
                assert ring.wait(timeout=0.3) is False
            elapsed = time.monotonic() - start
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, old)
        assert len(hits) >= 3 and 0.3 <= elapsed < 5


def test_close_is_refused_while_another_thread_blocks_on_the_ring():
    ring = Ring(PAGE)
    results = []
    tids = []

    def consumer():
        tids.append(threading.get_native_id())
        results.append(ring.wait(timeout=30))

    thread = threading.Thread(target=consumer)
    thread.start()
    try:
        wait_until(lambda: tids and sleeps_in("poll", os.getpid(), tids[0]),
                   "the consumer thread sleeps in ppoll")
        with pytest.raises(RuntimeError, match="cannot close"):
            ring.close()
        ring.push(b"wake up")  # the GIL was released: this thread runs while the other waits
    finally:
        thread.join(60)
    assert results == [True]
    assert ring.pop() == b"wake up"
    ring.close()
