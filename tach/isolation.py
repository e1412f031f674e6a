"""Hermetic test processes: network and mount namespaces, resource limits (``docs/isolation.md``).

``--isolate-network`` puts each test process in a network namespace whose only interface is
``lo``, brought up (127.0.0.1 and ::1 work; every other address is unreachable at once, DNS
included, for Python code, C extensions and subprocesses alike). ``--private-tmp`` gives each
test process a new mount namespace with its own tmpfs at ``/tmp`` (``TMPDIR`` points there), the
run's own directories under /tmp (pytest's base temporary directory, the project) bound back in
so that ``tmp_path`` keeps working. The ``--max-*`` options are resource limits (``setrlimit``)
of each test process.

Where it happens: a worker makes the user namespace (when not root), the network namespace and
the mount namespace with the tmpfs once, when it starts, and each test process (one per unit in
``module`` mode, per test in ``test`` mode) enters them with ``setns`` right after its fork,
before pytest runs anything there (:class:`SharedNamespaces`; they are made anew after a test
process that left anything in /tmp). With ``--isolation
none`` the worker isolates itself once, as it is the test process (:func:`enter`). In the user
namespace the user's own uid and gid are mapped to themselves (files keep their owner,
``os.getuid()`` does not change).

Nothing here runs silently unisolated: :func:`probe` tries, in a throwaway process, what a test
process will need, and the run stops before any test when the kernel refuses (:func:`explain`
says which option needs what). The environment variable :data:`SIMULATE_REFUSAL` (for Tach's
own tests only) makes ``unshare`` fail as a kernel that refuses the named namespaces would.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import math
import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from tach._native import proc

#: ``TACH_SIMULATE_REFUSAL=user,net,mnt``: ``unshare`` fails as if the kernel refused to create
#: those namespaces (EPERM). Only Tach's tests set it; a real run never should.
SIMULATE_REFUSAL = "TACH_SIMULATE_REFUSAL"
#: Exit status of a test process that could not isolate itself (it ran no test).
EXIT_NOT_ISOLATED = 72
#: Where the private tmpfs is mounted.
TMP = "/tmp"


@dataclasses.dataclass(frozen=True)
class Hermetic:
    """What a test process is isolated from and limited to (all off by default)."""

    #: ``--isolate-network``: a network namespace with only loopback.
    network: bool = False
    #: ``--private-tmp``: a mount namespace with a tmpfs at /tmp.
    private_tmp: bool = False
    #: ``--max-memory``: RLIMIT_DATA in bytes (0: none).
    max_memory: int = 0
    #: ``--max-processes``: RLIMIT_NPROC (0: none).
    max_processes: int = 0
    #: ``--max-open-files``: RLIMIT_NOFILE (0: none).
    max_open_files: int = 0
    #: ``--max-cpu-time``: seconds of CPU time per test (0: none).
    max_cpu_time: float = 0.0

    def to_spec(self) -> dict[str, Any]:
        """As the zygote's spec carries it."""
        return dataclasses.asdict(self)

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any] | None) -> Hermetic:
        fields = {field.name for field in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in (spec or {}).items() if k in fields})

    @property
    def namespaces(self) -> bool:
        return self.network or self.private_tmp

    @property
    def active(self) -> bool:
        return self != Hermetic()

    def flags(self, host_network: bool = False) -> int:
        """The ``CLONE_NEW*`` flags of the namespaces to make (``host_network``: for tests
        marked ``@pytest.mark.network``)."""
        flags = 0
        if self.network and not host_network:
            flags |= proc.CLONE_NEWNET
        if self.private_tmp:
            flags |= proc.CLONE_NEWNS
        if (flags or self.max_processes) and os.geteuid() != 0:
            # Unprivileged: the namespaces belong to a user namespace, in which RLIMIT_NPROC
            # then counts the processes of that namespace alone.
            flags |= proc.CLONE_NEWUSER
        return flags


def enter(hermetic: Hermetic, *, host_network: bool = False, keep: Sequence[str] = ()) -> None:
    """Isolate the calling (single-threaded) process as ``hermetic`` says; raise ``OSError``
    when the kernel refuses. ``keep``: directories under /tmp that stay visible at their paths
    under a private /tmp (see :func:`private_tmp`)."""
    flags = hermetic.flags(host_network)
    if flags:
        unshare_namespaces(flags, keep)
    apply_limits(hermetic)


