"""A test that holds the run until it is told to go on, for interrupting the run mid-test.

It runs only when TACH_TEST_WAIT_DIR names a directory: it writes ``started`` there once the
test database is in use, then waits for ``release`` to appear."""

import os
import time
from pathlib import Path

import pytest

from library.models import Author

WAIT_DIR = os.environ.get("TACH_TEST_WAIT_DIR")


@pytest.mark.skipif(not WAIT_DIR, reason="TACH_TEST_WAIT_DIR is not set")
@pytest.mark.django_db
def test_waits_for_release():
    Author.objects.create(name="Waiting")
    Path(WAIT_DIR, "started").write_text(str(os.getpid()))
    deadline = time.monotonic() + 120
    while not Path(WAIT_DIR, "release").exists():
        assert time.monotonic() < deadline, "never released"
        time.sleep(0.01)
