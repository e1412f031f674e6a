import ctypes
import os


def test_before():
    pass


def test_segfault():
    ctypes.string_at(0)


def test_exit():
    os._exit(3)


def test_after():
    pass
