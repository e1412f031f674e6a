"""Warm layers: a base process that stays imported, and session layers forked from it.

A cold run starts ``python -m tach.zygote``, which imports pytest, its plugins and the
project's third-party modules before it can do anything else. A *layered* zygote splits that
work by how often it goes stale:

* the **base layer** (:mod:`tach.base`): the interpreter with pytest, the
  plugins' modules, the third-party modules the project's tests reach and ``warm_imports``
  imported. It does no pytest start-up of its own: it forks a **session layer** per request.
  It is stale once a module file it imported changed, or a site directory did (a package was
  installed or removed), and then refuses to fork (``stale``): its client starts a new one.
* the **session layer** is :mod:`tach.zygote` in a child of the base: pytest parses its
  configuration, loads the conftests and imports the test modules as in a cold run; then,
  instead of forking workers, it forks a **run zygote** per run (:func:`serve_runs`), which
  re-imports the test modules changed since, prepares its run and forks the workers. A session
  layer is stale once a project module, a conftest or the config file it read changed, or a
  conftest appeared, and refuses to fork as the base does.

Requests and answers travel over a :class:`tach.protocol.LayerLink` (one packet each, with the
file descriptors the forked process is to use). Whoever forks a process reaps it and reports
its exit status (``exited``): the client is not its parent. Nothing here is imported by the
supervisor.
"""

from __future__ import annotations

import contextlib
import gc
import os
import selectors
import signal
import sys
import sysconfig
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from tach._native import proc
from tach.protocol import Channel, LayerLink

if TYPE_CHECKING:
    import pytest

    from tach.zygote import Zygote

#: The modules the base layer had imported when it forked this process (empty in a process
#: that did not come from a base layer): a session layer checks only the modules it added.
BASE_MODULES: frozenset[str] = frozenset()
#: What makes the base this process was forked from stale (None: no base): a session layer
#: forked from a stale base is stale too.
BASE_STALE: Callable[[], list[str]] | None = None


def _stdlib_dirs() -> tuple[str, ...]:
    paths = sysconfig.get_paths()
    return tuple(os.path.join(paths[key], "") for key in ("stdlib", "platstdlib") if key in paths)


class ImportedFiles:
    """The source files of imported modules, and their size and mtime when imported.

    What a layer imported is stale when one of these files changed or went away; files of the
    standard library change only with the interpreter, which no layer outlives, and are left
    out.
    """

    def __init__(self, files: dict[str, tuple[int, int]]) -> None:
        self.files = files

    @classmethod
    def take(cls, modules: Any, extra: list[str] = ()) -> ImportedFiles:  # type: ignore[assignment]
        """The files of ``modules`` (module objects) and of the paths in ``extra``."""
        stdlib = _stdlib_dirs()
        files: dict[str, tuple[int, int]] = {}
        paths = [getattr(module, "__file__", None) for module in modules]
        for path in [*paths, *extra]:
            if not isinstance(path, str) or path in files or path.startswith(stdlib):
                continue
            files[path] = _stat(path)
        return cls(files)

    def changed(self) -> list[str]:
        """The files that differ from when they were taken (a missing file included)."""
        return sorted(path for path, seen in self.files.items() if _stat(path) != seen)


def _stat(path: str) -> tuple[int, int]:
    try:
        st = os.stat(path)
    except OSError:
        return (-1, -1)
    return (st.st_mtime_ns, st.st_size)


def site_directories() -> list[str]:
    """The directories packages are installed into (their mtime changes on an install)."""
    import site

    found = [*site.getsitepackages(), site.getusersitepackages()]
    found += [entry for entry in sys.path if entry.endswith(("site-packages", "dist-packages"))]
    return sorted({path for path in found if os.path.isdir(path)})


# -- the session layer -----------------------------------------------------------------------


