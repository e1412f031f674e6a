"""tach._native.proc: fork and clone with CPython's fork hooks, namespaces, parent-death signals,
subreapers, pidfds, wait4 with rusage, resource limits.

Every child runs its body in ``try: ... finally: os._exit()`` and is reaped here; the conftest fails
a test that leaks an fd or leaves a child. Tests that need a namespace the kernel refuses (EPERM,
EINVAL, ENOSPC) are skipped with the kernel's error, and only then.
"""

from __future__ import annotations

import _imp
import errno
import faulthandler
import importlib
import os
import pickle
import platform
import resource
import select
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

import pytest

from tach._native import proc

MiB = 1 << 20
REFUSED = (errno.EPERM, errno.EINVAL, errno.ENOSPC)
NAMESPACES = {
    "CLONE_NEWNS": "mnt",
    "CLONE_NEWNET": "net",
    "CLONE_NEWUSER": "user",
    "CLONE_NEWPID": "pid",
    "CLONE_NEWUTS": "uts",
    "CLONE_NEWIPC": "ipc",
}
WAIT4_SYSCALL_NR = {"x86_64": 61, "aarch64": 260}.get(platform.machine())


# -- helpers ---------------------------------------------------------------------------------------

def read_all(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 65536):
        chunks.append(chunk)
    return b"".join(chunks)


def read_line(fd: int) -> bytes:
    line = b""
    while not line.endswith(b"\n"):
        byte = os.read(fd, 1)
        if not byte:
            raise EOFError(f"pipe closed after {line!r}")
        line += byte
    return line


def ns_inode(name: str) -> int:
    return os.stat(f"/proc/self/ns/{name}").st_ino


def flags_of(*names: str) -> int:
    value = 0
    for name in names:
        value |= getattr(proc, name)
    return value


_gate_fd = -1  # in a child made with gate=True: the read end of the parent's go-ahead pipe


def wait_for_parent() -> None:
    """In a child: block until the parent calls ``Child.release()``."""
    assert os.read(_gate_fd, 1) == b"g"


class Child:
    """A child made by ``proc.fork()`` (or ``proc.clone(flags)``) that runs ``body()``, pickles its
    return value or traceback back through a pipe, and ``os._exit``s. Use as a context manager:
    a child that was not joined is killed and reaped on the way out."""

    def __init__(self, body: Callable[[], Any], flags: int | None = None, gate: bool = False):
        global _gate_fd
        r, w = os.pipe()
        gr, gw = os.pipe() if gate else (-1, -1)
        try:
            pid = proc.fork() if flags is None else proc.clone(flags)
        except BaseException:
            for fd in (r, w, gr, gw):
                if fd >= 0:
                    os.close(fd)
            raise
        if pid == 0:
            code = 70
            try:
                os.close(r)
                if gate:
                    os.close(gw)
                    _gate_fd = gr
                try:
                    payload = (True, body())
                except BaseException:
                    payload = (False, traceback.format_exc())
                data = pickle.dumps(payload)
                while data:
                    data = data[os.write(w, data):]
                code = 0
            finally:
                os._exit(code)
        os.close(w)
        if gate:
            os.close(gr)
        self.pid, self._r, self._gate = pid, r, gw
        self.result: proc.WaitResult | None = None

    def release(self) -> None:
        os.write(self._gate, b"g")

    def join(self, *, wait_first: bool = False) -> Any:
        """Reap the child and return what its body returned (fail on an exception in it)."""
        if wait_first:
            self.result = proc.wait4(self.pid)
        data = read_all(self._r)
        self._close()
        if self.result is None:
            self.result = proc.wait4(self.pid)
        assert data, f"child died without reporting: {self.result}"
        ok, value = pickle.loads(data)
        if not ok:
            pytest.fail(f"the child raised:\n{value}", pytrace=False)
        assert self.result.exit_code == 0, self.result
        return value

    def _close(self) -> None:
        for fd in (self._r, self._gate):
            if fd >= 0:
                os.close(fd)
        self._r = self._gate = -1

    def __enter__(self) -> Child:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.result is None:
            self._close()
            os.kill(self.pid, signal.SIGKILL)
            self.result = proc.wait4(self.pid)


def clone_child(body: Callable[[], Any], flags: int, gate: bool = False) -> Child:
    """``Child(body, flags)``, skipped when the kernel refuses the namespaces, and only then."""
    if proc.thread_count() > 1:
        pytest.skip(f"clone needs a single-threaded process; pytest runs {proc.thread_count()} "
                    f"threads here (pytest-xdist?)")
    try:
        return Child(body, flags, gate)
    except OSError as e:
        if e.errno in REFUSED:
            pytest.skip(f"the kernel refused clone({flags:#x}): {e}")
        raise


