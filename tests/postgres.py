"""A throwaway PostgreSQL cluster for tests.

``cluster()`` makes a temporary directory, runs ``initdb`` (trust authentication, superuser
``postgres``) and starts the server listening on 127.0.0.1 at a free port and on a Unix socket in
a directory of its own; it yields the connection parameters once the server accepts connections
(``pg_ctl -w``). On the way out, also when the tests failed or were interrupted, it stops the
server (``-m fast``, then ``-m immediate``, then SIGKILL) and removes the directory.

A process killed outright (SIGKILL, a timeout's) cannot stop its cluster: the directory names
the process that made it (``owner``), and the next ``cluster()`` stops and removes every cluster
whose owner is gone (:func:`sweep_abandoned`).

PostgreSQL refuses to run as root: as root, the cluster's files and processes belong to
``nobody``. The binaries are Debian's (``/usr/lib/postgresql/VERSION/bin``, the newest version),
else the ones on ``PATH``.
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import glob
import os
import pwd
import re
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

SUPERUSER = "postgres"
UNPRIVILEGED = "nobody"
PREFIX = "tach-postgres-"
#: A cluster directory with no ``owner`` file yet is left alone for this long (being made).
YOUNG_SECONDS = 600
MISSING = (
    "PostgreSQL is not installed: the tests that use a PostgreSQL server need its binaries "
    "(initdb, pg_ctl, postgres, psql). On Debian or Ubuntu install the `postgresql` package "
    "(apt-get install --no-install-recommends postgresql)."
)


class PostgresMissing(RuntimeError):
    """No PostgreSQL server binaries were found."""


def find_bindir() -> Path:
    """The directory of the newest PostgreSQL's server binaries."""
    found = []
    for initdb in glob.glob("/usr/lib/postgresql/*/bin/initdb"):
        version = Path(initdb).parents[1].name
        key = tuple(int(part) for part in re.findall(r"\d+", version))
        found.append((key, Path(initdb).parent))
    if found:
        return max(found)[1]
    initdb = shutil.which("initdb")
    if initdb and shutil.which("pg_ctl", path=str(Path(initdb).parent)):
        return Path(initdb).parent
    raise PostgresMissing(MISSING)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclasses.dataclass(frozen=True)