def unshare_namespaces(flags: int, keep: Sequence[str] = ()) -> None:
    """Move the calling (single-threaded) process into new namespaces ``flags`` and set them
    up: the user's own ids mapped to themselves in a user namespace, ``lo`` up in a network
    namespace, the tmpfs at /tmp in a mount namespace (``keep``: see :func:`private_tmp`)."""
    uid, gid = os.geteuid(), os.getegid()
    _unshare(flags)
    if flags & proc.CLONE_NEWUSER:
        proc.write_id_maps(0, f"{uid} {uid} 1", f"{gid} {gid} 1")
    if flags & proc.CLONE_NEWNET:
        proc.interface_up("lo")
    if flags & proc.CLONE_NEWNS:
        private_tmp(keep)


class SharedNamespaces:
    """The namespaces a worker makes once and each of its test processes enters with
    ``setns``: a user namespace when not root (the user's ids mapped to themselves), under
    ``--isolate-network`` a network namespace with ``lo`` up, and under ``--private-tmp`` a mount
    namespace with a tmpfs at /tmp. Making and freeing a network namespace costs the kernel
    about 2 ms, a mount namespace with its mounts about 1 ms (most of it when its last process
    exits); entering one costs microseconds. The worker itself stays in the host's namespaces
    (so it can fork test processes for tests marked ``@pytest.mark.network`` that keep the
    host's network).

    The tmpfs is kept empty for each test process: after one has ended, :meth:`stale` compares
    the tmpfs's free inodes with their number when it was made (a file or directory left
    anywhere in it takes one), and the worker makes all of them anew before the next test
    process when anything was left."""

    def __init__(
        self,
        fds: dict[str, int] | None = None,
        tmp_fd: int | None = None,
        keep: Sequence[str] = (),
        error: OSError | None = None,
    ) -> None:
        #: ``"user"``, ``"net"``, ``"mnt"``: a file descriptor of each namespace made.
        self.fds = dict(fds or {})
        #: The tmpfs's root directory, and its free inodes when it was made.
        self.tmp_fd = tmp_fd
        self.tmp_inodes = os.fstatvfs(tmp_fd).f_ffree if tmp_fd is not None else 0
        #: The run's directories under /tmp that the tmpfs shows (bound back in).
        self.keep = tuple(keep)
        #: Why they could not be made: every test process that needs them then fails with it.
        self.error = error

    @classmethod
    def make(cls, hermetic: Hermetic, keep: Sequence[str] = ()) -> SharedNamespaces:
        """Make them in a throwaway child (a fresh fork: single-threaded, as a new user
        namespace needs) and keep them by file descriptor. ``keep``: see :func:`private_tmp`."""
        import signal

        flags = hermetic.flags()
        if not flags:
            return cls()
        answer_r, answer_w = os.pipe2(os.O_CLOEXEC)
        done_r, done_w = os.pipe2(os.O_CLOEXEC)
        pid = proc.fork(signal.SIGKILL)
        if pid == 0:
            code = 1
            try:
                os.close(answer_r)
                os.close(done_w)
                try:
                    unshare_namespaces(flags, keep)
                except OSError as exc:
                    os.write(answer_w, f"{exc.errno or 0}:{exc}".encode())
                else:
                    os.write(answer_w, b"ok")
                    os.read(done_r, 1)  # EOF once the worker holds the namespaces
                    code = 0
            finally:
                os._exit(code)
        os.close(answer_w)
        os.close(done_r)
        try:
            answer = os.read(answer_r, 4096).decode("utf-8", "replace")
            if answer != "ok":
                number, _, message = answer.partition(":")
                error = OSError(int(number) if number.isdigit() else 0, message or "no answer")
                return cls(error=error)
            kinds = {"user": proc.CLONE_NEWUSER, "net": proc.CLONE_NEWNET, "mnt": proc.CLONE_NEWNS}
            fds = {kind: _open_ns(pid, kind) for kind, flag in kinds.items() if flags & flag}
            tmp_fd = None
            if flags & proc.CLONE_NEWNS:
                # the tmpfs, as the helper sees it (its root is its mount namespace's)
                tmp_fd = os.open(
                    f"/proc/{pid}/root{TMP}", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
                )
            return cls(fds, tmp_fd, keep)
        finally:
            os.close(answer_r)
            os.close(done_w)
            os.waitpid(pid, 0)

    def stale(self, keep: Sequence[str]) -> bool:
        """In the worker, between test processes: whether the last one left anything in the
        tmpfs, or the run's directories under /tmp changed since it was made."""
        if self.tmp_fd is None:
            return False
        return tuple(keep) != self.keep or os.fstatvfs(self.tmp_fd).f_ffree != self.tmp_inodes

    def enter(self, hermetic: Hermetic, *, host_network: bool = False) -> None:
        """In a test process (single-threaded, forked by the worker): enter the namespaces and
        apply the limits. ``OSError`` when the kernel refuses (or refused when the namespaces
        were made)."""
        if self.error is not None:
            raise self.error
        if "user" in self.fds:
            proc.setns(self.fds["user"], proc.CLONE_NEWUSER)
        if "net" in self.fds and not host_network:
            proc.setns(self.fds["net"], proc.CLONE_NEWNET)
        if "mnt" in self.fds:
            cwd = os.getcwd()
            proc.setns(self.fds["mnt"], proc.CLONE_NEWNS)  # which moves to its root: come back
            os.chdir(cwd)
            point_tmpdir()
        self.close()
        apply_limits(hermetic)

    def close(self) -> None:
        for fd in [*self.fds.values(), *([self.tmp_fd] if self.tmp_fd is not None else [])]:
            os.close(fd)
        self.fds = {}
        self.tmp_fd = None


