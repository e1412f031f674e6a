"""Process primitives for Tach's zygote and workers: fork, clone into namespaces, pdeathsig,
pidfds, wait4 with resource usage, resource limits.

Design notes
============

**Why a native fork at all.** ``os.fork`` is correct, but Tach also needs to create children
*inside new namespaces* (``--isolate-network``, ``--private-tmp``), which Python cannot spell, and
it wants one module that owns every way a Tach process is made, with the same interpreter hooks
around each. ``fork()`` here is ``os.fork`` minus the subinterpreter check; ``clone()`` is the same
sequence around a different syscall.

**Why PyOS_BeforeFork / PyOS_AfterFork_*.** They are what ``os.fork`` and ``_posixsubprocess``
call: ``PyOS_BeforeFork`` takes the import lock and runs ``os.register_at_fork(before=...)``, and
"must be the last thing done before fork()"; ``PyOS_AfterFork_Child`` re-initialises the GIL, the
thread states, the import lock and signal handling, then runs the ``after_in_child`` hooks
(``threading``'s own bookkeeping, ``random``'s reseed, ...). ``PyOS_AfterFork_Parent`` releases
what ``PyOS_BeforeFork`` took, so it runs on failure too.

**Why a raw SYS_clone.** glibc's ``clone()`` wrapper wants a function and a fresh stack; a child
that runs a C function on a new stack cannot "return twice" into the interpreter. A ``SYS_clone``
with no ``CLONE_VM`` and no stack gives the child a copy-on-write copy of the whole address space,
stack included, so it returns from the call exactly like ``fork()`` (``tach_clone_fork`` in
compat.h). The alternative, ``fork()`` then ``unshare()`` in the child, cannot make the child
itself pid 1 of a new PID namespace (``unshare(CLONE_NEWPID)`` only applies to the caller's later
children, so it would take a second fork), and it leaves a window in which the child runs in the
parent's namespaces. One ``clone`` and the child is born where it belongs.

**The single-thread rule.** A raw clone skips what glibc's ``fork()`` does around the syscall: the
``pthread_atfork`` handlers (malloc arena locks, stdio and dynamic-loader locks, and whatever
libraries registered) and the refresh of the calling thread's cached kernel TID (glibc passes
``CLONE_CHILD_SETTID``). In a single-threaded process no other thread can be holding one of those
locks, so skipping the handlers is safe; with a second thread, a lock it held at the moment of the
clone stays locked forever in the child, and the child deadlocks in its first ``malloc``. So
``clone()`` reads the thread count from ``/proc/self/stat`` and refuses with ``RuntimeError`` when
it is above one. The zygote is single-threaded by design (STYLE §4). The stale TID remains: in a
clone child, pthread calls that address the *calling* thread through ``pthread_self()`` by its TID
still name the parent's thread: ``pthread_setaffinity_np`` and ``pthread_setschedparam`` would act
on the parent, and the clock of ``time.pthread_getcpuclockid(threading.get_ident())`` fails with
EINVAL (checked on glibc 2.36). CPython's other APIs use ``gettid(2)`` or pid 0 and are
unaffected; use ``os.sched_setaffinity(0, ...)`` and ``time.thread_time()`` in clone children.

**Namespaces, briefly.** A ``CLONE_NEWUSER`` child starts with no uid/gid maps (it runs as the
overflow uid 65534) until someone writes them: ``write_id_maps(pid, "0 <uid> 1", "0 <gid> 1")``
from the parent, while the child waits on a pipe. A ``CLONE_NEWPID`` child is pid 1 of its
namespace: ``getppid()`` returns 0 there, signals without a handler are ignored unless they come
from the parent namespace (SIGKILL from outside still works), orphans inside re-parent to it, and
when it exits the kernel kills everything left in the namespace.
"""

from cpython.exc cimport PyErr_CheckSignals
from cpython.number cimport PyNumber_Index
from libc.errno cimport EINTR, ESRCH, errno
from libc.stdlib cimport strtol
from libc.string cimport memset, strncpy, strrchr
from posix.fcntl cimport O_CLOEXEC, O_RDONLY, O_WRONLY, open
from posix.types cimport pid_t
from posix.unistd cimport _exit, close, fork as libc_fork, getpid, getppid, read, write
from posix.wait cimport (WEXITSTATUS, WIFEXITED, WIFSIGNALED, WNOHANG as _WNOHANG,
                         WTERMSIG, WUNTRACED as _WUNTRACED)

