import os
import shutil
import subprocess
import sys


def test_before():
    pass


def test_forks_and_returns():
    pid = os.fork()
    if pid == 0:
        return  # the child returns into pytest, as a careless test would
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def test_deletes_its_cwd(tmp_path, monkeypatch):
    doomed = tmp_path / "doomed"
    doomed.mkdir()
    monkeypatch.chdir(doomed)
    shutil.rmtree(doomed)


def test_leaves_a_daemon():
    # A double fork and setsid: the helper's parent is gone and it is in a session of its own.
    code = (
        "import os, time\n"
        "if os.fork() == 0:\n"
        "    os.setsid()\n"
        "    if os.fork() == 0:\n"
        "        time.sleep(3600)\n"
        "    os._exit(0)\n"
        "os.wait()\n"
    )
    subprocess.run([sys.executable, "-c", code, "gauntlet-daemon"], check=True)


def test_after():
    pass
