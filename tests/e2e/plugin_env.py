"""A virtualenv with the pytest plugins of ``plugin-requirements.txt``, for the e2e tests that
run Tach and pytest on projects that use them.

The plugins are not in Tach's own test environment: pytest-randomly would shuffle Tach's own
suite and pytest-benchmark would add its header to every run. The virtualenv is made once per
checkout and Python version (``.venv-plugins-3.X`` at the root, remade when the requirements
change) and reaches Tach through a ``.pth`` file naming the checkout when its native modules
are built in place there (the development install), or has Tach installed from the checkout
otherwise (a tox environment).
"""

from __future__ import annotations

import fcntl
import hashlib
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
REQUIREMENTS = Path(__file__).with_name("plugin-requirements.txt")
VENV = ROOT / f".venv-plugins-{sys.version_info.major}.{sys.version_info.minor}"


def plugin_python() -> Path:
    """The interpreter of the plugins' virtualenv, made or brought up to date first."""
    stamp = VENV / "requirements.sha256"
    wanted = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()
    python = VENV / "bin" / "python"
    VENV.parent.mkdir(parents=True, exist_ok=True)
    with open(ROOT / ".venv-plugins.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # tests of several sessions may ask at once
        if python.exists() and stamp.exists() and stamp.read_text() == wanted:
            return python
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(VENV)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", "-r", str(REQUIREMENTS)],
            check=True,
        )
        site = subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        Path(site, "tach-checkout.pth").write_text(f"{ROOT}\n")
        probe = [str(python), "-c", "import tach._native.proc"]
        if subprocess.run(probe, capture_output=True, cwd=VENV).returncode:
            # no native modules built in place for this Python: install Tach from the checkout
            Path(site, "tach-checkout.pth").unlink()
            subprocess.run([str(python), "-m", "pip", "install", "-q", str(ROOT)], check=True)
        stamp.write_text(wanted)
    return python