class SessionLayer:
    """What a session layer keeps to tell whether it is still current (see :meth:`stale`)."""

    def __init__(self, zygote: Zygote, session: pytest.Session) -> None:
        config = session.config
        self.zygote = zygote
        self.test_modules = {
            str(getattr(module, "__file__", ""))
            for name, module in list(sys.modules.items())
            if name not in BASE_MODULES and _is_collected_module(module, zygote)
        }
        added = [module for name, module in list(sys.modules.items()) if name not in BASE_MODULES]
        extra = [str(config.inipath)] if config.inipath else []
        self.imported = ImportedFiles.take(added, extra)
        self.conftest_dirs = set(zygote.spec.get("conftest_dirs", []))
        self.conftests = {
            directory
            for directory in self.conftest_dirs
            if os.path.isfile(os.path.join(directory, "conftest.py"))
        }

    def stale(self, conftest_dirs: list[str]) -> tuple[list[str], list[str]]:
        """``(why_stale, changed_test_modules)``: the files that make this layer stale (empty
        when it is current), and the test modules a run must import again."""
        changed = self.imported.changed()
        why = [path for path in changed if path not in self.test_modules]
        if BASE_STALE is not None:
            why += BASE_STALE()
        for directory in set(conftest_dirs) | self.conftest_dirs:
            exists = os.path.isfile(os.path.join(directory, "conftest.py"))
            if exists != (directory in self.conftests):
                why.append(os.path.join(directory, "conftest.py"))
        return why, [path for path in changed if path in self.test_modules]


def _is_collected_module(module: Any, zygote: Zygote) -> bool:
    path = getattr(module, "__file__", None)
    return isinstance(path, str) and path in zygote.collected_files


def serve_runs(zygote: Zygote, session: pytest.Session) -> list[str]:
    """Be the session layer: fork a run zygote per ``run`` request until the link closes.

    Returns only in a forked run zygote, set up with the channels the request handed over; the
    value is the test modules it must import again. The session layer itself ends here.
    """
    layer = SessionLayer(zygote, session)
    link = LayerLink.from_fd(zygote.spec["link_fd"], "session layer link")
    gc.collect()
    gc.freeze()
    selector = selectors.DefaultSelector()
    selector.register(link.fileno(), selectors.EVENT_READ, None)
    runs: dict[int, int] = {}  # pidfd -> pid
    with contextlib.suppress(OSError):
        link.send({"op": "ready", "pid": os.getpid(), **zygote.session_info})
    while True:
        for key, _ in selector.select():
            if key.data is not None:
                pid = runs.pop(key.fd)
                selector.unregister(key.fd)
                os.close(key.fd)
                result = proc.wait4(pid, 0)
                with contextlib.suppress(OSError):
                    link.send(
                        {"op": "exited", "pid": pid, "status": result.status if result else 0}
                    )
                continue
            try:
                received = link.recv()
            except Exception:
                received = None
            if received is None:  # the client is gone: so are its runs (parent-death signal)
                os._exit(0)
            request, fds = received
            why, changed = layer.stale(list(request.get("conftest_dirs", [])))
            if request.get("op") != "run" or why:
                for fd in fds:
                    os.close(fd)
                with contextlib.suppress(OSError):
                    link.send({"op": "stale", "paths": why})
                continue
            pid = proc.fork(signal.SIGKILL)
            if pid == 0:
                selector.close()
                link.close()
                for pidfd in runs:
                    os.close(pidfd)
                _become_run_zygote(zygote, request["spec"], fds)
                return changed
            for fd in fds:
                os.close(fd)
            pidfd = proc.pidfd_open(pid)
            runs[pidfd] = pid
            selector.register(pidfd, selectors.EVENT_READ, pid)
            with contextlib.suppress(OSError):
                link.send({"op": "started", "pid": pid})


def _become_run_zygote(zygote: Zygote, spec: dict[str, Any], fds: list[int]) -> None:
    """In a process just forked from a session layer: take the run's channels (``spec`` names
    them by their index in ``fds``), in a session and process group of its own."""
    os.setsid()
    capture = zygote.spec.get("capture_output", True)
    out, err = (spec["log_fd"], spec["log_fd"]) if capture else tuple(spec["terminal_fds"])
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(fds[out], 1)
    os.dup2(fds[err], 2)
    zygote.control.close()
    zygote.control = Channel.from_fd(fds[spec["control_fd"]], "control channel")
    zygote._attach_slots(
        [
            {
                "slot": slot["slot"],
                "command_fd": fds[slot["command_fd"]],
                "ring_fds": [fds[i] for i in slot["ring_fds"]],
                "output_fd": fds[slot["output_fd"]],
            }
            for slot in spec["slots"]
        ]
    )
    used = {spec["control_fd"]} | {
        index
        for slot in spec["slots"]
        for index in (slot["command_fd"], *slot["ring_fds"], slot["output_fd"])
    }
    for index, fd in enumerate(fds):
        if index not in used:
            os.close(fd)
    zygote.pid = os.getpid()
    for key in ("isolation", "run_id", "dump_signal", "max_memory"):
        if key in spec:
            zygote.spec[key] = spec[key]
    zygote.spec["supervisor_pid"] = os.getppid()  # the session layer: its end is this run's
