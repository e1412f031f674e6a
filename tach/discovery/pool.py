"""Forked workers for cold discovery: run a function in a child process, get its bytes back.

Parsing a large suite is CPU-bound pure Python, so threads do not help; a process that
inherits everything discovery has set up so far (configuration, the walk, the conftests, the
loaded cache) by ``fork`` can take a share of the files at once, with no start-up cost beyond
the fork. The work is cut into numbered shares that every process, the parent included,
takes from a :class:`Shares` queue until none is left, so that a process the machine's other
work slows down takes fewer. A worker sends its result as a list of byte strings (frames)
through a pipe and exits with ``os._exit`` (no ``atexit`` handlers, no flushing of inherited
stdio buffers).

The frames are written one after the other behind their lengths, and the parent reads them
into one buffer of the announced size and hands them out as views of it: a result of a few
megabytes is never joined nor sliced into copies, because fresh memory costs a page fault
per 4 KiB touched (about 2 ms a megabyte on these machines), on both sides of the pipe.

Robustness: the caller validates what it reads (a worker that died mid-way leaves a truncated
payload that fails to decode) and redoes the shares it took, so a failed worker costs time,
never results. :func:`Job.close` kills and reaps a worker that is still running, and every
pipe end is closed on every path, so no process or file descriptor outlives the call.

Workers are used only where ``fork`` is safe: on POSIX, and while the process runs a single
Python thread (a fork copies locks held by other threads).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import warnings
from collections.abc import Callable, Iterator, Sequence

#: environment variable: how many processes cold discovery may use (1: no workers).
JOBS_ENV = "TACH_DISCOVERY_JOBS"


def available_jobs() -> int:
    """Processes discovery may use: ``TACH_DISCOVERY_JOBS``, else this one plus one for each
    other CPU it may run on that has been idle lately; 1 where forking is not possible.

    A worker on a CPU that other work keeps busy only takes turns with that work and costs
    more than it brings (its share must be sent back, and merged), so workers are started only
    for idle CPUs. "Lately" is the time since this module was imported (start-up and the walk,
    tens of milliseconds), measured from the kernel's idle time in ``/proc/stat``: neither a
    single look at the runnable tasks (other work comes and goes by the millisecond) nor the
    load average (a minute long, so it still counts work that has just ended) says it.
    """
    if not hasattr(os, "fork") or sys.platform == "win32":
        return 1
    env = os.environ.get(JOBS_ENV, "").strip()
    if env:
        try:
            return max(1, int(env))
        except ValueError:
            pass
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    idle = _STARTED.idle_cpus(_cpu_times())
    if idle is None:  # too short a time to tell, or no /proc/stat: look at this instant
        idle = cpus - _running_tasks()
    # this process is busy throughout, so whatever is idle is another CPU
    return max(1, min(cpus, 1 + int(idle + 0.5)))


class _CpuTimes:
    """Idle and total time of all CPUs (``/proc/stat``, in clock ticks), and the CPU count."""

    def __init__(self, idle: int, total: int, cpus: int) -> None:
        self.idle, self.total, self.cpus = idle, total, cpus

    def idle_cpus(self, now: _CpuTimes | None) -> float | None:
        """How many CPUs were idle on average from this reading to ``now``; None when the
        interval is too short to say (under 3 ticks a CPU)."""
        if now is None or self.cpus <= 0:
            return None
        total = now.total - self.total
        if total < 3 * self.cpus:
            return None
        return self.cpus * max(0, now.idle - self.idle) / total


def _cpu_times() -> _CpuTimes | None:
    """The machine's CPU times now; None without ``/proc/stat``."""
    try:
        with open("/proc/stat", "rb") as f:
            lines = f.read(65536).splitlines()
        times = [int(x) for x in lines[0].split()[1:]]
        cpus = sum(1 for line in lines[1:] if line.startswith(b"cpu"))
        # user nice system idle iowait irq softirq steal (guest time is already in user)
        return _CpuTimes(times[3] + times[4], sum(times[:8]), cpus)
    except (OSError, ValueError, IndexError):
        return None


#: the reading :func:`available_jobs` measures from
_STARTED = _cpu_times() or _CpuTimes(0, 0, 0)


def _running_tasks() -> int:
    """Runnable tasks on the machine now, this process included (1 when unknown)."""
    try:
        with open("/proc/loadavg", "rb") as f:
            return max(1, int(f.read().split()[3].partition(b"/")[0]))
    except (OSError, ValueError, IndexError):
        return 1


def fork_safe() -> bool:
    """Whether this process may fork workers now (single-threaded, POSIX)."""
    return hasattr(os, "fork") and threading.active_count() == 1