from includes.errcheck cimport raise_errnum, raise_oserror
from includes.linux cimport (
    CLONE_NEWIPC as _CLONE_NEWIPC,
    CLONE_NEWNET as _CLONE_NEWNET,
    CLONE_NEWNS as _CLONE_NEWNS,
    CLONE_NEWPID as _CLONE_NEWPID,
    CLONE_NEWUSER as _CLONE_NEWUSER,
    CLONE_NEWUTS as _CLONE_NEWUTS,
    AF_INET,
    IFF_UP,
    MS_BIND as _MS_BIND,
    MS_NODEV as _MS_NODEV,
    MS_NOSUID as _MS_NOSUID,
    MS_PRIVATE as _MS_PRIVATE,
    MS_REC as _MS_REC,
    MS_SLAVE as _MS_SLAVE,
    SIOCGIFFLAGS,
    SIOCSIFFLAGS,
    SOCK_CLOEXEC,
    SOCK_DGRAM,
    ifreq,
    ioctl,
    mount as libc_mount,
    socket as libc_socket,
    PR_GET_CHILD_SUBREAPER,
    PR_GET_PDEATHSIG,
    PR_SET_CHILD_SUBREAPER,
    PR_SET_PDEATHSIG,
    PyOS_AfterFork_Child,
    PyOS_AfterFork_Parent,
    PyOS_BeforeFork,
    RLIM_INFINITY as _RLIM_INFINITY,
    RLIMIT_AS as _RLIMIT_AS,
    RLIMIT_CORE as _RLIMIT_CORE,
    RLIMIT_CPU as _RLIMIT_CPU,
    RLIMIT_DATA as _RLIMIT_DATA,
    RLIMIT_NOFILE as _RLIMIT_NOFILE,
    RLIMIT_NPROC as _RLIMIT_NPROC,
    getrlimit as libc_getrlimit,
    prctl,
    rlim_t,
    rlimit,
    rusage,
    setrlimit as libc_setrlimit,
    tach_clone_fork,
    tach_pidfd_open,
    tach_pidfd_send_signal,
    setns as libc_setns,
    unshare as libc_unshare,
    wait4 as libc_wait4,
)


cdef extern from "<sys/wait.h>" nogil:
    int WCOREDUMP(int status)  # not in posix.wait: not POSIX, but in every Linux libc


cdef extern from "Python.h":
    int PySys_Audit(const char *event, const char *fmt, ...) except -1


CLONE_NEWNS = _CLONE_NEWNS
CLONE_NEWNET = _CLONE_NEWNET
CLONE_NEWUSER = _CLONE_NEWUSER
CLONE_NEWPID = _CLONE_NEWPID
CLONE_NEWUTS = _CLONE_NEWUTS
CLONE_NEWIPC = _CLONE_NEWIPC

RLIMIT_AS = _RLIMIT_AS
RLIMIT_DATA = _RLIMIT_DATA
RLIMIT_CORE = _RLIMIT_CORE
RLIMIT_NOFILE = _RLIMIT_NOFILE
RLIMIT_CPU = _RLIMIT_CPU
RLIMIT_NPROC = _RLIMIT_NPROC
#: "No limit", spelled as the ``resource`` module spells it (-1), so the two mix freely.
RLIM_INFINITY = -1

MS_BIND = _MS_BIND
MS_REC = _MS_REC
MS_PRIVATE = _MS_PRIVATE
MS_SLAVE = _MS_SLAVE
MS_NOSUID = _MS_NOSUID
MS_NODEV = _MS_NODEV

WNOHANG = _WNOHANG
WUNTRACED = _WUNTRACED

_NAMESPACE_FLAGS = (
    CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWUTS | CLONE_NEWIPC
)


# -- fork and clone --------------------------------------------------------------------------------

