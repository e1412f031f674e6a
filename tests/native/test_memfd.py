"""tach._native.memfd.LogBuffer: a memfd that a test process's fds 1 and 2 write into, read back by
another process without touching file offsets."""

from __future__ import annotations

import ctypes
import errno
import fcntl
import io
import os
import socket
import subprocess
import sys

import pytest

from tach._native import memfd, proc

LogBuffer = memfd.LogBuffer



def open_fds() -> set[int]:
    return {int(name) for name in os.listdir("/proc/self/fd")} - {_listdir_fd()}


def _listdir_fd() -> int:
    # os.listdir opens the directory itself; the number it used is the lowest free one.
    probe = os.dup(0)
    os.close(probe)
    return probe


def fork_and_wait(body) -> proc.WaitResult:
    """Run ``body()`` in a forked child that exits 0 if it returns, 1 if it raises."""
    pid = proc.fork()
    if pid == 0:
        code = 1
        try:
            body()
            code = 0
        finally:
            os._exit(code)
    return proc.wait4(pid)


def test_write_then_read_back():
    with LogBuffer() as buf:
        assert buf.size() == 0
        assert buf.read_all() == b""
        fd = buf.fileno()
        os.write(fd, b"hello ")
        os.write(fd, b"world")
        assert buf.size() == 11
        assert buf.read_all() == b"hello world"
        assert buf.read(6) == b"world"
        assert buf.read(0, 5) == b"hello"
        assert buf.read(3, 100) == b"lo world"
        assert buf.read(11) == buf.read(50) == b""
        assert buf.read(2, 0) == b""
        assert buf.read_tail(5) == b"world"
        assert buf.read_tail(100) == b"hello world"
        assert buf.read_tail(0) == b""


def test_reads_match_a_reference_for_random_writes(rand):
    with LogBuffer() as buf:
        reference = bytearray()
        for _ in range(200):
            chunk = rand.randbytes(rand.randrange(0, 5000))
            os.write(buf.fileno(), chunk)
            reference += chunk
            offset = rand.randrange(0, len(reference) + 10)
            size = rand.choice([-1, rand.randrange(0, 9000)])
            end = len(reference) if size == -1 else offset + size
            assert buf.read(offset, size) == reference[offset:end], rand
            n = rand.randrange(0, len(reference) + 10)
            assert buf.read_tail(n) == reference[max(0, len(reference) - n):], rand
        assert buf.size() == len(reference)
        assert buf.read_all() == reference


def test_reads_do_not_depend_on_or_move_the_file_offset():
    with LogBuffer() as buf:
        os.write(buf.fileno(), b"0123456789")
        os.lseek(buf.fileno(), 4, os.SEEK_SET)
        assert buf.read_all() == b"0123456789"
        assert buf.read_tail(3) == b"789"
        assert os.lseek(buf.fileno(), 0, os.SEEK_CUR) == 4
        assert os.read(buf.fileno(), 2) == b"45"


def test_every_writer_appends():
    with LogBuffer() as buf:
        assert fcntl.fcntl(buf.fileno(), fcntl.F_GETFL) & os.O_APPEND
        writer = os.dup(buf.fileno())  # what redirect() makes: the same open file description
        try:
            os.write(buf.fileno(), b"first ")
            os.lseek(writer, 0, os.SEEK_SET)
            os.write(writer, b"second")  # not over "first"
        finally:
            os.close(writer)
        assert buf.read_all() == b"first second"


def test_reset_then_write_starts_at_zero():
    with LogBuffer() as buf:
        writer = os.dup(buf.fileno())
        try:
            os.write(writer, b"old output")
            buf.reset()
            assert buf.size() == 0
            assert buf.read_all() == b""
            os.write(writer, b"new")  # O_APPEND: at 0, no hole where "old output" was
            assert buf.read_all() == b"new"
            assert buf.size() == 3
        finally:
            os.close(writer)


