"""``attempt()``: how many times the calling test has run, counted in a file under $COUNTER_DIR
(so that it survives the process a crash ends)."""

import os
from pathlib import Path

import pytest


@pytest.fixture
def attempt(request):
    def count():
        path = Path(os.environ["COUNTER_DIR"], request.node.name)
        number = int(path.read_text()) + 1 if path.exists() else 1
        path.write_text(str(number))
        return number

    return count