def fork(int pdeathsig=0):
    """Fork the calling process; return 0 in the child and the child's pid in the parent.

    The same contract as ``os.fork`` (audit event ``os.fork``, ``os.register_at_fork`` hooks,
    interpreter state re-initialised in the child). Flush Python's stdio first, and end the child
    with ``os._exit`` in a ``finally``.

    ``pdeathsig``: the child asks for this signal when the parent dies
    (``prctl(PR_SET_PDEATHSIG)``) before it runs any Python code, and ends at once with status
    ``EXIT_PARENT_GONE`` if the parent has died already. Asking later, from Python, leaves a
    window in which a parent killed between the fork and the request leaves the child running:
    the at-fork hooks alone can take a long time on a loaded machine.
    """
    cdef pid_t pid
    cdef pid_t parent = getpid()
    cdef int err
    PySys_Audit("os.fork", NULL)
    PyOS_BeforeFork()  # the last thing before fork(), as _posixsubprocess does
    pid = libc_fork()
    if pid == 0:
        if pdeathsig and (
            prctl(PR_SET_PDEATHSIG, <unsigned long>pdeathsig, 0, 0, 0) < 0
            or getppid() != parent
        ):
            _exit(EXIT_PARENT_GONE)
        PyOS_AfterFork_Child()
        return 0
    err = errno
    PyOS_AfterFork_Parent()
    if pid < 0:
        raise_errnum(err, "fork")
    return pid


#: exit status of a child of :func:`fork` whose parent died before the child could ask for its
#: parent-death signal.
EXIT_PARENT_GONE = 121


def clone(flags):
    """Fork into new namespaces: like ``fork()``, but the child is created in the namespaces that
    ``flags`` names (an OR of the ``CLONE_NEW*`` constants of this module). ``clone(0)`` is
    ``fork()``.

    Audit event ``os.fork``, fork hooks and return values as for ``fork()``; any other bit in
    ``flags`` raises ``ValueError``. A raw clone skips glibc's fork handlers, so it is only
    safe from a single-threaded process: ``RuntimeError`` if the caller has more than one thread
    (see the module notes). Kernel refusals (EPERM without privilege, EINVAL, ENOSPC when a
    namespace limit is reached, EUSERS when user namespaces nest too deep) raise ``OSError``.
    """
    cdef unsigned long cflags
    cdef pid_t pid
    cdef int err
    flags = PyNumber_Index(flags)
    if flags < 0:
        raise ValueError(f"clone: flags must be a non-negative OR of CLONE_NEW* bits, got {flags}")
    bad = flags & ~_NAMESPACE_FLAGS
    if bad:
        raise ValueError(
            f"clone: only namespace flags (CLONE_NEWNS, CLONE_NEWNET, CLONE_NEWUSER, CLONE_NEWPID, "
            f"CLONE_NEWUTS, CLONE_NEWIPC) are accepted; bad bits: {bad:#x}"
        )
    if flags == 0:
        return fork()
    cflags = flags
    threads = _thread_count()
    if threads > 1:
        raise RuntimeError(
            f"clone: the calling process has {threads} threads; a raw clone skips glibc's fork "
            f"handlers and is only safe from a single-threaded process (fork from the zygote, or "
            f"use fork() followed by unshare())"
        )
    PySys_Audit("os.fork", NULL)
    PyOS_BeforeFork()
    pid = tach_clone_fork(cflags)
    if pid == 0:
        PyOS_AfterFork_Child()
        return 0
    err = errno
    PyOS_AfterFork_Parent()
    if pid < 0:
        raise_errnum(err, "clone")
    return pid


def unshare(int flags):
    """Move the calling process into new namespaces (``unshare(2)``).

    ``CLONE_NEWPID`` applies to the caller's children created afterwards, not to the caller;
    ``CLONE_NEWUSER`` needs a single-threaded caller (the kernel says EINVAL otherwise).
    """
    if libc_unshare(flags) < 0:
        raise_oserror("unshare")


def setns(int fd, int nstype=0):
    """Move the calling process into the namespace that ``fd`` refers to (``setns(2)``; an fd of
    ``/proc/PID/ns/net``, say). ``nstype`` (a ``CLONE_NEW*`` constant, 0: any) makes the kernel
    check the kind. Entering a user namespace needs a single-threaded caller and
    ``CAP_SYS_ADMIN`` in it, which its owner has from the parent namespace; entering a network
    or mount namespace needs ``CAP_SYS_ADMIN`` in the user namespace that owns it and in the
    caller's own, so an unprivileged process enters the owning user namespace first."""
    if libc_setns(fd, nstype) < 0:
        raise_oserror("setns")


