import os
import subprocess
import sys
import time
from pathlib import Path

SIGNALS = Path(os.environ.get("LIFECYCLE_DIR", "."))

DAEMON = (
    "import os, sys, time\n"
    "if os.fork() == 0:\n"
    "    os.setsid()\n"
    "    if os.fork() == 0:\n"
    "        open(sys.argv[1], 'w').write(str(os.getpid()))\n"
    "        time.sleep(3600)\n"
    "    os._exit(0)\n"
    "os.wait()\n"
)


def test_other_waits():
    # A helper daemonised in a session of its own, then a hang.
    pidfile = SIGNALS / f"daemon-{os.getpid()}"
    subprocess.run([sys.executable, "-c", DAEMON, str(pidfile)], check=True)
    while not pidfile.exists() or not pidfile.read_text():
        time.sleep(0.01)
    (SIGNALS / f"running-{os.getpid()}").write_text("running")
    time.sleep(3600)


def test_other_never():
    pass
