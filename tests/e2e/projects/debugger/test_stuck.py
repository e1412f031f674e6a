import os
import time
from pathlib import Path


def wait_for(path):
    Path(os.environ["STUCK_STARTED"]).touch()  # the test is in here now
    while not path.exists():
        time.sleep(0.01)


def test_stuck():
    wait_for(Path(os.environ["STUCK_RELEASE"]))
