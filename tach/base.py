"""The base layer: pytest, the plugins' modules and third-party modules imported once, forking
session layers on request (``python -m tach.base SPEC``; see :mod:`tach.layers`).

It serves either the one supervisor that started it (``tach --watch``: the link it inherited;
it ends when that link closes) or, as the per-user server of ``--keep-warm``, every supervisor
of the same user that connects to its socket (it ends when no client has come for its idle
time, or on ``stop``). A server keeps the session layers its clients ask it to keep, one per
key (the pytest arguments and directory they were made for), and lends each to one client at a
time: holding a copy of the session's link, it keeps the session alive between commands.

Requests (``op``), each answered on the client's link:

* ``session`` {spec} + fds (control channel, session link, log): fork a session layer;
  ``started`` {pid} or ``stale`` {paths} (what changed since the base was warmed).
* ``keep`` {key, pid, info} + fd (a copy of the session's link): keep it; ``kept`` or
  ``not_kept``.
* ``lease`` {key}: ``leased`` {pid, info} + fd (a copy of the session's link), or ``none``.
* ``drop`` {key}: end the kept session of ``key``; ``dropped``.
* ``status``: ``status`` {pid, started, idle_timeout, modules, sessions, clients}.
* ``stop``: ``stopping``; the server ends its sessions and exits.

The base also reports ``exited`` {pid, status} to the client a session belongs to.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import os
import selectors
import signal
import socket
import sys
import time
from pathlib import Path
from typing import Any, NoReturn

import orjson

from tach import layers
from tach._native import proc
from tach.layers import ImportedFiles, site_directories
from tach.protocol import LayerLink, peer_uid

#: Files whose change means the installed packages may have changed (a base imported from the
#: old set is stale).
LOCK_FILES = (
    "poetry.lock",
    "uv.lock",
    "pdm.lock",
    "Pipfile.lock",
    "requirements.txt",
    "setup.py",
    "setup.cfg",
    "pyproject.toml",
)


#: How long the base waits, when it ends, for the processes below it to end.
END_GRACE_S = 10


class Client:
    """A connected supervisor and its link (the session it borrowed says so itself:
    :attr:`KeptSession.leased_by`)."""

    def __init__(self, link: LayerLink) -> None:
        self.link = link

    def send(self, message: dict[str, Any], fds: list[int] | tuple[int, ...] = ()) -> None:
        with contextlib.suppress(OSError):  # it went away: its end is seen on its link
            self.link.send(message, fds)


class KeptSession:
    """A session layer kept between commands: its link (a copy) and what its first client
    learnt from it (pytest's ``Configured``, its ``ready``)."""

    def __init__(self, pid: int, link_fd: int, info: dict[str, Any]) -> None:
        self.pid = pid
        self.link_fd = link_fd
        self.info = info
        self.leased_by: Client | None = None
        self.made = time.time()
        self.used = time.time()


class BaseLayer:
    """The base layer's state: what it imported, its clients, and its session layers."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.failures: dict[str, str] = {}
        self.imported: ImportedFiles | None = None
        self.sites: dict[str, int] = {}
        self.selector = selectors.DefaultSelector()
        self.clients: dict[int, Client] = {}
        #: pidfd -> (pid, the client it belongs to)
        self.sessions: dict[int, tuple[int, Client | None]] = {}
        self.kept: dict[str, KeptSession] = {}
        self.listener: socket.socket | None = None
        self.started = time.time()
        self.last_active = time.monotonic()
        self.idle_timeout = float(spec.get("idle_timeout") or 0.0)
        self.invocation_dir = os.getcwd()

    # -- warming ------------------------------------------------------------------------------

    def warm(self) -> None:
        """Import pytest and the modules the spec names, but for the modules pytest rewrites.

        pytest marks the modules of every installed plugin's distribution (and those named by
        ``PYTEST_PLUGINS``, and by ``-p``, which the client leaves out of the list) for
        assertion rewriting while it configures, and a module imported before then is not
        rewritten (pytest warns, which ``-W error`` makes fatal): those are left to the session
        layer, where pytest imports them itself.
        """
        import pytest  # noqa: F401  (what every session needs first)

        rewritten = modules_pytest_rewrites()
        rootdir = os.path.join(self.spec.get("rootdir") or "/nonexistent", "")
        for name in self.spec.get("imports", []):
            top = name.partition(".")[0]
            if top in rewritten or _project_module(top, rootdir):
                continue  # the session layer's, as pytest imports it
            before = set(sys.modules)
            try:
                importlib.import_module(name)
            except BaseException as exc:  # an import may raise anything, even SystemExit
                # What ran of it stays done (a registration, say) and would be done again by
                # the session's import: this base must not be used (see ``ready``).
                self.failures[name] = f"{type(exc).__name__}: {exc}"
                break
            pulled = rewritten & {added.partition(".")[0] for added in set(sys.modules) - before}
            if pulled:
                self.failures[name] = f"imports {', '.join(sorted(pulled))}, which pytest rewrites"
                break
        locks = [os.path.join(rootdir, name) for name in LOCK_FILES]
        self.imported = ImportedFiles.take(list(sys.modules.values()), locks)
        self.sites = {path: _mtime(path) for path in site_directories()}
        layers.BASE_MODULES = frozenset(sys.modules)
        layers.BASE_STALE = self.stale

    def stale(self) -> list[str]:
        """What changed since the base was warmed (empty when nothing did)."""
        assert self.imported is not None
        why = self.imported.changed()
        why += [path for path, mtime in self.sites.items() if _mtime(path) != mtime]
        return why

    # -- serving ------------------------------------------------------------------------------

    def serve(self) -> NoReturn:
        """Serve the inherited link (watch) or the socket (server) until the end."""
        gc.collect()
        gc.freeze()
        if "link_fd" in self.spec:
            client = self._add_client(LayerLink.from_fd(self.spec["link_fd"], "base layer link"))
            client.send(self.ready_message())
        if self.listener is not None:
            self.listener.setblocking(False)
            self.selector.register(self.listener.fileno(), selectors.EVENT_READ, "listener")
        while True:
            timeout = None
            if self.listener is not None and self.idle_timeout and not self.clients:
                timeout = max(0.0, self.last_active + self.idle_timeout - time.monotonic())
                if timeout == 0.0:
                    self.end()
            for key, _ in self.selector.select(timeout):
                if key.data == "listener":
                    self._accept()
                elif isinstance(key.data, Client):
                    self._on_request(key.data)
                else:
                    self._reap(key.fd)

    def ready_message(self) -> dict[str, Any]:
        from tach.zygote import python_threads

        return {
            "op": "ready",
            "pid": os.getpid(),
            "failures": self.failures,
            "python_threads": python_threads(),
            "modules": len(sys.modules),
        }

    def _add_client(self, link: LayerLink) -> Client:
        client = Client(link)
        self.clients[link.fileno()] = client
        self.selector.register(link.fileno(), selectors.EVENT_READ, client)
        self.last_active = time.monotonic()
        return client

    def _accept(self) -> None:
        assert self.listener is not None
        try:
            conn, _ = self.listener.accept()
        except (BlockingIOError, InterruptedError):
            return
        conn.setblocking(True)
        if peer_uid(conn) != os.getuid():  # only the user who started the server
            conn.close()
            return
        client = self._add_client(LayerLink(conn, "client link"))
        client.send(self.ready_message())

    def _drop_client(self, client: Client) -> None:
        self.selector.unregister(client.link.fileno())
        del self.clients[client.link.fileno()]
        client.link.close()
        for kept in self.kept.values():
            if kept.leased_by is client:
                kept.leased_by = None
                kept.used = time.time()
        for pidfd, (pid, owner) in list(self.sessions.items()):
            if owner is client:
                self.sessions[pidfd] = (pid, None)
        self.last_active = time.monotonic()
        if self.listener is None:  # the one supervisor of a watch is gone: so are we
            self.end()

    def _on_request(self, client: Client) -> None:
        try:
            received = client.link.recv()
        except Exception:
            received = None
        if received is None:
            self._drop_client(client)
            return
        request, fds = received
        op = request.get("op")
        handler = getattr(self, f"_op_{op}", None)
        if handler is None:
            for fd in fds:
                os.close(fd)
            client.send({"op": "error", "message": f"unknown request {op!r}"})
            return
        handler(client, request, fds)

    def _op_session(self, client: Client, request: dict[str, Any], fds: list[int]) -> None:
        why = self.stale()
        if why:
            for fd in fds:
                os.close(fd)
            client.send({"op": "stale", "paths": why})
            return
        parent = os.getpid()
        pid = proc.fork(signal.SIGKILL)
        if pid == 0:
            self._leave()
            # unwind the serving loop: pytest then runs at the depth of a cold zygote's stack
            # (a test of recursion limits sees the same headroom)
            raise BecomeSession(session_spec(request["spec"], fds, parent))
        for fd in fds:
            os.close(fd)
        pidfd = proc.pidfd_open(pid)
        self.sessions[pidfd] = (pid, client)
        self.selector.register(pidfd, selectors.EVENT_READ, None)
        client.send({"op": "started", "pid": pid})

    def _op_keep(self, client: Client, request: dict[str, Any], fds: list[int]) -> None:
        key, pid = str(request.get("key")), int(request.get("pid") or 0)
        alive = any(spid == pid for spid, _ in self.sessions.values())
        if not fds or not alive or key in self.kept or self.listener is None:
            for fd in fds:
                os.close(fd)
            client.send({"op": "not_kept"})
            return
        kept = KeptSession(pid, fds[0], dict(request.get("info") or {}))
        kept.leased_by = client
        self.kept[key] = kept
        for fd in fds[1:]:
            os.close(fd)
        client.send({"op": "kept"})

    def _op_lease(self, client: Client, request: dict[str, Any], fds: list[int]) -> None:
        for fd in fds:
            os.close(fd)
        kept = self.kept.get(str(request.get("key")))
        if kept is None or kept.leased_by is not None:
            client.send({"op": "none"})
            return
        kept.leased_by = client
        kept.used = time.time()
        client.send({"op": "leased", "pid": kept.pid, "info": kept.info}, [kept.link_fd])

    def _op_drop(self, client: Client, request: dict[str, Any], fds: list[int]) -> None:
        for fd in fds:
            os.close(fd)
        kept = self.kept.pop(str(request.get("key")), None)
        if kept is not None:
            self._end_session(kept)
        client.send({"op": "dropped"})

    def _op_status(self, client: Client, request: dict[str, Any], fds: list[int]) -> None:
        for fd in fds:
            os.close(fd)
        client.send(
            {
                "op": "status",
                "pid": os.getpid(),
                "invocation_dir": self.invocation_dir,
                "python": sys.executable,
                "started": self.started,
                "idle_timeout": self.idle_timeout,
                "modules": len(layers.BASE_MODULES),
                "clients": len(self.clients),
                "stale": self.stale(),
                "sessions": [
                    {
                        "key": key,
                        "pid": kept.pid,
                        "leased": kept.leased_by is not None,
                        "made": kept.made,
                        "used": kept.used,
                        "args": kept.info.get("args", []),
                        "invocation_dir": kept.info.get("invocation_dir", ""),
                    }
                    for key, kept in self.kept.items()
                ],
            }
        )

    def _op_stop(self, client: Client, request: dict[str, Any], fds: list[int]) -> None:
        for fd in fds:
            os.close(fd)
        client.send({"op": "stopping", "pid": os.getpid()})
        self.end()

    def _reap(self, pidfd: int) -> None:
        pid, owner = self.sessions.pop(pidfd)
        self.selector.unregister(pidfd)
        os.close(pidfd)
        result = proc.wait4(pid, 0)
        for key, kept in list(self.kept.items()):
            if kept.pid == pid:
                owner = kept.leased_by or owner
                os.close(kept.link_fd)
                del self.kept[key]
        if owner is not None:
            owner.send({"op": "exited", "pid": pid, "status": result.status if result else 0})

    def _end_session(self, kept: KeptSession) -> None:
        os.close(kept.link_fd)
        for pidfd, (pid, _) in self.sessions.items():
            if pid == kept.pid:
                with contextlib.suppress(OSError):
                    proc.pidfd_send_signal(pidfd, signal.SIGKILL)

    def _leave(self) -> None:
        """In a forked session layer: let go of everything the base serves with."""
        self.selector.close()
        for client in self.clients.values():
            client.link.close()
        for pidfd in self.sessions:
            os.close(pidfd)
        for kept in self.kept.values():
            os.close(kept.link_fd)
        if self.listener is not None:
            self.listener.close()

    def end(self) -> NoReturn:
        """End the session layers and wait for everything below the base to be gone (the
        base is a subreaper: the runs of a killed session re-parent to it), then exit."""
        for pidfd in self.sessions:
            with contextlib.suppress(OSError):
                proc.pidfd_send_signal(pidfd, signal.SIGKILL)
        signal.signal(signal.SIGALRM, signal.SIG_DFL)
        signal.alarm(END_GRACE_S)  # a process that will not end does not keep the base
        while True:
            try:
                os.waitpid(-1, 0)
            except ChildProcessError:
                break  # none left
            except InterruptedError:
                continue
        if self.listener is not None:
            with contextlib.suppress(OSError):
                path = self.spec.get("listen", "")
                if path and os.stat(path).st_ino == self.listener_inode:
                    os.unlink(path)
        os._exit(0)

    def listen(self, path: str) -> None:
        """Take the server's socket (before warming: a client that connects meanwhile waits
        for the answer to its first request)."""
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)  # a socket left by a server that is gone (the caller holds the lock)
        old_umask = os.umask(0o077)
        try:
            listener.bind(path)
        finally:
            os.umask(old_umask)
        listener.listen(16)
        self.listener = listener
        self.listener_inode = os.stat(path).st_ino


def modules_pytest_rewrites() -> set[str]:
    """The top-level modules pytest marks for assertion rewriting as it configures: those of
    the distributions of installed plugins (as ``_pytest.config`` finds them), and the plugins
    ``PYTEST_PLUGINS`` names."""
    from importlib import metadata

    found = {name.partition(".")[0] for name in os.environ.get("PYTEST_PLUGINS", "").split(",")}
    if os.environ.get("PYTEST_DISABLE_PLUGIN_AUTOLOAD"):
        return {name for name in found if name}
    try:
        from _pytest.config import _iter_rewritable_modules
    except ImportError:  # another pytest: every plugin distribution's top-level names
        _iter_rewritable_modules = None
    files = [
        str(file)
        for dist in metadata.distributions()
        if any(entry.group == "pytest11" for entry in dist.entry_points)
        for file in dist.files or []
    ]
    if _iter_rewritable_modules is not None:
        found.update(name.partition(".")[0] for name in _iter_rewritable_modules(files))
    else:
        found.update(file.split("/")[0].removesuffix(".py") for file in files)
    return {name for name in found if name}


def _mtime(path: str) -> int:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return -1


def _project_module(name: str, rootdir: str) -> bool:
    """Whether the top-level module ``name`` is the project's: found under ``rootdir`` outside a
    site directory, or not found at all."""
    import importlib.util

    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return True
    if spec is None:
        return True
    locations = [spec.origin or "", *(spec.submodule_search_locations or [])]
    return any(
        os.path.join(location, "").startswith(rootdir)
        and not any(part in ("site-packages", "dist-packages") for part in Path(location).parts)
        for location in locations
        if location
    )


class BecomeSession(BaseException):
    """Raised in a process just forked from the base to become a session layer: caught by
    :func:`main`, which runs the zygote from there."""

    def __init__(self, spec: dict[str, Any]) -> None:
        super().__init__("become a session layer")
        self.spec = spec


def session_spec(spec: dict[str, Any], fds: list[int], base_pid: int) -> dict[str, Any]:
    """In a process just forked from the base: take the session's fds (``spec`` names them by
    their index in ``fds``), its directory and its log; the zygote spec of the session."""
    os.setsid()
    log = fds[spec.pop("log_fd")]
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(log)
    if spec.get("invocation_dir"):
        os.chdir(spec["invocation_dir"])
    spec["control_fd"] = fds[spec["control_fd"]]
    spec["link_fd"] = fds[spec["link_fd"]]
    spec["layered"] = True
    spec["supervisor_pid"] = base_pid
    return spec


def main(argv: list[str] | None = None) -> NoReturn:
    """Entry point of ``python -m tach.base SPEC``: warm the base layer and serve."""
    from tach.zygote import FREED_BLOCK_BUDGET, set_up_process

    args = sys.argv[1:] if argv is None else argv
    spec = orjson.loads(args[0])
    base = BaseLayer(spec)
    with contextlib.suppress(OSError):
        proc.set_child_subreaper(True)  # what a dying session leaves is the base's to reap
    if spec.get("listen"):
        # The server: its own session, no parent to die with; the command that started it
        # returns once the socket exists (clients then wait on it for the warm base).
        base.listen(spec["listen"])
        if os.fork():
            os._exit(0)
        os.setsid()
        proc.keep_freed_blocks(FREED_BLOCK_BUDGET)
        if not spec.get("cwd_on_path", True) and sys.path and sys.path[0] in ("", os.getcwd()):
            del sys.path[0]
        sys.path[:0] = spec.get("python_path", [])
    else:
        set_up_process(spec)
    base.warm()
    try:
        base.serve()
    except BecomeSession as become:
        session = become.spec
    # outside the handler: no exception is being handled while the session runs (it would be
    # the context of every exception a test raises)
    from tach import zygote

    zygote.exit_now(zygote.run_zygote(session))


if __name__ == "__main__":
    main()