cdef int _write_proc_file(bytes path, bytes data) except -1:
    # One write(2) per file: the kernel parses uid_map/gid_map from a single write only.
    cdef int fd = open(path, O_WRONLY | O_CLOEXEC)
    cdef Py_ssize_t n
    cdef int err
    if fd < 0:
        raise_oserror(f"open({path.decode()})")
    n = write(fd, <const char *>data, len(data))
    if n < 0:
        err = errno
        close(fd)
        raise_errnum(err, f"write({path.decode()})")
    close(fd)
    return 0


def write_id_maps(int pid, str uid_map, str gid_map):
    """Give a process in a new user namespace its uid and gid maps: write ``deny`` to
    ``/proc/PID/setgroups``, then ``uid_map`` and ``gid_map`` (``pid`` 0 means the caller).

    Each map is the kernel's text, e.g. ``"0 1000 1"`` maps uid 0 inside to 1000 outside. Call it
    from the parent of a ``clone(CLONE_NEWUSER)`` child while the child waits, or from a process
    itself after ``unshare(CLONE_NEWUSER)`` (it may then map only its own ids).
    """
    cdef str base = "/proc/self" if pid == 0 else f"/proc/{pid}"
    _write_proc_file(f"{base}/setgroups".encode(), b"deny")
    _write_proc_file(f"{base}/uid_map".encode(), uid_map.encode())
    _write_proc_file(f"{base}/gid_map".encode(), gid_map.encode())


cdef long _thread_count() except -1:
    # /proc/self/stat: "pid (comm) state ppid ...", num_threads is field 20. comm may hold spaces
    # and parentheses, so fields are counted from the last ')'.
    cdef char buf[2048]
    cdef Py_ssize_t got = 0, n
    cdef char *p
    cdef int field, err
    cdef int fd = open(b"/proc/self/stat", O_RDONLY | O_CLOEXEC)
    if fd < 0:
        raise_oserror("open(/proc/self/stat)")
    while got < <Py_ssize_t>sizeof(buf) - 1:
        n = read(fd, buf + got, sizeof(buf) - 1 - got)
        if n < 0:
            if errno == EINTR:
                continue
            err = errno
            close(fd)
            raise_errnum(err, "read(/proc/self/stat)")
        if n == 0:
            break
        got += n
    close(fd)
    buf[got] = 0
    p = strrchr(buf, b')')
    if p == NULL:
        raise RuntimeError("thread_count: cannot parse /proc/self/stat")
    field = 2  # p points at the end of field 2 (comm)
    while p[0] != 0 and field < 20:
        if p[0] == b' ':
            field += 1
        p += 1
    if field != 20:
        raise RuntimeError("thread_count: cannot parse /proc/self/stat")
    return strtol(p, NULL, 10)


def thread_count():
    """Number of threads in the calling process (field 20 of ``/proc/self/stat``).

    A thread that ``join()`` has just returned for may still be counted for a moment: Python's
    join returns when the thread's Python state is gone, slightly before the OS thread exits.
    """
    return _thread_count()


# -- inside new namespaces --------------------------------------------------------------------------

def mount(source, target, fstype=None, unsigned long flags=0, data=None):
    """``mount(2)``: ``source``, ``target`` and ``fstype`` are paths/names (str or bytes; ``None``
    for an unused one), ``flags`` an OR of the ``MS_*`` constants, ``data`` the file system's
    options (``"size=64m,mode=1777"``). ``mount(None, "/", None, MS_REC | MS_SLAVE)`` changes
    propagation; ``mount("/a", "/b", None, MS_BIND)`` binds."""
    cdef bytes b_source = _fs_bytes(source)
    cdef bytes b_target = _fs_bytes(target)
    cdef bytes b_fstype = _fs_bytes(fstype)
    cdef bytes b_data = _fs_bytes(data)
    if b_target is None:
        raise ValueError("mount: a target is required")
    if libc_mount(
        <const char *>b_source if b_source is not None else NULL,
        <const char *>b_target,
        <const char *>b_fstype if b_fstype is not None else NULL,
        flags,
        <const void *>(<const char *>b_data) if b_data is not None else NULL,
    ) < 0:
        raise_oserror(f"mount({target!s})")


cdef bytes _fs_bytes(object value):
    if value is None:
        return None
    if isinstance(value, bytes):
        return value
    return str(value).encode("utf-8", "surrogateescape")


