"""``--keep-warm``: runs from a per-user server that keeps the warm layers between commands.

The first run with ``--keep-warm`` (or ``[tool.tach] keep_warm = true``, ``TACH_KEEP_WARM=1``)
starts a base layer as a server (:mod:`tach.base`) and asks it to keep the session layer it made
(pytest configured, conftests loaded, test modules imported); later runs with the same pytest
arguments in the same directory borrow that session layer and fork their run zygote from it,
so that none of that is done again. A layer that went stale is replaced, never used
(``docs/watch.md``, "Never a stale module").

Which server a run talks to is decided by everything the base's imports depend on: the
interpreter, the directory and its ``sys.path`` rules, Tach's version and the environment
(less the variables that only describe the terminal or the login session). A run from another
interpreter or another environment gets a server of its own. The sockets live in a directory
only the user can open (``$XDG_RUNTIME_DIR/tach``, else ``/tmp/tach-UID``), checked before use,
and each end checks the other's uid (``SO_PEERCRED``).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import stat
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from tach import __version__
from tach.lifecycle.layers import LayerError, StaleLayer, WarmBase, WarmSession

if TYPE_CHECKING:
    from tach.config import RunConfig
    from tach.discovery.ini import CollectOptions

#: Environment variables that describe the terminal or the login session, not what a test
#: imports: a run that differs only in them uses the same server.
VOLATILE_ENV = frozenset(
    {
        "_",
        "COLUMNS",
        "LINES",
        "TERM",
        "COLORTERM",
        "TERM_PROGRAM",
        "TERM_PROGRAM_VERSION",
        "TERM_SESSION_ID",
        "PWD",
        "OLDPWD",
        "SHLVL",
        "PS1",
        "PS2",
        "DISPLAY",
        "WINDOWID",
        "TMUX",
        "TMUX_PANE",
        "STY",
        "SSH_AUTH_SOCK",
        "SSH_AGENT_PID",
        "SSH_CLIENT",
        "SSH_CONNECTION",
        "SSH_TTY",
        "GPG_TTY",
        "LS_COLORS",
        "HISTFILE",
        "HISTSIZE",
        "DBUS_SESSION_BUS_ADDRESS",
        "XDG_SESSION_ID",
        "XDG_SESSION_TYPE",
        "XDG_SESSION_CLASS",
        "WINDOWPATH",
        "LESSOPEN",
        "LESSCLOSE",
        "MAIL",
    }
)
#: What the first answer of a server may take (it imports before it answers).
START_TIMEOUT_S = 300.0
#: How long ``tach server stop`` waits for the server to end.
STOP_TIMEOUT_S = 30.0


class ServerError(RuntimeError):
    """The server cannot be used (its directory is not private, say); the message says why."""


def runtime_dir() -> Path:
    """The directory of this user's server sockets, made private if new and checked if not."""
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    base = Path(xdg) / "tach" if xdg and os.path.isdir(xdg) else Path(f"/tmp/tach-{os.getuid()}")
    with contextlib.suppress(FileExistsError):
        base.mkdir(mode=0o700, parents=False)
    info = base.lstat()
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
        raise ServerError(
            f"{base} is not a directory of this user: remove it, or set XDG_RUNTIME_DIR"
        )
    if info.st_mode & 0o077:
        raise ServerError(
            f"{base} can be opened by other users (mode {stat.S_IMODE(info.st_mode):o}): "
            f"`chmod 700 {base}`"
        )
    return base


def server_key(config: RunConfig, invocation_dir: Path, rootdir: Path) -> str:
    """What decides which server a run may use (see the module docstring)."""
    from tach.runner import cwd_on_path, run_environment

    env = run_environment(config) or dict(os.environ)
    relevant = {k: v for k, v in sorted(env.items()) if k not in VOLATILE_ENV}
    material = {
        "python": os.path.realpath(config.python),
        "python_given": config.python,
        "tach": __version__,
        "invocation_dir": str(invocation_dir),
        "rootdir": str(rootdir),
        "cwd_on_path": cwd_on_path(),
        "python_path": config.python_path,
        "warm_imports": config.warm_imports,
        "env": relevant,
    }
    return hashlib.sha256(orjson.dumps(material)).hexdigest()[:24]


def session_key(config: RunConfig) -> str:
    """Which kept session layer a run may borrow: one made for the same pytest arguments."""
    material = {"args": config.pytest_args, "junit_xml": bool(config.junit_xml)}
    return hashlib.sha256(orjson.dumps(material)).hexdigest()[:24]


