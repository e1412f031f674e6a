import os
import signal
from pathlib import Path

import pytest


def zygote_pid() -> int:
    """The topmost ancestor that is a fork of Tach's zygote (workers and test processes are)."""
    pid = os.getpid()
    while True:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
        parent = int(stat[stat.rindex(b")") + 2 :].split()[1])
        if b"tach.zygote" not in Path(f"/proc/{parent}/cmdline").read_bytes():
            return pid
        pid = parent


@pytest.fixture
def kill_zygote():
    """Kill the zygote, as many times in the run as KILL_ZYGOTE_TIMES says."""
    counter = Path(os.environ["ZYGOTE_DEATH_DIR"]) / "kills"
    done = len(counter.read_text()) if counter.exists() else 0
    if done < int(os.environ.get("KILL_ZYGOTE_TIMES", "1")):
        with counter.open("a") as file:
            file.write("x")
        os.kill(zygote_pid(), signal.SIGKILL)
        signal.pause()  # the worker dies with its zygote