class Job:
    """A forked worker computing a list of byte strings (see :func:`start`)."""

    def __init__(self, pid: int, fd: int) -> None:
        self.pid = pid
        self.fd: int | None = fd
        self.done = False

    def result(self) -> list[memoryview] | None:
        """Read the frames the worker wrote and reap it; None if it failed (it exited with an
        error, or what it wrote is not whole)."""
        frames = self._read()
        if frames is None:
            self.close()  # a worker still writing is killed, not waited for
            return None
        status = self._reap(block=True)  # it has closed its end of the pipe: it is ending
        self.close()
        return frames if status == 0 else None

    def _read(self) -> list[memoryview] | None:
        try:
            assert self.fd is not None
            head = _read_exactly(self.fd, memoryview(bytearray(8)))
            if head is None:
                return None
            total = int.from_bytes(head, "big")
            if total > _MOST_BYTES:
                return None
            data = _read_exactly(self.fd, memoryview(bytearray(total)))
            if data is None or os.read(self.fd, 1):  # short, or more than announced
                return None
        except (OSError, MemoryError):
            return None
        return split_frames(data)

    def _reap(self, *, block: bool) -> int | None:
        if self.done:
            return None
        try:
            pid, status = os.waitpid(self.pid, 0 if block else os.WNOHANG)
        except ChildProcessError:
            # reaped elsewhere (a SIGCHLD handler): the payload alone tells success
            self.done = True
            return 0
        if pid == 0:
            return None
        self.done = True
        return os.waitstatus_to_exitcode(status)

    def close(self) -> None:
        """Close the pipe; kill and reap the worker if it is still running."""
        if self.fd is not None:
            with contextlib.suppress(OSError):
                os.close(self.fd)
            self.fd = None
        if self.done:
            return
        if self._reap(block=False) is None:  # still running: the caller gave up on it
            with contextlib.suppress(OSError):
                os.kill(self.pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(self.pid, 0)
        self.done = True


class Shares:
    """A queue of share numbers ``0 .. n-1`` that forked processes take from, each share once.

    The numbers are written into a pipe before the workers are forked, and its write end is
    closed; every process then reads four bytes at a time (a read of the pipe is atomic, so
    no two processes get the same share) until the pipe is empty. Use it as a context
    manager, and fork the workers inside it.
    """

    def __init__(self, n: int) -> None:
        self.fd: int | None = None
        r, w = os.pipe()
        try:
            data = b"".join(i.to_bytes(4, "big") for i in range(n))
            # the pipe holds at least 64 KiB: 16,384 shares, far more than are ever made
            while data:
                data = data[os.write(w, data) :]
        except BaseException:
            os.close(r)
            raise
        finally:
            os.close(w)
        self.fd = r

    def __enter__(self) -> Shares:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __iter__(self) -> Iterator[int]:
        while self.fd is not None:
            got = os.read(self.fd, 4)
            if len(got) != 4:
                return
            yield int.from_bytes(got, "big")

    def close(self) -> None:
        """Close this process's end of the queue."""
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


#: the most a worker may announce it sends (a bound on a corrupt length; 15,000 test modules
#: send about 30 MB).
_MOST_BYTES = 1 << 32


def split_frames(data: memoryview) -> list[memoryview] | None:
    """The frames of ``data``, each behind its 8-byte length (views, not copies); None when a
    length runs past the end."""
    frames: list[memoryview] = []
    at, total = 0, len(data)
    while at < total:
        end = at + 8 + int.from_bytes(data[at : at + 8], "big")
        if end > total:
            return None
        frames.append(data[at + 8 : end])
        at = end
    return frames


def _read_exactly(fd: int, buf: memoryview) -> memoryview | None:
    """Fill ``buf`` from ``fd``; None if the pipe ends first."""
    got = 0
    while got < len(buf):
        n = os.readv(fd, [buf[got:]])
        if n == 0:
            return None
        got += n
    return buf


def _write_all(fd: int, data: bytes | memoryview) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def start(work: Callable[[], Sequence[bytes]]) -> Job | None:
    """Fork a worker that runs ``work()`` and sends back the byte strings it returns (see
    :meth:`Job.result`); None if fork failed."""
    r, w = os.pipe()
    try:
        with warnings.catch_warnings():
            # Python 3.12+ warns about forking with native threads; only Python threads
            # matter here and :func:`fork_safe` checked them.
            warnings.simplefilter("ignore", DeprecationWarning)
            pid = os.fork()
    except OSError:
        os.close(r)
        os.close(w)
        return None
    if pid == 0:  # pragma: no cover - runs in the worker, which leaves through os._exit
        status = 1
        try:
            os.close(r)
            frames = work()
            _write_all(w, sum(8 + len(f) for f in frames).to_bytes(8, "big"))
            for frame in frames:
                _write_all(w, len(frame).to_bytes(8, "big"))
                _write_all(w, frame)
            status = 0
        except BaseException:
            pass
        finally:
            os._exit(status)
    os.close(w)
    return Job(pid, r)