def test_redirect_in_a_forked_child_captures_every_writer():
    with LogBuffer() as buf:
        def child() -> None:
            buf.redirect((1, 2), save=False)
            sys.stdout = io.TextIOWrapper(io.FileIO(1, "w", closefd=False), line_buffering=True)
            sys.stderr = io.TextIOWrapper(io.FileIO(2, "w", closefd=False), line_buffering=True)
            print("python stdout")
            print("python stderr", file=sys.stderr)
            subprocess.run(["/bin/echo", "echo subprocess"], check=True)
            subprocess.run(["/bin/sh", "-c", "echo sh stderr >&2"], check=True)
            os.write(1, b"os.write\n")
            libc = ctypes.CDLL(None, use_errno=True)
            line = b"libc write(2)\n"
            assert libc.write(2, line, len(line)) == len(line)

        result = fork_and_wait(child)
        assert result.exit_code == 0, result
        assert buf.read_all() == (
            b"python stdout\npython stderr\necho subprocess\nsh stderr\nos.write\nlibc write(2)\n"
        )


def test_attach_reads_a_buffer_made_by_another_process():
    parent_sock, child_sock = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)

    def child() -> None:
        parent_sock.close()
        with LogBuffer("child-log") as own:
            socket.send_fds(child_sock, [b"fd"], [own.fileno()])
            own.redirect((1, 2), save=False)
            os.write(1, b"written after the hand-over\n")
            subprocess.run(["/bin/echo", "from a grandchild"], check=True)

    try:
        pid = proc.fork()
        if pid == 0:
            code = 1
            try:
                child()
                code = 0
            finally:
                os._exit(code)
        child_sock.close()
        _, (fd,), _, _ = socket.recv_fds(parent_sock, 16, 1)
        try:
            attached = LogBuffer.attach(fd)
        finally:
            os.close(fd)  # attach() made its own copy
        assert proc.wait4(pid).exit_code == 0
        with attached:
            assert attached.fileno() != fd
            assert attached.read_all() == b"written after the hand-over\nfrom a grandchild\n"
    finally:
        parent_sock.close()
        child_sock.close()


def test_redirect_and_restore_round_trip_on_a_spare_fd():
    before = open_fds()
    r, w = os.pipe()
    try:
        assert not os.get_inheritable(w)
        with LogBuffer() as buf:
            buf.redirect((w,))
            assert os.get_inheritable(w)  # subprocesses must inherit a redirected fd
            assert os.path.samestat(os.fstat(w), os.fstat(buf.fileno()))
            os.write(w, b"to the buffer")
            buf.restore()
            assert not os.get_inheritable(w)  # its FD_CLOEXEC came back with it
            os.write(w, b"to the pipe")
            assert os.read(r, 100) == b"to the pipe"
            assert buf.read_all() == b"to the buffer"
            buf.restore()  # idempotent
    finally:
        os.close(r)
        os.close(w)
    assert open_fds() == before


def test_redirect_onto_an_unused_fd_and_restore_closes_it():
    with LogBuffer() as buf:
        spare = max(open_fds()) + 10  # a free descriptor number
        buf.redirect([spare])
        os.write(spare, b"x")
        assert buf.read_all() == b"x"
        buf.restore()
        with pytest.raises(OSError) as info:
            os.fstat(spare)
        assert info.value.errno == errno.EBADF


def test_close_restores_saved_fds():
    r, w = os.pipe()
    try:
        with LogBuffer() as buf:
            buf.redirect((w,))
        os.write(w, b"pipe again")
        assert os.read(r, 100) == b"pipe again"
    finally:
        os.close(r)
        os.close(w)


def test_redirect_twice_restores_the_original():
    r, w = os.pipe()
    try:
        with LogBuffer() as first, LogBuffer() as second:
            first.redirect((w,))
            first.redirect((w,))  # saving again must not save the memfd as "the original"
            second.redirect((w,))
            os.write(w, b"second")
            first.restore()
            os.write(w, b"pipe")
            assert os.read(r, 100) == b"pipe"
            second.restore()  # puts back what it saw: the first buffer's memfd
            os.write(w, b"first")
            assert (first.read_all(), second.read_all()) == (b"first", b"second")
    finally:
        os.close(r)
        os.close(w)


def test_redirect_without_save_outlives_close():
    spare = os.dup(0)
    try:
        buf = LogBuffer()
        buf.redirect((spare,), save=False)
        buf.close()
        os.write(spare, b"still here")  # the redirected fd keeps the file alive
        with LogBuffer.attach(spare) as again:
            assert again.read_all() == b"still here"
    finally:
        os.close(spare)