def interface_up(name="lo"):
    """Bring the network interface ``name`` up (``SIOCGIFFLAGS``, then ``SIOCSIFFLAGS`` with
    ``IFF_UP``), as ``ip link set lo up`` does. In a new network namespace ``lo`` exists but is
    down; once up, the kernel gives it 127.0.0.1/8 and ::1. Needs ``CAP_NET_ADMIN`` in the user
    namespace that owns the network namespace."""
    cdef ifreq req
    cdef bytes b_name = name.encode() if isinstance(name, str) else bytes(name)
    cdef int fd, err
    if not 0 < len(b_name) < 16:
        raise ValueError(f"interface_up: bad interface name {name!r}")
    memset(&req, 0, sizeof(req))
    strncpy(req.ifr_name, <const char *>b_name, 15)
    fd = libc_socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0)
    if fd < 0:
        raise_oserror("socket(AF_INET, SOCK_DGRAM)")
    if ioctl(fd, SIOCGIFFLAGS, &req) < 0:
        err = errno
        close(fd)
        raise_errnum(err, f"ioctl(SIOCGIFFLAGS, {name})")
    req.ifr_flags = req.ifr_flags | IFF_UP
    if ioctl(fd, SIOCSIFFLAGS, &req) < 0:
        err = errno
        close(fd)
        raise_errnum(err, f"ioctl(SIOCSIFFLAGS, {name})")
    close(fd)


# -- parent death and subreapers -------------------------------------------------------------------

def set_pdeathsig(int sig, int parent_pid=0):
    """Ask for signal ``sig`` when the parent thread exits (``prctl(PR_SET_PDEATHSIG)``; 0 clears).

    If the parent died before the call, no signal will ever come: pass the parent's pid as
    ``parent_pid`` (read it before forking) and ``ProcessLookupError`` is raised when
    ``getppid()`` no longer matches. In a new PID namespace ``getppid()`` is 0; do not pass
    ``parent_pid`` there. The setting is cleared in children and on exec of a set-uid binary.
    """
    if prctl(PR_SET_PDEATHSIG, <unsigned long>sig, 0, 0, 0) < 0:
        raise_oserror("prctl(PR_SET_PDEATHSIG)")
    if parent_pid:
        ppid = getppid()
        if ppid != parent_pid:
            raise ProcessLookupError(
                ESRCH, f"set_pdeathsig: parent {parent_pid} already exited (getppid() is {ppid})"
            )


def get_pdeathsig():
    """The parent-death signal of the calling process, 0 if none."""
    cdef int sig = 0
    if prctl(PR_GET_PDEATHSIG, <unsigned long>&sig, 0, 0, 0) < 0:
        raise_oserror("prctl(PR_GET_PDEATHSIG)")
    return sig


def set_child_subreaper(bint on=True):
    """Make the calling process adopt orphaned descendants (``prctl(PR_SET_CHILD_SUBREAPER)``),
    so that daemons a test leaves behind re-parent to it and can be found and reaped."""
    if prctl(PR_SET_CHILD_SUBREAPER, 1 if on else 0, 0, 0, 0) < 0:
        raise_oserror("prctl(PR_SET_CHILD_SUBREAPER)")


def get_child_subreaper():
    """Whether the calling process is a child subreaper."""
    cdef int on = 0
    if prctl(PR_GET_CHILD_SUBREAPER, <unsigned long>&on, 0, 0, 0) < 0:
        raise_oserror("prctl(PR_GET_CHILD_SUBREAPER)")
    return on != 0


# -- pidfds ----------------------------------------------------------------------------------------

def pidfd_open(int pid, unsigned int flags=0):
    """Open a pidfd for ``pid`` (close-on-exec, as the kernel always makes it). It becomes
    readable when the process exits, works for processes that are not our children, and never
    names a recycled pid."""
    cdef int fd = tach_pidfd_open(pid, flags)
    if fd < 0:
        raise_oserror("pidfd_open")
    return fd


def pidfd_send_signal(int pidfd, int sig):
    """Send ``sig`` to the process behind ``pidfd``; ``ProcessLookupError`` once it was reaped."""
    if tach_pidfd_send_signal(pidfd, sig, 0) < 0:
        raise_oserror("pidfd_send_signal")


