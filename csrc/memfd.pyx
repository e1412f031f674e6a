"""memfd-backed log buffers: each test process points its fds 1 and 2 at one, so that output which
escapes pytest's capture (C extensions, subprocesses, faulthandler's dump on a crash, a hung test's
stack) is kept in memory and read only when it is needed.

The file is opened with ``O_APPEND``. Every fd made from it by ``dup2`` shares that open file
description, so every writer appends wherever the others left off, and after ``reset()``
(``ftruncate`` to 0) the next write lands at offset 0 instead of leaving a hole at the writer's old
offset. Reads use ``pread`` and never move the shared offset.
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from libc.errno cimport EBADF, EBUSY, EINTR, errno
from libc.stdlib cimport free, realloc
from posix.fcntl cimport (F_DUPFD, F_DUPFD_CLOEXEC, F_GETFD, F_GETFL, F_SETFL, FD_CLOEXEC,
                          O_APPEND, O_CLOEXEC, fcntl)
from posix.stat cimport S_ISREG, fstat, struct_stat
from posix.unistd cimport close, dup2, ftruncate, pread

from includes.errcheck cimport raise_errnum, raise_oserror
from includes.linux cimport MFD_CLOEXEC, memfd_create


cdef extern from "<unistd.h>" nogil:
    int dup3(int oldfd, int newfd, int flags)  # Linux; dup2 that can set O_CLOEXEC


cdef struct Saved:
    int target   # the fd that redirect() pointed at the memfd
    int copy     # a CLOEXEC copy of what it was before, or -1 if it was not open
    int fdflags  # its FD_CLOEXEC bit, restored with it


cdef int _move_above_stdio(int fd, bint cloexec) except -1:
    # An fd in 0-2 would be clobbered by redirect((1, 2)); move it up (STYLE §4).
    cdef int moved, err
    if fd > 2:
        return fd
    moved = fcntl(fd, F_DUPFD_CLOEXEC if cloexec else F_DUPFD, 3)
    if moved < 0:
        err = errno
        close(fd)
        raise_errnum(err, "fcntl(F_DUPFD)")
    close(fd)
    return moved


cdef int _set_append(int fd) except -1:
    cdef int fl = fcntl(fd, F_GETFL)
    if fl < 0:
        raise_oserror("fcntl(F_GETFL)")
    if not fl & O_APPEND and fcntl(fd, F_SETFL, fl | O_APPEND) < 0:
        raise_oserror("fcntl(F_SETFL)")
    return 0


cdef int _dup2(int src, int target, int fdflags) noexcept nogil:
    cdef int r
    while True:
        if fdflags & FD_CLOEXEC:
            r = dup3(src, target, O_CLOEXEC)
        else:
            r = dup2(src, target)
        # EBUSY: a race with open() in another thread, documented for dup2 on Linux.
        if r >= 0 or (errno != EINTR and errno != EBUSY):
            return r


cdef class LogBuffer:
    """A memfd_create(2) file, opened O_APPEND, that fds 1 and 2 of a test process write into."""

    cdef int _fd
    cdef str _name
    cdef Saved *_saved
    cdef Py_ssize_t _nsaved
    cdef Py_ssize_t _capacity

    def __cinit__(self):
        self._fd = -1
        self._name = ""
        self._saved = NULL
        self._nsaved = 0
        self._capacity = 0

    def __init__(self, str name="tach-log", bint cloexec=True):
        cdef int fd
        if self._fd >= 0:
            raise RuntimeError("LogBuffer is already initialised")
        encoded = name.encode()
        if b"\0" in encoded:
            raise ValueError("LogBuffer name must not contain NUL")
        fd = memfd_create(encoded, MFD_CLOEXEC if cloexec else 0)
        if fd < 0:
            raise_oserror("memfd_create")
        fd = _move_above_stdio(fd, cloexec)
        try:
            _set_append(fd)
        except BaseException:
            close(fd)
            raise
        self._fd = fd
        self._name = name

    @classmethod
    def attach(cls, int fd):
        """Wrap a log buffer fd inherited from another process (or received over a socket).

        The fd is duplicated (close-on-exec), so the caller still owns and closes ``fd``. It
        must be a regular file, normally a memfd; ``O_APPEND`` is set on it if missing.
        """
        cdef LogBuffer self = cls.__new__(cls)
        cdef struct_stat st
        cdef int dup = fcntl(fd, F_DUPFD_CLOEXEC, 3)
        if dup < 0:
            raise_oserror("fcntl(F_DUPFD_CLOEXEC)")
        self._fd = dup  # from here on, close()/__dealloc__ own it
        if fstat(dup, &st) < 0:
            raise_oserror("fstat")
        if not S_ISREG(st.st_mode):
            self.close()
            raise ValueError(f"LogBuffer.attach: fd {fd} is not a regular file (a memfd)")
        _set_append(dup)
        self._name = f"attached:{fd}"
        return self

    def __dealloc__(self):
        if self._fd >= 0:
            self._restore_all()
            close(self._fd)
            self._fd = -1
        free(self._saved)

    cdef int _check_open(self) except -1:
        if self._fd < 0:
            raise ValueError("I/O operation on closed LogBuffer")
        return 0

    cdef int _restore_all(self) noexcept:
        # Puts every redirected fd back; returns the first errno that failed, 0 if none.
        cdef Py_ssize_t i
        cdef Saved *s
        cdef int first_err = 0
        for i in range(self._nsaved - 1, -1, -1):
            s = &self._saved[i]
            if s.copy >= 0:
                if _dup2(s.copy, s.target, s.fdflags) < 0 and first_err == 0:
                    first_err = errno
                close(s.copy)
            else:
                close(s.target)  # it was not open before redirect()
        self._nsaved = 0
        return first_err

    cdef Saved *_find_saved(self, int target):
        cdef Py_ssize_t i
        for i in range(self._nsaved):
            if self._saved[i].target == target:
                return &self._saved[i]
        return NULL

    cdef bint _is_saved_copy(self, int fd):
        cdef Py_ssize_t i
        for i in range(self._nsaved):
            if self._saved[i].copy == fd:
                return True
        return False

    cdef int _save(self, int target) except -1:
        cdef Saved *grown
        cdef int copy, fdflags
        if self._nsaved == self._capacity:
            grown = <Saved *>realloc(self._saved, (self._capacity * 2 + 4) * sizeof(Saved))
            if grown == NULL:
                raise MemoryError()
            self._saved = grown
            self._capacity = self._capacity * 2 + 4
        fdflags = fcntl(target, F_GETFD)
        if fdflags < 0:
            if errno != EBADF:
                raise_oserror("fcntl(F_GETFD)")
            copy = -1
            fdflags = 0
        else:
            copy = fcntl(target, F_DUPFD_CLOEXEC, 3)
            if copy < 0:
                raise_oserror("fcntl(F_DUPFD_CLOEXEC)")
        self._saved[self._nsaved].target = target
        self._saved[self._nsaved].copy = copy
        self._saved[self._nsaved].fdflags = fdflags
        self._nsaved += 1
        return 0

    def fileno(self):
        """The memfd's file descriptor (owned by this object)."""
        self._check_open()
        return self._fd

    @property
    def closed(self):
        """True once close() ran."""
        return self._fd < 0

    @property
    def name(self):
        """The name given to memfd_create (visible in /proc/PID/fd as ``/memfd:NAME``)."""
        return self._name

    def redirect(self, fds=(1, 2), *, bint save=True):
        """Point each fd in ``fds`` at the buffer with ``dup2``.

        The redirected fds are deliberately inheritable, so subprocesses a test starts write here
        too. Flush Python-level streams (``sys.stdout``) first. With ``save`` (the default) the
        previous fds are kept as close-on-exec copies, and ``restore()`` or ``close()`` puts them
        back; a child that never goes back passes ``save=False``.
        """
        cdef int target
        self._check_open()
        for fd in fds:
            target = fd
            if target < 0:
                raise ValueError(f"redirect: bad file descriptor {target}")
            if target == self._fd or self._is_saved_copy(target):
                raise ValueError(f"redirect: fd {target} belongs to this LogBuffer")
            if save and self._find_saved(target) == NULL:
                self._save(target)
            if _dup2(self._fd, target, 0) < 0:
                raise_oserror("dup2")

    def restore(self):
        """Put back the fds that ``redirect()`` saved, and close the saved copies. Idempotent."""
        cdef int err = self._restore_all()
        if err:
            raise_errnum(err, "dup2")

    def size(self):
        """Bytes written since creation or the last reset()."""
        cdef struct_stat st
        self._check_open()
        if fstat(self._fd, &st) < 0:
            raise_oserror("fstat")
        return st.st_size

    cdef bytes _pread(self, Py_ssize_t offset, Py_ssize_t n):
        cdef bytes out = PyBytes_FromStringAndSize(NULL, n)
        cdef char *p = PyBytes_AS_STRING(out)
        cdef Py_ssize_t got = 0, r
        while got < n:
            r = pread(self._fd, p + got, n - got, offset + got)
            if r < 0:
                if errno == EINTR:
                    continue
                raise_oserror("pread")
            if r == 0:  # truncated under us
                return out[:got]
            got += r
        return out

    def read(self, Py_ssize_t offset=0, Py_ssize_t size=-1):
        """Up to ``size`` bytes from ``offset`` (-1: to the end), independent of file offsets."""
        cdef Py_ssize_t end
        if offset < 0:
            raise ValueError(f"read: offset must be >= 0, got {offset}")
        if size < -1:
            raise ValueError(f"read: size must be >= 0 or -1, got {size}")
        end = self.size()
        if offset >= end:
            return b""
        if size == -1 or size > end - offset:
            size = end - offset
        return self._pread(offset, size)

    def read_all(self):
        """Everything in the buffer."""
        return self.read(0, -1)

    def read_tail(self, Py_ssize_t n):
        """The last ``n`` bytes (fewer if the buffer is shorter)."""
        cdef Py_ssize_t end
        if n < 0:
            raise ValueError(f"read_tail: n must be >= 0, got {n}")
        end = self.size()
        if n > end:
            n = end
        return self._pread(end - n, n)

    def reset(self):
        """Empty the buffer; thanks to O_APPEND, every writer's next write starts at offset 0."""
        self._check_open()
        while ftruncate(self._fd, 0) < 0:
            if errno != EINTR:
                raise_oserror("ftruncate")

    def close(self):
        """Restore redirected fds (if saved) and close the memfd. Idempotent.

        fds redirected with ``save=False`` keep pointing at the file, which lives on until they
        are closed too.
        """
        cdef int err
        if self._fd < 0:
            return
        err = self._restore_all()
        close(self._fd)
        self._fd = -1
        if err:
            raise_errnum(err, "dup2")

    def __enter__(self):
        self._check_open()
        return self

    def __exit__(self, *exc_info):
        self.close()

    def __repr__(self):
        if self._fd < 0:
            return f"<LogBuffer {self._name!r} closed>"
        return f"<LogBuffer {self._name!r} fd={self._fd}>"