def run(body: Callable[[], Any]) -> Any:
    with Child(body) as child:
        return child.join()


def join_thread(thread: threading.Thread, threads_before: int) -> None:
    """Join, then wait for the OS thread to be gone too (join returns slightly before)."""
    thread.join()
    deadline = time.monotonic() + 10
    while proc.thread_count() > threads_before and time.monotonic() < deadline:
        os.sched_yield()
    assert proc.thread_count() == threads_before


def in_wait4(task_dir: str, timeout: float = 10.0) -> bool:
    """Spin until the thread behind /proc/.../task/TID is blocked in the wait4 syscall."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open(f"{task_dir}/syscall") as f:
            fields = f.read().split()
        if fields and fields[0] == str(WAIT4_SYSCALL_NR):
            return True
        os.sched_yield()
    return False


def poll_readable(fd: int, timeout_ms: int) -> bool:
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    return bool(poller.poll(timeout_ms))


# -- fork ------------------------------------------------------------------------------------------

def test_fork_returns_zero_in_the_child_and_the_child_pid_in_the_parent():
    parent = os.getpid()
    r, w = os.pipe()
    pid = proc.fork()
    if os.getpid() != parent:  # the child, whatever fork() returned there
        try:
            os.write(w, f"{pid} {os.getpid()} {os.getppid()}".encode())
        finally:
            os._exit(0)
    os.close(w)
    reported = read_all(r).decode().split()
    os.close(r)
    result = proc.wait4(pid)
    assert reported == ["0", str(pid), str(parent)]
    assert result.pid == pid
    assert result.exit_code == 0


def _fork_hooks_body(flags: int | None) -> Any:
    events: list[str] = []
    os.register_at_fork(before=lambda: events.append("before"),
                        after_in_parent=lambda: events.append("after_in_parent"),
                        after_in_child=lambda: events.append("after_in_child"))
    sys.addaudithook(lambda event, args: events.append(event) if event == "os.fork" else None)

    def grandchild() -> Any:
        sys.modules.pop("colorsys", None)
        importlib.import_module("colorsys")  # the import lock was re-initialised
        t = threading.Thread(target=events.append, args=("thread ran",))
        t.start()
        t.join()
        return list(events)

    try:
        with Child(grandchild, flags) as child:
            in_child = child.join()
    except OSError as e:
        if e.errno in REFUSED:
            return ("refused", str(e))
        raise
    return (events, in_child)


@pytest.mark.parametrize("flags", [None, 0, proc.CLONE_NEWUTS], ids=["fork", "clone0", "clone"])
def test_fork_and_clone_run_the_interpreter_fork_hooks(flags):
    # Done inside a child so that the hooks registered here do not outlive the test.
    outcome = run(lambda: _fork_hooks_body(flags))
    if outcome[0] == "refused":
        pytest.skip(f"the kernel refused clone: {outcome[1]}")
    in_parent, in_child = outcome
    assert in_parent == ["os.fork", "before", "after_in_parent"]
    assert in_child == ["os.fork", "before", "after_in_child", "thread ran"]


# -- wait4 -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("code", [0, 7, 255])
def test_wait4_reports_the_exit_code(code):
    pid = proc.fork()
    if pid == 0:
        os._exit(code)
    result = proc.wait4(pid)
    assert (result.pid, result.exit_code, result.signal, result.core_dumped) == (
        pid, code, None, False)
    assert os.waitstatus_to_exitcode(result.status) == code


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGSEGV, signal.SIGTERM])
def test_wait4_reports_the_killing_signal(sig):
    pid = proc.fork()
    if pid == 0:
        try:
            faulthandler.disable()
            proc.setrlimit(proc.RLIMIT_CORE, 0, 0)  # no core file for SIGSEGV
            if sig != signal.SIGKILL:
                signal.signal(sig, signal.SIG_DFL)
            os.kill(os.getpid(), sig)
        finally:
            os._exit(0)
    result = proc.wait4(pid)
    assert (result.exit_code, result.signal) == (None, sig)
    assert os.waitstatus_to_exitcode(result.status) == -sig
    with open("/proc/sys/kernel/core_pattern") as f:
        piped = f.read().startswith("|")  # a pipe handler ignores RLIMIT_CORE=0
    if not piped:
        assert result.core_dumped is False


def test_wait4_reports_a_core_dump(tmp_path):
    with open("/proc/sys/kernel/core_pattern") as f:
        pattern = f.read().strip()
    if pattern.startswith("|") or "/" in pattern:
        pytest.skip(f"core_pattern {pattern!r} does not write into the working directory")
    pid = proc.fork()
    if pid == 0:
        try:
            os.chdir(tmp_path)
            proc.setrlimit(proc.RLIMIT_CORE, proc.RLIM_INFINITY, proc.RLIM_INFINITY)
            # a small process dumps a small core
            os.execv("/bin/sh", ["sh", "-c", "kill -SEGV $$"])
        finally:
            os._exit(127)
    result = proc.wait4(pid)
    assert (result.signal, result.core_dumped) == (signal.SIGSEGV, True)
    assert any(p.name.startswith("core") for p in tmp_path.iterdir())


def test_wait4_reports_resource_usage():
    def idle() -> None:
        pass

    def allocate_and_burn() -> None:
        data = b"\xa5" * (50 * MiB)  # written, so resident
        start = time.process_time()
        while time.process_time() - start < 0.05:
            pass
        assert data[-1] == 0xA5

    with Child(idle) as small_child:
        small_child.join()
    with Child(allocate_and_burn) as big_child:
        big_child.join()
    small, big = small_child.result, big_child.result
    assert small.maxrss_kib > 0
    assert big.maxrss_kib >= 50 * 1024
    assert big.maxrss_kib - small.maxrss_kib >= 45 * 1024  # it is the child's own peak
    assert big.minflt > small.minflt
    assert big.majflt >= 0
    assert isinstance(big.utime, float) and isinstance(big.stime, float)
    assert big.utime + big.stime >= 0.04


def test_wait4_wnohang_returns_none_while_the_child_runs():
    r, w = os.pipe()
    pid = proc.fork()
    if pid == 0:
        try:
            os.close(w)
            os.read(r, 1)
        finally:
            os._exit(0)
    os.close(r)
    try:
        assert proc.wait4(pid, proc.WNOHANG) is None
    finally:
        os.close(w)  # EOF lets the child exit
    assert proc.wait4(pid).exit_code == 0


def test_wait4_on_a_process_that_is_not_our_child():
    with pytest.raises(ChildProcessError) as info:
        proc.wait4(1)
    assert info.value.errno == errno.ECHILD
    assert "wait4" in str(info.value)


@pytest.mark.skipif(WAIT4_SYSCALL_NR is None, reason="wait4 syscall number unknown here")
def test_wait4_runs_signal_handlers_and_resumes():
    parent = os.getpid()
    handled: list[int] = []

    def body() -> None:
        if not in_wait4(f"/proc/{parent}/task/{parent}"):
            raise AssertionError("the parent never blocked in wait4")
        os.kill(parent, signal.SIGUSR1)
        wait_for_parent()  # released by the parent's signal handler

    child: Child | None = None

    def on_usr1(signum: int, frame: object) -> None:
        handled.append(signum)
        assert child is not None
        child.release()

    previous = signal.signal(signal.SIGUSR1, on_usr1)
    try:
        with Child(body, gate=True) as child:
            child.join(wait_first=True)  # EINTR -> handler -> wait4 again -> exit
    finally:
        signal.signal(signal.SIGUSR1, previous)
    assert handled == [signal.SIGUSR1]


class _Interrupted(Exception):
    pass


@pytest.mark.skipif(WAIT4_SYSCALL_NR is None, reason="wait4 syscall number unknown here")
def test_wait4_propagates_an_exception_from_a_signal_handler():
    parent = os.getpid()

    def body() -> None:
        if not in_wait4(f"/proc/{parent}/task/{parent}"):
            raise AssertionError("the parent never blocked in wait4")
        os.kill(parent, signal.SIGUSR1)
        wait_for_parent()

    def on_usr1(signum: int, frame: object) -> None:
        raise _Interrupted

    previous = signal.signal(signal.SIGUSR1, on_usr1)
    try:
        with Child(body, gate=True) as child:
            with pytest.raises(_Interrupted):
                proc.wait4(child.pid)
            child.release()
            child.join()
    finally:
        signal.signal(signal.SIGUSR1, previous)


@pytest.mark.skipif(WAIT4_SYSCALL_NR is None, reason="wait4 syscall number unknown here")
def test_wait4_releases_the_gil():
    # A thread can only see the main thread blocked in wait4 and release the child if wait4 let
    # go of the GIL; otherwise the child's alarm ends it and the exit status says so.
    main_tid = threading.main_thread().native_id
    before = proc.thread_count()

    def body() -> None:
        signal.signal(signal.SIGALRM, signal.SIG_DFL)
        signal.alarm(30)
        wait_for_parent()

    seen: list[bool] = []
    with Child(body, gate=True) as child:
        def releaser() -> None:
            seen.append(in_wait4(f"/proc/self/task/{main_tid}"))
            if seen[-1]:
                child.release()

        thread = threading.Thread(target=releaser)
        thread.start()
        try:
            child.join(wait_first=True)
        finally:
            join_thread(thread, before)
    assert seen == [True]


def test_wait_result_decodes_a_status():
    exited = proc.WaitResult(42, 3 << 8, maxrss_kib=10, utime=0.5)
    assert (exited.exit_code, exited.signal, exited.core_dumped) == (3, None, False)
    killed = proc.WaitResult(42, signal.SIGSEGV | 0x80)
    assert (killed.exit_code, killed.signal, killed.core_dumped) == (None, signal.SIGSEGV, True)
    assert exited.as_dict() == {
        "pid": 42, "status": 3 << 8, "exit_code": 3, "signal": None, "core_dumped": False,
        "maxrss_kib": 10, "utime": 0.5, "stime": 0.0, "minflt": 0, "majflt": 0,
    }
    assert exited == proc.WaitResult(42, 3 << 8, maxrss_kib=10, utime=0.5)
    assert exited != killed
    assert "exit_code=3" in repr(exited)
    assert pickle.loads(pickle.dumps(exited)) == exited


# -- clone -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("flag", sorted(NAMESPACES))
def test_clone_creates_the_namespace(flag):
    name = NAMESPACES[flag]
    with clone_child(lambda: ns_inode(name), getattr(proc, flag)) as child:
        assert child.join() != ns_inode(name)


def test_clone_newnet_has_only_loopback():
    def body() -> Any:
        return socket.if_nameindex(), ns_inode("net")

    with clone_child(body, proc.CLONE_NEWNET) as child:
        interfaces, net = child.join()
    assert interfaces == [(1, "lo")]
    assert net != ns_inode("net")


def test_clone_newuser_newnet_with_id_maps():
    def body() -> Any:
        wait_for_parent()
        with open("/proc/self/setgroups") as f:
            setgroups = f.read().strip()
        return (os.getuid(), os.getgid(), setgroups, socket.if_nameindex(),
                ns_inode("user"), ns_inode("net"))

    with clone_child(body, proc.CLONE_NEWUSER | proc.CLONE_NEWNET, gate=True) as child:
        with open(f"/proc/{child.pid}/uid_map") as f:
            assert f.read() == ""  # a new user namespace starts without maps
        proc.write_id_maps(child.pid, f"0 {os.getuid()} 1", f"0 {os.getgid()} 1")
        child.release()
        uid, gid, setgroups, interfaces, user, net = child.join()
    assert (uid, gid, setgroups) == (0, 0, "deny")
    assert interfaces == [(1, "lo")]
    assert user != ns_inode("user")
    assert net != ns_inode("net")


def test_clone_newpid_child_is_pid_one():
    def body() -> Any:
        with Child(os.getpid) as grandchild:
            grandchild_pid = grandchild.join()
        return os.getpid(), os.getppid(), grandchild_pid

    with clone_child(body, proc.CLONE_NEWPID) as child:
        inside = child.join()
    assert inside == (1, 0, 2)
    assert child.pid > 1 and child.result.pid == child.pid


def test_clone_newuts_hostname_is_private():
    ours = socket.gethostname()

    def body() -> str:
        socket.sethostname("tach-clone-test")
        return socket.gethostname()

    with clone_child(body, proc.CLONE_NEWUTS) as child:
        assert child.join() == "tach-clone-test"
    assert socket.gethostname() == ours


@pytest.mark.parametrize("flags", [0x100, 0x11, proc.CLONE_NEWNET | 0x10000, 1 << 40])
def test_clone_accepts_only_namespace_flags(flags):
    bad = flags & ~flags_of(*NAMESPACES)
    with pytest.raises(ValueError, match=f"bad bits: {bad:#x}"):
        proc.clone(flags)


def test_clone_rejects_negative_and_non_integer_flags():
    with pytest.raises(ValueError, match="non-negative"):
        proc.clone(-1)
    with pytest.raises(TypeError):
        proc.clone(1.0)


def test_clone_refuses_a_process_with_a_second_thread():
    release = threading.Event()
    before = proc.thread_count()
    thread = threading.Thread(target=release.wait)
    thread.start()
    try:
        assert proc.thread_count() == before + 1
        with pytest.raises(RuntimeError, match=f"{before + 1} threads.*single-threaded"):
            proc.clone(proc.CLONE_NEWNET)
        # clone(0) is fork(), which glibc makes safe with threads around
        assert run(lambda: "forked") == "forked"
    finally:
        release.set()
        join_thread(thread, before)


def test_a_refused_clone_raises_oserror_and_leaves_the_parent_usable():
    def body() -> Any:
        events: list[str] = []
        os.register_at_fork(after_in_parent=lambda: events.append("after_in_parent"))
        os.setgid(65534)
        os.setuid(65534)  # drops CAP_SYS_ADMIN, so a new network namespace is refused
        try:
            pid = proc.clone(proc.CLONE_NEWNET)
        except OSError as e:
            error = (e.errno, e.strerror)
        else:  # cloned after all: end the child, and fail in the test
            if pid == 0:
                os._exit(0)
            proc.wait4(pid)
            error = None
        after_clone = list(events)
        import_lock_held = _imp.lock_held()  # taken by PyOS_BeforeFork
        forked = run(lambda: "fine")
        return error, after_clone, import_lock_held, forked

    (err, message), events, import_lock_held, forked = run(body)
    assert err == errno.EPERM
    assert message.startswith("clone: ")
    assert events == ["after_in_parent"]
    assert not import_lock_held
    assert forked == "fine"


# -- thread_count, unshare -------------------------------------------------------------------------

def test_thread_count_counts_threads():
    before = proc.thread_count()
    assert before == len(os.listdir("/proc/self/task"))
    release = threading.Event()
    thread = threading.Thread(target=release.wait)
    thread.start()
    try:
        assert proc.thread_count() == before + 1
    finally:
        release.set()
        join_thread(thread, before)


def test_unshare_in_a_forked_child():
    names = ("net", "uts", "ipc", "mnt")

    def body() -> Any:
        try:
            proc.unshare(flags_of("CLONE_NEWNET", "CLONE_NEWUTS", "CLONE_NEWIPC", "CLONE_NEWNS"))
        except OSError as e:
            if e.errno in REFUSED:
                return ("refused", str(e))
            raise
        return [ns_inode(name) for name in names], socket.if_nameindex()

    outcome = run(body)
    if outcome[0] == "refused":
        pytest.skip(f"the kernel refused unshare: {outcome[1]}")
    inodes, interfaces = outcome
    for name, inode in zip(names, inodes, strict=True):
        assert inode != ns_inode(name), name
    assert interfaces == [(1, "lo")]


def test_unshare_user_namespace_and_map_own_ids():
    uid, gid = os.getuid(), os.getgid()

    def body() -> Any:
        try:
            proc.unshare(proc.CLONE_NEWUSER)
        except OSError as e:
            if e.errno in REFUSED:
                return ("refused", str(e))
            raise
        proc.write_id_maps(0, f"0 {uid} 1", f"0 {gid} 1")
        with open("/proc/self/uid_map") as f:
            uid_map = f.read().split()
        return os.getuid(), os.getgid(), uid_map

    outcome = run(body)
    if outcome[0] == "refused":
        pytest.skip(f"the kernel refused unshare: {outcome[1]}")
    assert outcome == (0, 0, ["0", str(uid), "1"])


def test_unshare_and_write_id_maps_errors():
    def body() -> Any:
        errors = []
        for call in (lambda: proc.unshare(0x1),
                     lambda: proc.write_id_maps(os.getpid(), "0 0 1", "0 0 1")):
            try:
                call()
            except OSError as e:
                errors.append((e.errno, e.strerror))
        return errors

    # 0x1 is not an unshare flag; the ids of a process outside a new user namespace are fixed
    (unshare_errno, unshare_msg), (maps_errno, maps_msg) = run(body)
    assert unshare_errno == errno.EINVAL and unshare_msg.startswith("unshare: ")
    assert maps_errno == errno.EPERM and maps_msg.startswith("write(/proc/")


def test_interface_up_brings_loopback_up_in_a_new_network_namespace():
    def body() -> Any:
        try:
            proc.unshare(proc.CLONE_NEWNET)
        except OSError as e:
            if e.errno in REFUSED:
                return ("refused", str(e))
            raise
        results = []
        for step in ("down", "up"):
            if step == "up":
                proc.interface_up("lo")
            with socket.socket() as server:
                try:
                    server.bind(("127.0.0.1", 0))
                    server.listen()
                    with socket.create_connection(server.getsockname(), timeout=2):
                        results.append((step, "connected"))
                except OSError as e:
                    results.append((step, errno.errorcode[e.errno]))
        with socket.socket(socket.AF_INET6) as server6:
            server6.bind(("::1", 0))  # ::1 comes with lo up
        return results

    outcome = run(body)
    if outcome[0] == "refused":
        pytest.skip(f"the kernel refused unshare: {outcome[1]}")
    # lo starts down: nothing, not even 127.0.0.1, is reachable
    assert outcome[1] == ("up", "connected")
    assert outcome[0][0] == "down" and outcome[0][1] in ("ENETUNREACH", "EADDRNOTAVAIL")


def test_interface_up_errors():
    with pytest.raises(OSError) as info:
        proc.interface_up("tach-nonesuch")
    assert info.value.errno == errno.ENODEV and "SIOCGIFFLAGS" in str(info.value)
    with pytest.raises(ValueError):
        proc.interface_up("x" * 20)


def test_setns_enters_a_namespace_held_by_a_file_descriptor():
    def can_unshare() -> Any:
        try:
            proc.unshare(proc.CLONE_NEWNET)
        except OSError as e:
            if e.errno in REFUSED:
                return ("refused", str(e))
            raise
        return ("ok",)

    allowed = run(can_unshare)
    if allowed[0] == "refused":
        pytest.skip(f"the kernel refused unshare: {allowed[1]}")
    # A child makes a namespace and stays in it until this process holds it by fd.
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            proc.unshare(proc.CLONE_NEWNET)
            os.write(write, b"x")
            time.sleep(30)
        finally:
            os._exit(0)
    try:
        os.read(read, 1)
        fd = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        inode = os.fstat(fd).st_ino
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        os.close(read)
        os.close(write)
    try:

        def enter() -> Any:
            proc.setns(fd, proc.CLONE_NEWNET)
            return ns_inode("net"), socket.if_nameindex()

        assert run(enter) == (inode, [(1, "lo")])  # the namespace outlived its last process

        def wrong_kind() -> Any:
            try:
                proc.setns(fd, proc.CLONE_NEWNS)
            except OSError as e:
                return e.errno, e.strerror
            return None

        err, message = run(wrong_kind)
        assert err == errno.EINVAL and message.startswith("setns: ")
    finally:
        os.close(fd)


def test_mount_tmpfs_in_a_new_mount_namespace_is_private():
    marker = f"tach-mount-{os.getpid()}"

    def body() -> Any:
        try:
            proc.unshare(proc.CLONE_NEWNS)
        except OSError as e:
            if e.errno in REFUSED:
                return ("refused", str(e))
            raise
        proc.mount(None, "/", None, proc.MS_REC | proc.MS_SLAVE)
        proc.mount("tmpfs", "/tmp", "tmpfs", proc.MS_NOSUID | proc.MS_NODEV, "mode=1777")
        with open(f"/tmp/{marker}", "w") as f:
            f.write("x")
        return sorted(os.listdir("/tmp"))

    outcome = run(body)
    if outcome[0] == "refused":
        pytest.skip(f"the kernel refused unshare: {outcome[1]}")
    assert outcome == [marker]
    assert not os.path.exists(f"/tmp/{marker}")  # the host's /tmp never saw it


def test_mount_errors_name_the_target():
    def body() -> Any:
        try:
            proc.mount("tmpfs", "/nonexistent/tach", "tmpfs")
        except OSError as e:
            return e.errno, e.strerror
        return None

    err, message = run(body)
    assert err in (errno.ENOENT, errno.EPERM) and message.startswith("mount(/nonexistent/tach)")
    with pytest.raises(ValueError):
        proc.mount("a", None)  # type: ignore[arg-type]


# -- pdeathsig, subreaper --------------------------------------------------------------------------

def test_pdeathsig_is_cleared_in_children_and_settable():
    def body() -> Any:
        initial = proc.get_pdeathsig()
        proc.set_pdeathsig(signal.SIGTERM, parent_pid=os.getppid())
        armed = proc.get_pdeathsig()
        proc.set_pdeathsig(0)
        return initial, armed, proc.get_pdeathsig()

    assert run(body) == (0, signal.SIGTERM, 0)


def test_fork_arms_the_parent_death_signal_before_any_python_code_runs_in_the_child():
    # The interpreter's at-fork hooks are the first Python code a child runs: the signal must be
    # armed by then, or a parent killed in between leaves the child running.
    seen: list[int] = []
    os.register_at_fork(after_in_child=lambda: seen.append(proc.get_pdeathsig()))
    r, w = os.pipe()
    pid = proc.fork(signal.SIGTERM)
    if pid == 0:
        try:
            os.close(r)
            os.write(w, f"{seen[-1]} {proc.get_pdeathsig()}\n".encode())
        finally:
            os._exit(0)
    os.close(w)
    at_hook, later = map(int, read_line(r).split())
    os.close(r)
    assert proc.wait4(pid).exit_code == 0
    assert (at_hook, later) == (signal.SIGTERM, signal.SIGTERM)
    assert proc.get_pdeathsig() == 0  # the parent's own setting is untouched
    assert proc.EXIT_PARENT_GONE not in (0, 1, 2, 3, 4, 5)


def test_pdeathsig_kills_a_grandchild_when_its_parent_exits():
    # The grandchild is not our child: a pidfd tells us when it dies. The test process is also a
    # subreaper for the duration, so that it can reap the orphan (and see what killed it) instead
    # of leaving a zombie to an init that might not reap.
    assert not proc.get_child_subreaper()
    ready_r, ready_w = os.pipe()
    gate_r, gate_w = os.pipe()
    hold_r, hold_w = os.pipe()
    ours = {ready_r, ready_w, gate_r, gate_w, hold_r, hold_w}

    def close(fd: int) -> None:
        ours.discard(fd)
        os.close(fd)

    proc.set_child_subreaper(True)
    try:
        pid = proc.fork()
        if pid == 0:  # the child: forks the grandchild, then exits when told to
            try:
                os.close(ready_r)
                os.close(gate_w)
                me = os.getpid()
                if proc.fork() == 0:  # the grandchild
                    try:
                        os.close(gate_r)
                        os.close(hold_w)
                        proc.set_pdeathsig(signal.SIGKILL, parent_pid=me)
                        os.write(ready_w, f"{os.getpid()}\n".encode())
                        os.read(hold_r, 1)  # until SIGKILL, or EOF if the test gives up
                    finally:
                        os._exit(0)
                os.read(gate_r, 1)
            finally:
                os._exit(0)
        for fd in (ready_w, gate_r, hold_r):
            close(fd)
        grandchild = int(read_line(ready_r))
        pidfd = proc.pidfd_open(grandchild)
        ours.add(pidfd)
        assert not poll_readable(pidfd, 0)
        os.write(gate_w, b"x")  # the child exits
        assert proc.wait4(pid).exit_code == 0
        assert poll_readable(pidfd, 10_000), "the grandchild outlived its parent"
        orphan = proc.wait4(grandchild)  # re-parented to us, the subreaper
        assert orphan.signal == signal.SIGKILL
    finally:
        proc.set_child_subreaper(False)
        for fd in sorted(ours):
            close(fd)


def test_child_subreaper_adopts_orphans():
    def subreaper() -> Any:
        proc.set_child_subreaper()
        assert proc.get_child_subreaper()
        r, w = os.pipe()
        middle = proc.fork()
        if middle == 0:
            try:
                me = os.getpid()
                if proc.fork() == 0:
                    try:
                        os.close(r)
                        # the middle process exits at once; wait until we are re-parented
                        deadline = time.monotonic() + 10
                        while os.getppid() == me and time.monotonic() < deadline:
                            os.sched_yield()
                        os.write(w, f"{os.getppid()}\n".encode())
                    finally:
                        os._exit(0)
            finally:
                os._exit(0)
        os.close(w)
        assert proc.wait4(middle).exit_code == 0
        adopted_by = int(read_line(r))
        os.close(r)
        orphan = proc.wait4(-1)  # the only child left: the orphan
        return adopted_by, os.getpid(), orphan.exit_code

    adopted_by, subreaper_pid, exit_code = run(subreaper)
    assert adopted_by == subreaper_pid
    assert exit_code == 0


def test_set_pdeathsig_detects_a_parent_that_already_exited():
    def subreaper() -> Any:
        proc.set_child_subreaper()
        r, w = os.pipe()
        middle = proc.fork()
        if middle == 0:
            try:
                gate_r, gate_w = os.pipe()
                me = os.getpid()
                if proc.fork() == 0:  # the grandchild
                    try:
                        os.close(gate_r)
                        pidfd = proc.pidfd_open(me)
                        os.write(gate_w, b"x")  # parent: exit now
                        poll_readable(pidfd, 10_000)  # the parent is gone, we are re-parented
                        try:
                            proc.set_pdeathsig(signal.SIGKILL, parent_pid=me)
                            outcome = "no error"
                        except ProcessLookupError as e:
                            outcome = f"{e.errno} {e.strerror}"
                        os.write(w, f"{outcome}\n".encode())
                    finally:
                        os._exit(0)
                os.close(gate_w)
                os.read(gate_r, 1)
            finally:
                os._exit(0)
        os.close(w)
        assert proc.wait4(middle).exit_code == 0
        outcome = read_line(r).decode().strip()
        os.close(r)
        assert proc.wait4(-1).exit_code == 0  # the orphan, re-parented to us
        return outcome, os.getpid()

    outcome, subreaper_pid = run(subreaper)
    assert outcome.startswith(f"{errno.ESRCH} set_pdeathsig: parent ")
    assert f"getppid() is {subreaper_pid}" in outcome


# -- pidfd -----------------------------------------------------------------------------------------

def test_pidfd_ends_a_child_and_outlives_its_pid():
    r, w = os.pipe()
    pid = proc.fork()
    if pid == 0:
        try:
            os.close(w)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            os.read(r, 1)
        finally:
            os._exit(0)
    os.close(r)
    pidfd = proc.pidfd_open(pid)
    try:
        assert not os.get_inheritable(pidfd)  # CLOEXEC
        assert not poll_readable(pidfd, 0)
        proc.pidfd_send_signal(pidfd, signal.SIGTERM)
        assert poll_readable(pidfd, 10_000)
        assert proc.wait4(pid).signal == signal.SIGTERM
        with pytest.raises(ProcessLookupError, match="pidfd_send_signal"):
            proc.pidfd_send_signal(pidfd, 0)  # reaped: the pidfd never names a recycled pid
    finally:
        os.close(pidfd)
        os.close(w)


def test_pidfd_errors_carry_errno_and_call():
    with pytest.raises(OSError) as info:
        proc.pidfd_open(-5)
    assert info.value.errno == errno.EINVAL
    assert info.value.strerror.startswith("pidfd_open: ")
    r, w = os.pipe()
    try:
        with pytest.raises(OSError) as info:
            proc.pidfd_send_signal(r, 0)
        assert info.value.errno == errno.EBADF
        assert "pidfd_send_signal" in str(info.value)
    finally:
        os.close(r)
        os.close(w)


# -- resource limits -------------------------------------------------------------------------------

def test_rlimit_constants_and_values_match_the_resource_module():
    assert proc.RLIM_INFINITY == resource.RLIM_INFINITY
    for name in ("RLIMIT_AS", "RLIMIT_DATA", "RLIMIT_CORE", "RLIMIT_NOFILE", "RLIMIT_CPU"):
        value = getattr(proc, name)
        assert value == getattr(resource, name)
        assert proc.getrlimit(value) == resource.getrlimit(value)


def test_setrlimit_as_makes_a_big_allocation_fail():
    def body() -> Any:
        with open("/proc/self/status") as f:
            vm_kib = next(int(line.split()[1]) for line in f if line.startswith("VmSize:"))
        hard = proc.getrlimit(proc.RLIMIT_AS)[1]
        limit = vm_kib * 1024 + 64 * MiB
        proc.setrlimit(proc.RLIMIT_AS, limit)  # hard=None keeps the hard limit
        small = len(bytearray(MiB))
        try:
            bytearray(256 * MiB)
            big = "allocated"
        except MemoryError:
            big = "MemoryError"
        return proc.getrlimit(proc.RLIMIT_AS) == (limit, hard), small, big

    assert run(body) == (True, MiB, "MemoryError")


def test_setrlimit_infinity_round_trips():
    def body() -> Any:
        proc.setrlimit(proc.RLIMIT_CORE, 4096, proc.RLIM_INFINITY)
        finite = proc.getrlimit(proc.RLIMIT_CORE)
        proc.setrlimit(proc.RLIMIT_CORE, proc.RLIM_INFINITY)
        return finite, proc.getrlimit(proc.RLIMIT_CORE), resource.getrlimit(resource.RLIMIT_CORE)

    assert run(body) == ((4096, -1), (-1, -1), (-1, -1))


def test_setrlimit_errors():
    with pytest.raises(ValueError, match="RLIM_INFINITY"):
        proc.setrlimit(proc.RLIMIT_CORE, -2)

    def body() -> Any:
        try:
            proc.setrlimit(proc.RLIMIT_CORE, 10, 5)  # soft above hard
        except OSError as e:
            return e.errno, e.strerror.split(":")[0]
        return None

    assert run(body) == (errno.EINVAL, "setrlimit")


# -- freed interpreter blocks ----------------------------------------------------------------------

#: A function whose frame does not fit in what is left of the frame stack's current chunk: each
#: call maps a chunk for it, and its return unmaps it (CPython's data stack).
BIG_FRAME = (
    "def big_frame():\n" + "".join(f"    v{i} = {i}\n" for i in range(3000)) + "    return v0\n"
)

KEEP_FREED_BLOCKS = f"""
import os
from tach._native import proc

