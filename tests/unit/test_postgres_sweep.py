"""``tests/postgres.py``'s sweep: the clusters of test processes killed before they could stop
them are stopped and removed by the next session; nobody else's are touched."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.postgres import PREFIX, YOUNG_SECONDS, _alive, sweep_abandoned


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def _cluster_dir(base: Path, name: str, owner: int | None) -> Path:
    root = base / f"{PREFIX}{name}"
    (root / "data").mkdir(parents=True)
    if owner is not None:
        (root / "owner").write_text(f"{owner}\n")
    return root


def test_clusters_of_dead_owners_are_stopped_and_removed_others_kept(tmp_path: Path) -> None:
    dead = _cluster_dir(tmp_path, "dead", _dead_pid())
    live = _cluster_dir(tmp_path, "live", os.getpid())
    young = _cluster_dir(tmp_path, "young", None)
    old = _cluster_dir(tmp_path, "old", None)
    long_ago = time.time() - YOUNG_SECONDS - 60
    os.utime(old, (long_ago, long_ago))
    # a server left running by the dead owner: a process this test did not start as its child
    # (a daemon, as pg_ctl makes the postmaster), so that it is reaped by someone else
    # (SIGQUIT, PostgreSQL's immediate shutdown, is what a background job of sh ignores:
    # restored, it ends this stand-in as it ends a postmaster; it says so before the sweep)
    stand_in = (
        f"{sys.executable} -c 'import signal, time; "
        "signal.signal(signal.SIGQUIT, signal.SIG_DFL); print(\"ready\", flush=True); "
        "time.sleep(120)'"
    )
    shell = subprocess.Popen(
        ["sh", "-c", f"{stand_in} 2>/dev/null & echo $!"], stdout=subprocess.PIPE, text=True
    )
    assert shell.stdout is not None
    postmaster = int(shell.stdout.readline())
    assert shell.stdout.readline() == "ready\n"
    shell.stdout.close()
    shell.wait()
    (dead / "data" / "postmaster.pid").write_text(f"{postmaster}\n{dead / 'data'}\n")
    try:
        swept = sweep_abandoned(tmp_path)
        assert sorted(swept) == sorted([dead, old])
        assert not dead.exists() and not old.exists()
        assert live.exists() and young.exists()
        assert not _alive(postmaster)
    finally:
        if _alive(postmaster):
            os.kill(postmaster, signal.SIGKILL)
