import sys

import pytest

# Bound when the module is imported, as pytest's collection imports it: with capture on,
# these are the capture's stand-ins, the very objects a test sees (a real suite compares them
# by identity).
STREAMS = [sys.stdout, sys.stderr]


@pytest.mark.parametrize("stream", STREAMS, ids=["stdout", "stderr"])
def test_streams_bound_at_import_are_the_tests_streams(stream):
    assert stream is sys.stdout or stream is sys.stderr


def test_output_is_captured(capsys):
    print("hello from a test")
    assert capsys.readouterr().out == "hello from a test\n"