# -- wait4 -----------------------------------------------------------------------------------------

cdef class WaitResult:
    """What wait4(2) reports for one child: the raw status decoded, and its struct rusage."""

    #: pid of the child that changed state.
    cdef readonly long pid
    #: the raw wait status.
    cdef readonly int status
    #: exit status if the child exited, else None.
    cdef readonly object exit_code
    #: number of the signal that killed the child, else None.
    cdef readonly object signal
    #: whether the kernel wrote a core dump.
    cdef readonly bint core_dumped
    #: peak resident set size in KiB (ru_maxrss; includes pages inherited from the parent).
    cdef readonly long maxrss_kib
    #: user and system CPU time in seconds.
    cdef readonly double utime
    cdef readonly double stime
    #: minor (no I/O) and major page faults.
    cdef readonly long minflt
    cdef readonly long majflt

    def __init__(self, long pid, int status, long maxrss_kib=0, double utime=0.0,
                 double stime=0.0, long minflt=0, long majflt=0):
        self.pid = pid
        self.status = status
        self.exit_code = WEXITSTATUS(status) if WIFEXITED(status) else None
        self.signal = WTERMSIG(status) if WIFSIGNALED(status) else None
        self.core_dumped = WIFSIGNALED(status) and WCOREDUMP(status)
        self.maxrss_kib = maxrss_kib
        self.utime = utime
        self.stime = stime
        self.minflt = minflt
        self.majflt = majflt

    def as_dict(self):
        """The fields as a dict (for the protocol's ``worker_exit`` payload)."""
        return {
            "pid": self.pid, "status": self.status, "exit_code": self.exit_code,
            "signal": self.signal, "core_dumped": self.core_dumped,
            "maxrss_kib": self.maxrss_kib, "utime": self.utime, "stime": self.stime,
            "minflt": self.minflt, "majflt": self.majflt,
        }

    def __eq__(self, other):
        if not isinstance(other, WaitResult):
            return NotImplemented
        return self.as_dict() == (<WaitResult>other).as_dict()

    def __repr__(self):
        how = (f"exit_code={self.exit_code}" if self.exit_code is not None
               else f"signal={self.signal}" if self.signal is not None
               else f"status={self.status:#x}")
        return (f"WaitResult(pid={self.pid}, {how}, core_dumped={self.core_dumped}, "
                f"maxrss_kib={self.maxrss_kib}, utime={self.utime:.6f}, stime={self.stime:.6f}, "
                f"minflt={self.minflt}, majflt={self.majflt})")


def wait4(pid_t pid, int options=0):
    """Wait for a child like ``os.wait4`` and return a :class:`WaitResult`, or None when
    ``WNOHANG`` is given and no child changed state.

    The GIL is released while waiting; on EINTR, Python signal handlers run (an exception they
    raise propagates) and the wait resumes. ``ChildProcessError`` if ``pid`` is not our child.
    """
    cdef pid_t got
    cdef int status = 0
    cdef int err = 0
    cdef rusage ru
    while True:
        with nogil:
            got = libc_wait4(pid, &status, options, &ru)
            if got < 0:
                err = errno
        if got >= 0:
            break
        if err != EINTR:
            raise_errnum(err, "wait4")
        PyErr_CheckSignals()
    if got == 0:
        return None
    return WaitResult(
        got, status, ru.ru_maxrss,
        ru.ru_utime.tv_sec + ru.ru_utime.tv_usec * 1e-6,
        ru.ru_stime.tv_sec + ru.ru_stime.tv_usec * 1e-6,
        ru.ru_minflt, ru.ru_majflt,
    )


# -- resource limits -------------------------------------------------------------------------------

cdef rlim_t _to_rlim(object value) except? 0:
    if value == -1:
        return _RLIM_INFINITY
    if value < 0:
        raise ValueError(f"resource limit must be >= 0 or RLIM_INFINITY (-1), got {value}")
    return <rlim_t>value


cdef object _from_rlim(rlim_t value):
    return -1 if value == _RLIM_INFINITY else value


def getrlimit(int resource):
    """``(soft, hard)`` limits of ``resource``; ``RLIM_INFINITY`` (-1) means no limit."""
    cdef rlimit lim
    if libc_getrlimit(resource, &lim) < 0:
        raise_oserror("getrlimit")
    return (_from_rlim(lim.rlim_cur), _from_rlim(lim.rlim_max))


