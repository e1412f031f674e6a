import os
import time
from pathlib import Path

import pytest

SIGNALS = Path(os.environ.get("LIFECYCLE_DIR", "."))


@pytest.fixture
def resource():
    yield
    (SIGNALS / f"teardown-{os.getpid()}").write_text("torn down")


def test_first():
    pass


def test_waits(resource):
    (SIGNALS / f"running-{os.getpid()}").write_text("running")
    time.sleep(3600)


def test_never():
    pass