def test_redirect_refuses_its_own_descriptors():
    spare = os.dup(0)
    try:
        with LogBuffer() as buf:
            with pytest.raises(ValueError, match="belongs to this LogBuffer"):
                buf.redirect((buf.fileno(),))
            before = open_fds()
            buf.redirect((spare,))
            (saved_copy,) = open_fds() - before
            with pytest.raises(ValueError, match="belongs to this LogBuffer"):
                buf.redirect((saved_copy,))
            with pytest.raises(ValueError, match="bad file descriptor"):
                buf.redirect((-1,))
    finally:
        os.close(spare)


def test_cloexec_flag_and_fd_above_stdio():
    with LogBuffer() as default, LogBuffer(cloexec=False) as inheritable:
        assert not os.get_inheritable(default.fileno())
        assert os.get_inheritable(inheritable.fileno())
        assert os.readlink(f"/proc/self/fd/{default.fileno()}") == "/memfd:tach-log (deleted)"

    def child() -> None:
        os.close(0)
        with LogBuffer("low") as buf:
            assert buf.fileno() > 2  # fd 0 was free, but would be clobbered by redirect
            with pytest.raises(OSError):
                os.fstat(0)

    assert fork_and_wait(child).exit_code == 0


def test_no_fd_leak_over_1000_buffers():
    def round_trip() -> None:
        for i in range(1000):
            buf = LogBuffer()
            os.write(buf.fileno(), b"x")
            if i % 2:
                buf.close()
            else:
                del buf  # __dealloc__ closes it
        spare = os.dup(0)
        try:
            for _ in range(100):
                with LogBuffer() as buf:
                    buf.redirect((spare,))
                    buf.restore()
                    buf.redirect((spare,))  # close() restores this one
        finally:
            os.close(spare)

    before = len(open_fds())
    round_trip()
    after_one = len(open_fds())
    round_trip()
    assert before == after_one == len(open_fds())


@pytest.mark.parametrize(
    "operation",
    [
        lambda b: b.fileno(),
        lambda b: b.size(),
        lambda b: b.read_all(),
        lambda b: b.read(),
        lambda b: b.read_tail(1),
        lambda b: b.reset(),
        lambda b: b.redirect((1,)),
        lambda b: b.__enter__(),
    ],
    ids=["fileno", "size", "read_all", "read", "read_tail", "reset", "redirect", "enter"],
)
def test_operations_on_a_closed_buffer_raise_value_error(operation):
    buf = LogBuffer()
    buf.close()
    with pytest.raises(ValueError, match="closed"):
        operation(buf)


def test_close_is_idempotent_and_closes_the_fd():
    buf = LogBuffer()
    fd = buf.fileno()
    assert not buf.closed
    assert repr(buf) == f"<LogBuffer 'tach-log' fd={fd}>"
    buf.close()
    buf.close()
    buf.restore()
    assert buf.closed
    assert repr(buf) == "<LogBuffer 'tach-log' closed>"
    assert fd not in open_fds()


def test_errors():
    with pytest.raises(ValueError, match="NUL"):
        LogBuffer("a\0b")
    with pytest.raises(OSError) as info:
        LogBuffer("x" * 300)  # longer than the kernel's 249-byte limit
    assert info.value.errno == errno.EINVAL
    assert info.value.strerror.startswith("memfd_create: ")
    with pytest.raises(OSError) as info:
        LogBuffer.attach(-1)
    assert info.value.errno == errno.EBADF
    r, w = os.pipe()
    try:
        with pytest.raises(ValueError, match="not a regular file"):
            LogBuffer.attach(r)
    finally:
        os.close(r)
        os.close(w)
    with LogBuffer() as buf:
        with pytest.raises(ValueError):
            buf.read(-1)
        with pytest.raises(ValueError):
            buf.read(0, -2)
        with pytest.raises(ValueError):
            buf.read_tail(-1)
        with pytest.raises(RuntimeError):
            buf.__init__()


def test_module_exposes_only_the_buffer():
    assert [name for name in dir(memfd) if not name.startswith("_")] == ["LogBuffer"]