def connect_or_start(
    config: RunConfig, invocation_dir: Path, rootdir: Path, imports: Any
) -> tuple[WarmBase, bool]:
    """The server for this run, started if there is none (``imports()``: what a new one
    imports); whether it was started now."""
    directory = runtime_dir()
    key = server_key(config, invocation_dir, rootdir)
    path = str(directory / f"{key}.sock")
    with open(directory / f"{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one start at a time
        try:
            return _connected(path), False
        except OSError:
            pass
        log = directory / f"{key}.log"
        _start_server(config, invocation_dir, rootdir, path, log, imports())
        try:
            base = _connected(path)
        except (OSError, LayerError) as exc:
            raise ServerError(f"the Tach server did not start ({exc}); its log is {log}") from exc
        if base.ready.get("failures"):
            # an import failed part-way in the base: what it did would be done twice; a base
            # with pytest alone is always right
            stop_server(base)
            _start_server(config, invocation_dir, rootdir, path, log, [])
            base = _connected(path)
        return base, True


def _connected(path: str) -> WarmBase:
    from tach.protocol import peer_uid

    base = WarmBase.connect(path)
    if peer_uid(base.client.link.sock) != os.getuid():
        base.close()
        raise ServerError(f"{path} is served by another user's process")
    base.wait_ready(START_TIMEOUT_S)
    return base


def _start_server(
    config: RunConfig,
    invocation_dir: Path,
    rootdir: Path,
    path: str,
    log: Path,
    imports: list[str],
) -> None:
    from tach.runner import cwd_on_path, run_environment

    spec = {
        "listen": path,
        "idle_timeout": config.keep_warm_idle,
        "rootdir": str(rootdir),
        "imports": imports,
        "python_path": config.python_path,
        "cwd_on_path": cwd_on_path(),
    }
    env = dict(run_environment(config) or os.environ)
    with open(log, "ab") as out:
        # It forks once it listens and this child exits: the server belongs to no one.
        subprocess.run(
            [config.python, "-m", "tach.base", orjson.dumps(spec).decode()],
            cwd=invocation_dir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            check=False,
            timeout=START_TIMEOUT_S,
        )


def stop_server(base: WarmBase) -> None:
    """Ask the server to end, and wait until it has (with everything below it)."""
    import select

    from tach._native import proc

    pid = 0
    with contextlib.suppress(OSError, LayerError):
        pid = int(base.request({"op": "stop"})[0].get("pid") or 0)
    base.close()
    try:
        pidfd = proc.pidfd_open(pid) if pid else -1
    except OSError:  # already gone
        return
    if pidfd >= 0:
        try:
            select.select([pidfd], [], [], STOP_TIMEOUT_S)  # readable once it has exited
        finally:
            os.close(pidfd)


def run_kept_warm(
    config: RunConfig,
    first_reading: CollectOptions,
    rootdir: Path,
    invocation_dir: Path,
    retain: list[object] | None,
) -> int | None:
    """Run from the server's warm layers; None when this run is not one for them (pytest
    only shows something: ``--fixtures``, ``--version``...), and the caller runs it cold."""
    from tach.discovery.ini import ConfigError
    from tach.lifecycle.layers import base_imports
    from tach.runner import discover_for_run

    def imports() -> list[str]:
        try:
            found = discover_for_run(first_reading, invocation_dir)
        except ConfigError:
            return list(config.warm_imports)
        return base_imports(found, rootdir) + list(config.warm_imports)

    base, started = connect_or_start(config, invocation_dir, rootdir, imports)
    try:
        for _attempt in range(3):
            try:
                return _run(config, base, started, invocation_dir, retain)
            except StaleLayer:  # the base itself: a new server
                stop_server(base)
                base, started = connect_or_start(config, invocation_dir, rootdir, imports)
        raise LayerError("the server's layers went stale three times in a row")
    finally:
        base.close()


def _run(
    config: RunConfig,
    base: WarmBase,
    base_started: bool,
    invocation_dir: Path,
    retain: list[object] | None,
) -> int | None:
    """One run from ``base``: a borrowed session layer, else a new one it keeps."""
    from tach import lifecycle
    from tach.reporter import Reporters
    from tach.runner import exit_code, plan_and_run, run_spec
    from tach.scheduler import load_durations

    key = session_key(config)
    for _attempt in range(3):
        session = base.lease(key)
        fresh = session is None
        if session is None:
            session = _new_session(config, base, invocation_dir)
            if isinstance(session, int):
                return session
        try:
            configured = session.configured
            assert configured is not None
            if configured.get("informational"):
                return None
            found = _discover(config, configured, invocation_dir)
            if isinstance(found, int):
                return found
            if fresh:
                if not _prepare(config, session, found, invocation_dir):
                    return 3
                base.keep(key, session)
            rootdir = Path(found.result.rootdir)
            supervisor = lifecycle.Supervisor(
                run_spec(config, invocation_dir, load_durations(rootdir / ".tach")),
                Reporters([]),
                decide_exit=exit_code,
            )
            supervisor.spec.run_info = {
                "warm": {
                    "base": "started" if base_started else "reused",
                    "session": "started" if fresh else "reused",
                }
            }
            supervisor.layer = session
            try:
                return plan_and_run(
                    config, supervisor, found, supervisor.spec.durations, invocation_dir, retain
                )
            except StaleLayer:
                if fresh:
                    raise  # a session layer stale as soon as made: its base is
                base.drop(key)
        finally:
            session.close()
    raise LayerError("the kept session layer went stale three times in a row")


def _new_session(config: RunConfig, base: WarmBase, invocation_dir: Path) -> WarmSession | int:
    """A new session layer, configured; pytest's exit code when it refused to start."""
    from tach.runner import session_spec

    session = base.new_session(session_spec(config, invocation_dir))
    configured = session.wait_configured()
    if configured is None:
        try:
            code = session.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            code = 3
        output = session.output()
        session.close()
        if code == 0:  # pytest answered without a session (``--version``, say)
            sys.stdout.write(output)
            return 0
        sys.stderr.write(output)
        return code if code > 0 else 3
    return session


def _discover(config: RunConfig, configured: dict[str, Any], invocation_dir: Path) -> Any:
    from tach.config import apply_pytest_options
    from tach.discovery.ini import ConfigError
    from tach.runner import check_debugging, check_expressions, discover_for_run, pytest_options

    apply_pytest_options(config, configured)
    try:
        check_expressions(config)
        check_debugging(config)
        return discover_for_run(pytest_options(configured, invocation_dir), invocation_dir)
    except ConfigError as exc:
        sys.stderr.write(f"ERROR: {exc}\n")
        return 4


def _prepare(config: RunConfig, session: WarmSession, found: Any, invocation_dir: Path) -> bool:
    from tach.runner import session_plan

    if session.prepare(session_plan(config, found, invocation_dir)) is None:
        sys.stderr.write(session.output() or "the session layer stopped while it prepared\n")
        return False
    return True


# -- tach server status|stop ------------------------------------------------------------------


def server_command(words: Sequence[str]) -> int:
    """``tach server status`` (every server of this user) and ``tach server stop [--all]`` (the
    servers started in this directory, or all of them)."""
    action = words[0] if words else "status"
    every = "--all" in words[1:]
    unknown = [word for word in words[1:] if word != "--all"]
    if action not in ("status", "stop") or unknown:
        sys.stderr.write("usage: tach server status | tach server stop [--all]\n")
        return 4
    try:
        directory = runtime_dir()
    except ServerError as exc:
        sys.stderr.write(f"ERROR: {exc}\n")
        return 4
    found = 0
    for path in sorted(directory.glob("*.sock")):
        try:
            base = WarmBase.connect(str(path))
            base.wait_ready(5.0)
            status, _ = base.request({"op": "status"})
        except (OSError, LayerError):
            with contextlib.suppress(OSError):
                path.unlink()  # a server that is gone
            continue
        here = status.get("invocation_dir") == os.getcwd()
        if action == "stop" and (every or here):
            stop_server(base)
            print(f"stopped the server {status.get('pid')} ({status.get('invocation_dir')})")
            found += 1
            continue
        base.close()
        if action == "status":
            found += 1
            print(describe(status))
    if not found:
        print("no Tach server is running" + ("" if every or action == "status" else " here"))
    return 0


def describe(status: dict[str, Any]) -> str:
    """A server's status, for people."""
    now = time.time()
    lines = [
        f"server {status.get('pid')}: {status.get('invocation_dir')} "
        f"({status.get('python')}), up {now - float(status.get('started', now)):.0f} s, "
        f"{status.get('modules')} modules imported, "
        f"stops after {float(status.get('idle_timeout') or 0):.0f} s without a client"
    ]
    if status.get("stale"):
        lines.append(f"  stale (replaced at the next run): {', '.join(status['stale'][:3])}")
    for session in status.get("sessions", []):
        args = " ".join(session.get("args") or []) or "(no arguments)"
        state = "in use" if session.get("leased") else "idle"
        lines.append(f"  session {session.get('pid')} [{state}]: pytest {args}")
    return "\n".join(lines)
