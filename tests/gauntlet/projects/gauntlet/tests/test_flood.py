import os
import sys

CHUNK = "x" * 1023 + "\n"
MB = 1 << 20


def test_before():
    pass


def test_flood_passes():
    for _ in range(25 * MB // len(CHUNK)):
        sys.stdout.write(CHUNK)
        sys.stderr.write(CHUNK)


def test_flood_fails():
    sys.stdout.write("FLOOD-HEAD\n")
    for _ in range(25 * MB // len(CHUNK)):
        sys.stdout.write(CHUNK)
        sys.stderr.write(CHUNK)
    sys.stdout.write("FLOOD-TAIL\n")
    raise AssertionError("flooded")


def test_flood_then_crash():
    block = (CHUNK * 1024).encode()
    os.write(1, b"CRASH-HEAD\n")
    for _ in range(50):
        os.write(1, block)
    os.write(1, b"CRASH-TAIL\n")
    os._exit(9)


def test_after():
    pass