def setrlimit(int resource, soft, hard=None):
    """Set the limits of ``resource``; ``hard=None`` keeps the current hard limit."""
    cdef rlimit lim
    if hard is None:
        if libc_getrlimit(resource, &lim) < 0:
            raise_oserror("getrlimit")
    else:
        lim.rlim_max = _to_rlim(hard)
    lim.rlim_cur = _to_rlim(soft)
    if libc_setrlimit(resource, &lim) < 0:
        raise_oserror("setrlimit")


# -- the interpreter's big blocks ------------------------------------------------------------------
#
# CPython takes two kinds of blocks straight from the kernel through its arena allocator
# (mmap/munmap): the object allocator's 1 MiB arenas, and the 16 KiB chunks of a thread's frame
# stack. A chunk is unmapped as soon as the first frame in it returns, so code whose calls go in
# and out across a chunk's end maps and unmaps a chunk on every such call: two system calls and
# four fresh pages each time. Whether a suite meets that depends on the depth at which its tests
# run, which a runner changes: on django-allauth's headless spec tests, Tach's worker did 129,000
# mmap/munmap pairs where pytest did 6,800, and a forked test process pays the page faults again.
# ``keep_freed_blocks`` puts a cache in front of the allocator: a freed block is kept (up to a
# byte budget) and handed back for the next request of the same size. The previous allocator
# still makes and finally frees every block; memory it hands out is not assumed to be zeroed by
# CPython (its fallback allocator is malloc).

cdef extern from "Python.h":
    ctypedef struct PyObjectArenaAllocator:
        void *ctx
        void *(*alloc)(void *ctx, size_t size) noexcept nogil
        void (*free)(void *ctx, void *ptr, size_t size) noexcept nogil
    void PyObject_GetArenaAllocator(PyObjectArenaAllocator *allocator)
    void PyObject_SetArenaAllocator(PyObjectArenaAllocator *allocator)

DEF _CACHE_SLOTS = 64

cdef PyObjectArenaAllocator _previous
cdef bint _installed = False
cdef size_t _budget = 0
cdef size_t _cached_bytes = 0
cdef int _cached_count = 0
cdef void *_cached_block[_CACHE_SLOTS]
cdef size_t _cached_size[_CACHE_SLOTS]
cdef unsigned long long _hits = 0


cdef void *_cached_alloc(void *ctx, size_t size) noexcept nogil:
    global _cached_count, _cached_bytes, _hits
    cdef int i
    for i in range(_cached_count - 1, -1, -1):
        if _cached_size[i] == size:
            block = _cached_block[i]
            _cached_count -= 1
            _cached_block[i] = _cached_block[_cached_count]
            _cached_size[i] = _cached_size[_cached_count]
            _cached_bytes -= size
            _hits += 1
            return block
    return _previous.alloc(_previous.ctx, size)


cdef void _cached_free(void *ctx, void *ptr, size_t size) noexcept nogil:
    global _cached_count, _cached_bytes
    if ptr != NULL and _cached_count < _CACHE_SLOTS and _cached_bytes + size <= _budget:
        _cached_block[_cached_count] = ptr
        _cached_size[_cached_count] = size
        _cached_count += 1
        _cached_bytes += size
        return
    _previous.free(_previous.ctx, ptr, size)


def keep_freed_blocks(size_t budget):
    """Keep up to ``budget`` bytes of the blocks the interpreter frees (frame-stack chunks,
    arenas) for its next requests of the same sizes, instead of unmapping them at once. Called
    again, it changes the budget (0: keep none; what is kept above it stays until reused). The
    setting, and what is kept, are inherited across fork. Call with the GIL held (as any
    Python code is)."""
    global _installed, _budget
    cdef PyObjectArenaAllocator ours
    _budget = budget
    if not _installed:
        PyObject_GetArenaAllocator(&_previous)
        ours.ctx = NULL
        ours.alloc = _cached_alloc
        ours.free = _cached_free
        PyObject_SetArenaAllocator(&ours)
        _installed = True


def freed_block_stats():
    """``(reused, kept_bytes, kept_blocks)``: how many requests a kept block answered, and what
    is kept now."""
    return (_hits, _cached_bytes, _cached_count)
