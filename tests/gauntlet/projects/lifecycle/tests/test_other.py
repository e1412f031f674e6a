import os
import time
from pathlib import Path

SIGNALS = Path(os.environ.get("LIFECYCLE_DIR", "."))


def test_other_waits():
    (SIGNALS / f"running-{os.getpid()}").write_text("running")
    time.sleep(3600)


def test_other_never():
    pass