class Postgres:
    """A running cluster: how to reach it, and where its files are."""

    host: str
    port: int
    user: str
    socket_dir: Path
    data_dir: Path
    log_file: Path
    bindir: Path

    def psql(self, sql: str, dbname: str = "postgres") -> list[str]:
        """The rows ``sql`` returns, one ``|``-separated line each (``psql -At``)."""
        result = subprocess.run(
            [
                str(self.bindir / "psql"),
                "-X",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                self.host,
                "-p",
                str(self.port),
                "-U",
                self.user,
                "-d",
                dbname,
                "-Atc",
                sql,
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if result.returncode:
            raise RuntimeError(f"psql -c {sql!r} failed ({result.returncode}):\n{result.stderr}")
        return result.stdout.splitlines()

    def databases(self) -> set[str]:
        """The names of the cluster's databases."""
        return set(self.psql("select datname from pg_database"))

    def log_position(self) -> int:
        """Where the server's log ends now: what :meth:`log` is given to read what follows."""
        return self.log_file.stat().st_size

    def log(self, since: int = 0) -> str:
        """The server's log from byte ``since`` on (it logs every CREATE and DROP DATABASE)."""
        with open(self.log_file, "rb") as f:
            f.seek(since)
            return f.read().decode(errors="replace")


class _Cluster:
    """The processes and files of one cluster, and how to end them."""

    def __init__(self) -> None:
        self.bindir = find_bindir()
        self.user: pwd.struct_passwd | None = None
        if os.geteuid() == 0:
            self.user = pwd.getpwnam(UNPRIVILEGED)
        self.started = False
        self.root = Path(tempfile.mkdtemp(prefix=PREFIX))
        (self.root / "owner").write_text(f"{os.getpid()}\n")
        self.data_dir = self.root / "data"
        self.socket_dir = self.root / "socket"
        self.log_file = self.root / "server.log"

    def prepare(self) -> None:
        """The socket directory and the log file, and the whole directory given to the
        cluster's owner."""
        self.socket_dir.mkdir()
        self.log_file.touch()
        if self.user is not None:
            for path in (self.root, self.socket_dir, self.log_file):
                os.chown(path, self.user.pw_uid, self.user.pw_gid)

    def run(self, *args: str | Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """A PostgreSQL binary of ``bindir``, as the cluster's owner, in the cluster's root."""
        extra: dict = {}
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith("PG")  # the caller's PGDATABASE, PGHOST... are not ours
        }
        env["LC_ALL"] = "C"
        if self.user is not None:
            extra = {"user": self.user.pw_uid, "group": self.user.pw_gid, "extra_groups": []}
            env["HOME"] = str(self.root)
            env["USER"] = env["LOGNAME"] = self.user.pw_name
        command = [str(self.bindir / str(args[0])), *map(str, args[1:])]
        return subprocess.run(
            command,
            cwd=self.root,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            **extra,
        )

    def initdb(self) -> None:
        result = self.run(
            "initdb",
            "-D",
            self.data_dir,
            "-U",
            SUPERUSER,
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
            "--no-instructions",
        )
        if result.returncode:
            raise RuntimeError(
                f"initdb failed ({result.returncode}):\n{result.stdout}{result.stderr}"
            )

    def start(self, attempts: int = 5) -> int:
        """Start the server on a free port; return the port."""
        for _ in range(attempts):
            port = free_port()
            options = " ".join(
                [
                    "-c listen_addresses=127.0.0.1",
                    f"-c port={port}",
                    f"-c unix_socket_directories={self.socket_dir}",
                    # a throwaway cluster: durability is not wanted, speed is
                    "-c fsync=off",
                    "-c synchronous_commit=off",
                    "-c full_page_writes=off",
                    # what tests read from the log: every CREATE/DROP DATABASE
                    "-c log_statement=ddl",
                    "-c log_line_prefix='%m [%p] %d '",
                ]
            )
            self.started = True  # from here on, stop() has something to try
            start = ("pg_ctl", "-D", self.data_dir, "-l", self.log_file, "-o", options)
            result = self.run(*start, "-w", "-t", "60", "start")
            if result.returncode == 0:
                return port
            log = self.log_file.read_text(errors="replace")
            self.stop()
            if "could not bind" not in log and "Address already in use" not in log:
                raise RuntimeError(
                    f"pg_ctl start failed ({result.returncode}):\n{result.stdout}"
                    f"{result.stderr}\nserver log:\n{log}"
                )
        raise RuntimeError(f"PostgreSQL found no free port in {attempts} attempts")

    def postmaster_pid(self) -> int | None:
        with contextlib.suppress(OSError, ValueError, IndexError):
            return int((self.data_dir / "postmaster.pid").read_text().split()[0])
        return None

    def stop(self) -> None:
        """Stop the server, however it is: fast, then immediate, then SIGKILL."""
        if not self.started:
            return
        self.started = False
        for mode in ("fast", "immediate"):
            if not (self.data_dir / "postmaster.pid").exists():
                return
            stop = ("pg_ctl", "-D", self.data_dir, "-m", mode, "-w", "-t", "30", "stop")
            with contextlib.suppress(subprocess.TimeoutExpired):
                if self.run(*stop, timeout=40).returncode == 0:
                    return
        pid = self.postmaster_pid()
        if pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)

    def close(self) -> None:
        try:
            self.stop()
        finally:
            self.remove()


def sweep_abandoned(directory: Path | None = None) -> list[Path]:
    """Stop and remove the clusters whose owner process is gone; return their directories.
    A cluster whose owner lives (another test session's) is left alone, and so is a young
    directory that names no owner yet."""
    swept = []
    base = Path(directory or tempfile.gettempdir())
    for root in base.glob(f"{PREFIX}*"):
        try:
            owner = int((root / "owner").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            try:
                young = time.time() - root.stat().st_mtime < YOUNG_SECONDS
            except OSError:
                continue
            if young:
                continue
            owner = None
        if owner is not None and _alive(owner):
            continue
        postmaster = None
        with contextlib.suppress(OSError, ValueError, IndexError):
            postmaster = int((root / "data" / "postmaster.pid").read_text().split()[0])
        if postmaster is not None and _alive(postmaster):
            _end(postmaster)
        shutil.rmtree(root, ignore_errors=True)
        swept.append(root)
    return swept


def _end(pid: int, grace: float = 30) -> None:
    """End a process that is not this one's child: PostgreSQL's immediate shutdown (SIGQUIT),
    waited for on a pidfd (readable once the process is dead), then SIGKILL."""
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    try:
        os.kill(pid, signal.SIGQUIT)
        if not select.select([pidfd], [], [], grace)[0]:
            os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    finally:
        os.close(pidfd)


def _alive(pid: int) -> bool:
    """Whether process ``pid`` exists and is not a zombie (dead, waiting to be reaped)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


@contextlib.contextmanager
def cluster() -> Iterator[Postgres]:
    """A running throwaway cluster, stopped and removed on the way out (and the clusters of
    processes that were killed before they could stop theirs, first)."""
    sweep_abandoned()
    state = _Cluster()
    # a process that ends without unwinding this context (a second Ctrl-C, say) still stops it
    atexit.register(state.close)
    try:
        state.prepare()
        state.initdb()
        port = state.start()
        yield Postgres(
            host="127.0.0.1",
            port=port,
            user=SUPERUSER,
            socket_dir=state.socket_dir,
            data_dir=state.data_dir,
            log_file=state.log_file,
            bindir=state.bindir,
        )
    finally:
        state.close()
        atexit.unregister(state.close)
