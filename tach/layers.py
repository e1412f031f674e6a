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
import re
import selectors
import signal
import sys
import sysconfig
import types
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from tach._native import proc
from tach.debugger import client as debugger
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
    def take(cls, modules: Any, extra: Sequence[str] = ()) -> ImportedFiles:
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
        self.plugins = config.pluginmanager
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
        """``(why_stale, forget)``: the files that make this layer stale (empty when it is
        current), and the modules a run must forget so that they are imported afresh.

        A changed module is forgotten together with every module that refers to it (see
        :func:`dependents`), unless one of them cannot be imported again in a run: a conftest
        or another module registered with pytest as a plugin (pytest holds its fixtures and
        hooks), an extension module, or a module the base imported; the layer is stale then.
        A changed file that is not a module's (the config file) makes it stale too.
        """
        why = BASE_STALE() if BASE_STALE is not None else []
        for directory in set(conftest_dirs) | self.conftest_dirs:
            exists = os.path.isfile(os.path.join(directory, "conftest.py"))
            if exists != (directory in self.conftests):
                why.append(os.path.join(directory, "conftest.py"))
        changed = set(self.imported.changed())
        if why or not changed:
            return why, []
        self.prime()
        loaded, files = self._loaded, self._files
        stale = {name for name, path in files.items() if path in changed}
        why = sorted(changed - {files[name] for name in stale})  # not a module's: the config
        forget = dependents(stale, self._users)
        why += sorted(
            str(files[name] or name)
            for name in forget
            if (files[name] and not str(files[name]).endswith(".py"))  # an extension module
            or os.path.basename(str(files[name])) == "conftest.py"
            or self.plugins.is_registered(loaded[name])
        )
        return (why, []) if why else ([], sorted(forget))

    #: What :meth:`prime` works out: the modules this layer imported, by name (conftests pytest
    #: keeps out of ``sys.modules`` too), their files, and who uses each.
    _loaded: dict[str, Any]
    _files: dict[str, str | None]
    _users: dict[str, list[str]]

    def prime(self) -> None:
        """Work out, once, which module depends on which (see :func:`users_of`).

        A session layer runs no code after it is ready, so its modules do not change: done in
        the layer while its first run goes on, every run zygote forked after inherits it, and
        checks a change in a few milliseconds (done in a fresh fork, the same walk reads every
        module's source and copies the pages of every module object it touches)."""
        if hasattr(self, "_users"):
            return
        loaded = {
            name: module
            for name, module in list(sys.modules.items())
            if name not in BASE_MODULES and module is not None
        }
        seen = {id(module) for module in loaded.values()}
        for plugin in self.plugins.get_plugins():  # conftests pytest keeps out of sys.modules
            if isinstance(plugin, types.ModuleType) and id(plugin) not in seen:
                loaded[f"{plugin.__name__} ({getattr(plugin, '__file__', '')})"] = plugin
        self._files = {name: getattr(module, "__file__", None) for name, module in loaded.items()}
        self._users = users_of(loaded, self.uses)
        self._loaded = loaded

    def uses(self, name: str, module: Any) -> frozenset[str]:
        """The modules ``module`` depends on (see :func:`dependents`)."""
        path = getattr(module, "__file__", None)
        package = name if hasattr(module, "__path__") else name.rpartition(".")[0]
        found = references(module)
        if isinstance(path, str) and path.endswith(".py"):
            found |= import_names(path, package)
        return found


#: ``import a.b, c`` and ``from .a import (b, c)``, anywhere in a file (inside a function too;
#: a match in a string only makes a module look dependent that is not: it is then forgotten
#: needlessly, never kept stale).
_IMPORT = re.compile(rb"^[ \t]*import[ \t]+([^#;\n]+)", re.MULTILINE)
_FROM_IMPORT = re.compile(
    rb"^[ \t]*from[ \t]+(\.*[\w.]*)[ \t]+import[ \t]+(\([^)]*\)|[^#;\n]+)", re.MULTILINE
)


def import_names(path: str, package: str) -> frozenset[str]:
    """The absolute names of the modules the import statements of the file at ``path`` (a
    module of ``package``) name: ``from a import b`` names ``a`` and ``a.b``."""
    try:
        with open(path, "rb") as file:
            source = file.read()
    except OSError:
        return frozenset()
    source = source.replace(b";", b"\n")  # ``from g import h; import i``
    names: set[str] = set()
    for match in _IMPORT.finditer(source):
        for part in match.group(1).decode("utf-8", "replace").split(","):
            names.add(part.split(" as ")[0].strip().rstrip("\\").strip())
    for match in _FROM_IMPORT.finditer(source):
        module = match.group(1).decode("utf-8", "replace")
        dots = len(module) - len(module.lstrip("."))
        base = module[dots:]
        if dots:
            parts = package.split(".") if package else []
            parts = parts[: len(parts) - (dots - 1)] if dots > 1 else parts
            base = ".".join([*parts, *([base] if base else [])])
        if base:
            names.add(base)
        listed = match.group(2).decode("utf-8", "replace").strip("()\\ \n")
        for part in listed.replace("\n", ",").split(","):
            item = part.split(" as ")[0].strip().strip("\\").strip()
            if item and item != "*":
                names.add(f"{base}.{item}" if base else item)
    return frozenset(name for name in names if name)


