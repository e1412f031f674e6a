import ctypes
import mmap
import os
import signal
import tempfile


def test_before():
    pass


def test_segv():
    ctypes.string_at(0)


def test_abrt():
    os.abort()


def test_bus():
    with tempfile.TemporaryFile() as file:
        file.truncate(mmap.PAGESIZE)
        mapping = mmap.mmap(file.fileno(), mmap.PAGESIZE)
        file.truncate(0)
        mapping[0]  # the page is beyond the end of the file: SIGBUS


def test_fpe():
    os.kill(os.getpid(), signal.SIGFPE)


def test_kill():
    os.kill(os.getpid(), signal.SIGKILL)


def test_term():
    os.kill(os.getpid(), signal.SIGTERM)


def test_after():
    pass
