"""Head and tail of a process's output, with what was dropped said in the middle."""

from __future__ import annotations

import os

from tach._native.memfd import LogBuffer
from tach.protocol import output_excerpt


def test_short_output_is_kept_whole():
    with LogBuffer("excerpt") as buffer:
        os.write(buffer.fileno(), b"hello\n")
        assert output_excerpt(buffer) == "hello\n"


def test_long_output_keeps_head_and_tail_and_counts_the_rest():
    with LogBuffer("excerpt") as buffer:
        os.write(buffer.fileno(), b"H" * 100 + b"m" * 10_000 + b"T" * 100)
        text = output_excerpt(buffer, head=100, tail=100)
        assert text == "H" * 100 + "\n[... 10000 bytes of output dropped ...]\n" + "T" * 100
