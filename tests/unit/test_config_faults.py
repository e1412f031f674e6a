"""The fault options' values: seconds and sizes, and the errors that name the option."""

from __future__ import annotations

import pytest

from tach.config import ConfigValueError, parse_seconds, parse_size


@pytest.mark.parametrize(
    ("text", "seconds"), [(None, 0.0), ("", 0.0), ("0", 0.0), ("1.5", 1.5), ("30", 30.0)]
)
def test_seconds(text, seconds):
    assert parse_seconds(text, "--timeout") == seconds


@pytest.mark.parametrize("text", ["soon", "-1", "inf", "nan"])
def test_bad_seconds_name_the_option(text):
    with pytest.raises(ConfigValueError, match="--timeout"):
        parse_seconds(text, "--timeout")


@pytest.mark.parametrize(
    ("text", "size"),
    [
        (None, 0),
        ("1048576", 1 << 20),
        ("512M", 512 << 20),
        ("512m", 512 << 20),
        ("2G", 2 << 30),
        ("64KiB", 64 << 10),
        ("1.5G", 3 << 29),
    ],
)
def test_sizes(text, size):
    assert parse_size(text, "--max-memory") == size


@pytest.mark.parametrize("text", ["12Q", "lots", "0", "-5M"])
def test_bad_sizes_name_the_option(text):
    with pytest.raises(ConfigValueError, match="--max-memory"):
        parse_size(text, "--max-memory")