ns = {{}}
exec({BIG_FRAME!r}, ns)
big_frame = ns["big_frame"]

def reused_by(calls):
    before = proc.freed_block_stats()[0]
    for _ in range(calls):
        big_frame()
    return proc.freed_block_stats()[0] - before

print("before", reused_by(100))
proc.keep_freed_blocks(1 << 20)
print("kept", reused_by(100))
reused, kept_bytes, kept_blocks = proc.freed_block_stats()
print("budget", kept_bytes <= 1 << 20, kept_blocks)
pid = os.fork()
if pid == 0:
    print("child", reused_by(100), flush=True)
    os._exit(0)
os.waitpid(pid, 0)
proc.keep_freed_blocks(0)
print("none", reused_by(100) <= 1)
"""


def test_freed_frame_stack_chunks_are_kept_for_reuse_also_after_fork():
    out = subprocess.run(
        [sys.executable, "-c", KEEP_FREED_BLOCKS], capture_output=True, text=True, check=True
    ).stdout.split("\n")
    assert out[0] == "before 0"  # the interpreter's own allocator: every call maps afresh
    assert out[1] in ("kept 99", "kept 100")  # the first call's chunk is kept, then reused
    assert out[2] == "budget True 1"
    assert out[3] == "child 100"
    assert out[4] == "none True"
