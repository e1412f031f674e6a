"""A shared memory segment left behind: multiprocessing's resource tracker, started in the
test's process, unlinks it once that process has ended, and says so on its stderr."""

import os
from multiprocessing import shared_memory

NAME = os.environ.get("TACH_E2E_SHM", f"tach-e2e-{os.getpid()}")


def test_leaves_shared_memory():
    segment = shared_memory.SharedMemory(name=NAME, create=True, size=16)
    segment.close()  # and not unlinked


def test_next():
    pass