def users_of(
    modules: dict[str, Any], uses: Callable[[str, Any], frozenset[str]]
) -> dict[str, list[str]]:
    """For each module name, the names of the ``modules`` that depend on it directly
    (``uses``: the modules a module depends on)."""
    users: dict[str, list[str]] = {}
    for name, module in modules.items():
        for used in uses(name, module):
            users.setdefault(used, []).append(name)
    return users


def dependents(names: set[str], users: dict[str, list[str]]) -> set[str]:
    """``names`` and the names of the modules that depend on one of them, directly or through
    each other (``users``: see :func:`users_of`)."""
    found = set(names)
    todo = list(names)
    while todo:
        for user in users.get(todo.pop(), ()):
            if user not in found:
                found.add(user)
                todo.append(user)
    return found


#: Values that refer to no module of the project (checked first: tables of them are common).
_ATOMS = frozenset({int, float, str, bytes, bool, type(None), complex})


def references(module: Any) -> frozenset[str]:
    """The modules ``module``'s namespace refers to: a module object, or a class, function or
    instance defined in one, there or in a container there (a registry), one level deep. A
    package's own submodules do not count (the import system sets them again)."""
    try:
        values = list(vars(module).values())
    except TypeError:
        return frozenset()
    own = f"{module.__name__}."
    found: set[str] = set()
    for value in values:
        if type(value) in _ATOMS:
            continue
        if isinstance(value, types.ModuleType) and value.__name__.startswith(own):
            continue
        _add_origin(value, found)
        if isinstance(value, dict):
            items: Any = value.values()
        elif isinstance(value, list | tuple | set | frozenset):
            items = value
        else:
            continue
        for item in list(items)[:10_000]:
            if type(item) not in _ATOMS:
                _add_origin(item, found)
    return frozenset(found)


def _add_origin(value: Any, found: set[str]) -> None:
    """Add the module ``value`` is, or was defined in (read without calling anything the value
    defines: no ``__getattr__`` of a lazy object runs)."""
    if isinstance(value, types.ModuleType):
        found.add(value.__name__)
    elif isinstance(value, type):
        origin = value.__dict__.get("__module__")
        if isinstance(origin, str):
            found.add(origin)
    elif isinstance(value, types.FunctionType):
        found.add(value.__module__)
    else:
        origin = type(value).__dict__.get("__module__")
        if isinstance(origin, str):
            found.add(origin)


def serve_runs(zygote: Zygote, session: pytest.Session) -> tuple[SessionLayer, list[str]]:
    """Be the session layer: fork a run zygote per ``run`` request until the link closes.

    Returns only in a forked run zygote, set up with the channels the request handed over: the
    session layer's :class:`SessionLayer` (a run zygote forked *ahead* of its run checks it
    again when the run starts: :meth:`tach.zygote.Zygote.prepare`) and the names of the modules
    it must forget (see :meth:`SessionLayer.stale`). The session layer itself ends here.
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
            why, forget = layer.stale(list(request.get("conftest_dirs", [])))
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
                return layer, forget
            for fd in fds:
                os.close(fd)
            pidfd = proc.pidfd_open(pid)
            runs[pidfd] = pid
            selector.register(pidfd, selectors.EVENT_READ, pid)
            with contextlib.suppress(OSError):
                link.send({"op": "started", "pid": pid})
            layer.prime()  # while the run goes on (once)


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
    debug_fd = spec.get("debug_fd")
    debugger.attach(fds[debug_fd] if debug_fd is not None else None)
    used = {spec["control_fd"], debug_fd} | {
        index
        for slot in spec["slots"]
        for index in (slot["command_fd"], *slot["ring_fds"], slot["output_fd"])
    }
    for index, fd in enumerate(fds):
        if index not in used:
            os.close(fd)
    zygote.pid = os.getpid()
    for key in ("isolation", "run_id", "dump_signal", "hermetic", "ahead"):
        if key in spec:
            zygote.spec[key] = spec[key]
    zygote.spec["supervisor_pid"] = os.getppid()  # the session layer: its end is this run's
