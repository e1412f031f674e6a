import os
import sys

MB = 1 << 20
LINE = "y" * 1023 + "\n"


def test_flood_captured():
    # 50 MB to each of stdout and stderr, through pytest's capture; then a failure.
    for _ in range(50 * MB // len(LINE)):
        sys.stdout.write(LINE)
        sys.stderr.write(LINE)
    raise AssertionError("flooded")


def test_flood_raw_then_crash():
    # 50 MB to each of fds 1 and 2 with os.write (past sys-level capture), then a crash.
    block = (LINE * 1024).encode()
    for _ in range(50):
        os.write(1, block)
        os.write(2, block)
    os._exit(5)


def test_after():
    pass