def _open_ns(pid: int, kind: str) -> int:
    return os.open(f"/proc/{pid}/ns/{kind}", os.O_RDONLY | os.O_CLOEXEC)


def _unshare(flags: int) -> None:
    simulated = {word.strip() for word in os.environ.get(SIMULATE_REFUSAL, "").split(",")}
    names = {proc.CLONE_NEWUSER: "user", proc.CLONE_NEWNET: "net", proc.CLONE_NEWNS: "mnt"}
    for flag, name in names.items():
        if flags & flag and name in simulated:
            raise PermissionError(
                errno.EPERM, f"unshare: Operation not permitted (simulated: {SIMULATE_REFUSAL})"
            )
    proc.unshare(flags)


def private_tmp(keep: Sequence[str] = ()) -> None:
    """In a new mount namespace: stop mount events from flowing back to the host (``/`` made
    a recursive slave), mount a fresh tmpfs at /tmp, bind back at their paths the directories
    ``keep`` (the run's own that lie under /tmp, as :func:`under_tmp` picks them: pytest's base
    temporary directory, the project, the interpreter), and point ``TMPDIR`` (and
    :mod:`tempfile`) there."""
    proc.mount(None, "/", None, proc.MS_REC | proc.MS_SLAVE)
    handles: dict[str, int] = {}
    try:
        for path in keep:
            # A handle on the host's directory, to bind it back once the tmpfs hides it.
            with contextlib.suppress(OSError):
                handles[path] = os.open(path, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        proc.mount("tmpfs", TMP, "tmpfs", proc.MS_NOSUID | proc.MS_NODEV, "mode=1777")
        for path, fd in handles.items():
            os.makedirs(path, mode=0o700, exist_ok=True)
            proc.mount(f"/proc/self/fd/{fd}", path, None, proc.MS_BIND | proc.MS_REC)
    finally:
        for fd in handles.values():
            os.close(fd)
    point_tmpdir()


def point_tmpdir() -> None:
    """``TMPDIR`` and :mod:`tempfile`'s cached directory: the private /tmp."""
    os.environ["TMPDIR"] = TMP
    tempfile = sys.modules.get("tempfile")
    if tempfile is not None:
        tempfile.tempdir = TMP


def under_tmp(paths: Sequence[str]) -> list[str]:
    """The directories of ``paths`` below /tmp, without those inside another of them."""
    found = sorted(
        {
            os.path.realpath(path)
            for path in paths
            if path and os.path.isabs(path) and os.path.isdir(path)
        }
    )
    kept: list[str] = []
    for path in found:
        if os.path.commonpath([TMP, path]) != TMP or path == TMP:
            continue
        if not any(os.path.commonpath([outer, path]) == outer for outer in kept):
            kept.append(path)
    return kept


def apply_limits(hermetic: Hermetic) -> None:
    """The ``--max-*`` limits of this process (CPU time is per test: :func:`limit_cpu`)."""
    if hermetic.max_memory:
        proc.setrlimit(proc.RLIMIT_DATA, hermetic.max_memory)
    if hermetic.max_open_files:
        _lower(proc.RLIMIT_NOFILE, hermetic.max_open_files)
    if hermetic.max_processes:
        _lower(proc.RLIMIT_NPROC, hermetic.max_processes)
    if hermetic.max_cpu_time:
        # SIGXCPU's default action dumps core: a test ended on purpose leaves no core file
        proc.setrlimit(proc.RLIMIT_CORE, 0)


def _lower(resource: int, value: int) -> None:
    """Set the soft limit to ``value`` and the hard one too, where it was higher (a test may
    not raise it back)."""
    _, hard = proc.getrlimit(resource)
    new_hard = value if hard == proc.RLIM_INFINITY or hard > value else hard
    proc.setrlimit(resource, min(value, new_hard), new_hard)


def limit_cpu(hermetic: Hermetic) -> None:
    """Before a test: its CPU time limit, counted from now (``RLIMIT_CPU`` is the process's
    total, so the soft limit is what was used so far plus ``--max-cpu-time``); past it the
    kernel sends SIGXCPU, which ends the process."""
    if not hermetic.max_cpu_time:
        return
    times = os.times()
    used = times.user + times.system
    # whole seconds, as the kernel counts: rounded up, the test gets at least the limit
    proc.setrlimit(proc.RLIMIT_CPU, math.ceil(used + hermetic.max_cpu_time))


def death_cause(hermetic: Hermetic, signal_number: int | None) -> str | None:
    """The limit a process killed by ``signal_number`` died of, in words, if any."""
    import signal

    if signal_number == signal.SIGXCPU and hermetic.max_cpu_time:
        return f"killed: CPU time limit of {hermetic.max_cpu_time:g} s (--max-cpu-time)"
    return None


# -- what this machine allows ---------------------------------------------------------------------

#: The options, and what each needs of the kernel.
NEEDS = {
    "--isolate-network": "a new network namespace (CLONE_NEWNET)",
    "--private-tmp": "a new mount namespace (CLONE_NEWNS) and a tmpfs mount",
    "--max-processes": "a user namespace (CLONE_NEWUSER) for the test processes, in which "
    "RLIMIT_NPROC counts a test's processes alone",
}


def probe(hermetic: Hermetic) -> list[str]:
    """Try, in a forked throwaway process, exactly what a test process will do; the problems,
    each naming the option and what it needs (empty: all is well). Call it from a process
    that may fork (a single-threaded one, or through :func:`probe_in_subprocess`)."""
    import orjson

    problems: list[str] = []
    checks = []
    if hermetic.network:
        checks.append(("--isolate-network", Hermetic(network=True)))
    if hermetic.private_tmp:
        checks.append(("--private-tmp", Hermetic(private_tmp=True)))
    if hermetic.max_processes and os.geteuid() != 0:
        checks.append(("--max-processes", Hermetic(max_processes=hermetic.max_processes)))
    if hermetic.max_processes and os.geteuid() == 0:
        problems.append(
            "--max-processes needs an unprivileged user: the kernel does not apply "
            "RLIMIT_NPROC to root. Run Tach as an ordinary user, or leave --max-processes out."
        )
    for option, wanted in checks:
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(read)
            code = 0
            try:
                enter(wanted)
                if wanted.network:
                    import socket

                    with socket.socket() as sock:
                        sock.bind(("127.0.0.1", 0))
            except BaseException as exc:
                os.write(write, orjson.dumps({"error": str(exc), "errno": _errno(exc)}))
                code = 1
            os._exit(code)
        os.close(write)
        with os.fdopen(read, "rb") as answer:
            text = answer.read()
        os.waitpid(pid, 0)
        if text:
            problems.append(explain(option, orjson.loads(text)))
    return problems


def _errno(exc: BaseException) -> int | None:
    return exc.errno if isinstance(exc, OSError) else None


def explain(option: str, failure: Mapping[str, Any]) -> str:
    """Why ``option`` cannot be had here, and what to do."""
    root = os.geteuid() == 0
    what = NEEDS[option]
    text = f"{option} needs {what}"
    if not root and option != "--max-processes":
        text += " inside a new user namespace (CLONE_NEWUSER)"
    text += f", which this machine refused: {failure['error']}."
    if failure.get("errno") in (errno.EPERM, errno.EACCES, errno.ENOSPC, errno.EINVAL):
        if root:
            text += (
                " Running as root, so the process lacks CAP_SYS_ADMIN (a container without "
                "that capability, or a seccomp policy): grant it (docker run --cap-add "
                "SYS_ADMIN), or leave the option out."
            )
        else:
            text += (
                " Unprivileged user namespaces are off or restricted here: see sysctl "
                "user.max_user_namespaces (must be > 0), kernel.unprivileged_userns_clone "
                "(Debian: 1), kernel.apparmor_restrict_unprivileged_userns (Ubuntu 24.04: 0, "
                "or an AppArmor profile for the interpreter), or run as root; or leave the "
                "option out."
            )
    return text + " Tach runs no test unisolated."


PROBE_CODE = (
    "import sys, orjson\n"
    "from tach.isolation import Hermetic, probe\n"
    "sys.stdout.write(orjson.dumps(probe(Hermetic.from_spec(orjson.loads(sys.argv[1])))).decode())"
)


def probe_in_subprocess(hermetic: Hermetic, python: str = sys.executable) -> list[str]:
    """:func:`probe` in a fresh interpreter (the supervisor has threads and never forks)."""
    import subprocess

    import orjson

    result = subprocess.run(
        [python, "-c", PROBE_CODE, orjson.dumps(hermetic.to_spec()).decode()],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if result.returncode != 0:
        return [f"the isolation probe failed: {result.stderr.strip() or result.returncode}"]
    return list(orjson.loads(result.stdout))
