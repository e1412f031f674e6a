"""The supervisor's side of the warm layers (see :mod:`tach.layers`).

:class:`WarmBase` starts the base layer and asks it for session layers; :class:`WarmSession`
is one session layer: its pytest ``Configured`` answer, and the run zygotes it forks. A process
a layer forked is not the supervisor's child: :class:`LayerProcess` gives it the face of the
``subprocess.Popen`` the rest of the supervisor knows (``pid``, ``returncode``, ``poll``,
``wait``, ``send_signal``), its exit status coming from the layer that reaps it.
"""

from __future__ import annotations

import ast
import contextlib
import os
import select
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import orjson

from tach._native import proc
from tach._native.memfd import LogBuffer
from tach.protocol import Channel, LayerLink, MessageKind, ProtocolError

#: How long a layer may take to answer a request (a fork, or a refusal).
ANSWER_TIMEOUT_S = 60.0


class LayerError(RuntimeError):
    """A layer died or broke its protocol; the caller starts afresh from a new base."""


class StaleLayer(Exception):
    """A layer refused to fork: what it imported changed (``paths`` say what)."""

    def __init__(self, paths: list[str]) -> None:
        super().__init__(", ".join(paths) or "a layer is stale")
        self.paths = paths


class LayerProcess:
    """A process a layer forked for this supervisor, as ``subprocess.Popen`` shows a child."""

    def __init__(self, pid: int, owner: LayerClient) -> None:
        self.pid = pid
        self.args = [f"process {pid}"]
        self.returncode: int | None = None
        self.owner = owner
        try:
            self.pidfd: int | None = proc.pidfd_open(pid)
        except OSError:  # already gone: its exit is on its way over the link
            self.pidfd = None

    def poll(self) -> int | None:
        if self.returncode is None:
            self.owner.pump(0.0)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.returncode is None:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise subprocess.TimeoutExpired(self.args, timeout or 0.0)
            if not self.owner.pump(left) and self.owner.closed:
                # the layer died before it reported: the process died with it
                self._exited(-signal.SIGKILL)
        return self.returncode

    def send_signal(self, signum: int) -> None:
        if self.returncode is None and self.pidfd is not None:
            with contextlib.suppress(ProcessLookupError):
                proc.pidfd_send_signal(self.pidfd, signum)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def _exited(self, returncode: int) -> None:
        self.returncode = returncode
        if self.pidfd is not None:
            os.close(self.pidfd)
            self.pidfd = None


class LayerClient:
    """Requests to one layer over its link, and the exits it reports."""

    def __init__(self, link: LayerLink) -> None:
        self.link = link
        self.children: dict[int, LayerProcess] = {}
        #: Answers not yet taken, each with the fds it handed over.
        self.answers: list[tuple[dict[str, Any], list[int]]] = []
        self.closed = False

    def request(
        self, message: dict[str, Any], fds: list[int] | tuple[int, ...] = ()
    ) -> tuple[dict[str, Any], list[int]]:
        """Send ``message`` with ``fds``; the layer's answer and the fds it hands over."""
        try:
            self.link.send(message, fds)
        except OSError as exc:
            raise LayerError(f"{self.link.name}: the layer is gone ({exc})") from exc
        return self.answer_with_fds()

    def answer(self, timeout: float = ANSWER_TIMEOUT_S) -> dict[str, Any]:
        """The next answer that is not an exit report (fds it carries are closed)."""
        message, fds = self.answer_with_fds(timeout)
        for fd in fds:
            os.close(fd)
        return message

    def answer_with_fds(
        self, timeout: float = ANSWER_TIMEOUT_S
    ) -> tuple[dict[str, Any], list[int]]:
        """The next answer that is not an exit report, and the fds it hands over (the caller
        owns them: a lent session's link)."""
        deadline = time.monotonic() + timeout
        while not self.answers:
            left = deadline - time.monotonic()
            if left <= 0 or (not self.pump(left) and self.closed):
                raise LayerError(f"{self.link.name}: no answer from the layer")
        return self.answers.pop(0)

    def pump(self, timeout: float | None) -> bool:
        """Read one message if one comes within ``timeout``; False if none came."""
        if self.closed:
            return False
        readable, _, _ = select.select([self.link.sock], [], [], timeout)
        if not readable:
            return False
        try:
            received = self.link.recv()
        except (OSError, ProtocolError):
            received = None
        if received is None:
            self.closed = True
            return False
        message, fds = received
        if message.get("op") != "exited":
            self.answers.append((message, fds))
            return True
        for fd in fds:
            os.close(fd)
        child = self.children.pop(int(message["pid"]), None)
        if child is not None:
            child._exited(os.waitstatus_to_exitcode(int(message["status"])))
        return True

    def fork(self, message: dict[str, Any], fds: list[int]) -> LayerProcess:
        """Ask the layer to fork; the forked process, or :class:`StaleLayer`."""
        answer, handed = self.request(message, fds)
        for fd in handed:
            os.close(fd)
        if answer.get("op") == "stale":
            raise StaleLayer(list(answer.get("paths") or []))
        if answer.get("op") != "started":
            raise LayerError(f"{self.link.name}: unexpected answer {answer.get('op')!r}")
        child = LayerProcess(int(answer["pid"]), self)
        self.children[child.pid] = child
        return child

    def close(self) -> None:
        self.closed = True
        self.link.close()


class WarmBase:
    """A base layer this supervisor talks to: its own child (:meth:`start`) or a per-user
    server (:meth:`connect`)."""

    def __init__(
        self,
        client: LayerClient,
        process: subprocess.Popen[bytes] | None = None,
        log: LogBuffer | None = None,
    ) -> None:
        self.client = client
        self.process = process
        self.log = log
        self.ready: dict[str, Any] = {}

    @classmethod
    def start(
        cls,
        python: str,
        invocation_dir: str,
        env: dict[str, str] | None,
        imports: list[str],
        python_path: list[str],
        cwd_on_path: bool,
        rootdir: str,
    ) -> WarmBase:
        """Start a base layer as a child of this process (it dies with it)."""
        log = LogBuffer("tach-base-output")
        link, theirs = LayerLink.pair("base layer link")
        spec = {
            "rootdir": rootdir,
            "link_fd": theirs.fileno(),
            "supervisor_pid": os.getpid(),
            "imports": imports,
            "python_path": python_path,
            "cwd_on_path": cwd_on_path,
        }
        process = subprocess.Popen(
            [python, "-m", "tach.base", orjson.dumps(spec).decode()],
            cwd=invocation_dir,
            env=_with_columns(env),
            stdin=subprocess.DEVNULL,
            stdout=log.fileno(),
            stderr=log.fileno(),
            pass_fds=[theirs.fileno()],
            start_new_session=True,
        )
        theirs.close()
        return cls(LayerClient(link), process, log)

    @classmethod
    def connect(cls, path: str) -> WarmBase:
        """Connect to the server listening at ``path`` (``OSError`` when none does)."""
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            sock.connect(path)
        except OSError:
            sock.close()
            raise
        return cls(LayerClient(LayerLink(sock, "server link")))

    def wait_ready(self, timeout: float = ANSWER_TIMEOUT_S) -> dict[str, Any]:
        """The base's ``ready`` message (what failed to import, the threads it runs)."""
        try:
            self.ready = self.client.answer(timeout)
        except LayerError as exc:
            raise LayerError(f"the base layer did not start:\n{self.output()}") from exc
        return self.ready

    def output(self) -> str:
        return self.log.read_all().decode("utf-8", "replace") if self.log is not None else ""

    def new_session(self, spec: dict[str, Any]) -> WarmSession:
        """A session layer for the zygote ``spec`` (pytest's arguments and options);
        :class:`StaleLayer` when the base must be replaced first."""
        return WarmSession(self, spec)

    def request(self, message: dict[str, Any]) -> tuple[dict[str, Any], list[int]]:
        """A request whose answer may carry fds (``lease``): the answer and its fds."""
        return self.client.request(message)

    def lease(self, key: str) -> WarmSession | None:
        """The kept session layer of ``key``, lent to this supervisor; None if there is none
        free."""
        answer, fds = self.request({"op": "lease", "key": key})
        if answer.get("op") != "leased" or not fds:
            for fd in fds:
                os.close(fd)
            return None
        return WarmSession.leased(self, int(answer["pid"]), fds[0], dict(answer["info"]))

    def keep(self, key: str, session: WarmSession) -> bool:
        """Ask the server to keep ``session`` for later commands."""
        info = {"configured": session.configured, "ready": session.ready, **session.about}
        try:
            answer, _ = self.client.request(
                {"op": "keep", "key": key, "pid": session.process.pid, "info": info},
                [session.client.link.fileno()],
            )
        except LayerError:
            return False
        kept = answer.get("op") == "kept"
        session.lent = kept  # closing it now leaves it to the server
        return kept

    def drop(self, key: str) -> None:
        with contextlib.suppress(OSError, LayerError):
            self.request({"op": "drop", "key": key})

    def close(self) -> None:
        """Let go of the base layer: a child ends (its session layers and their runs with
        it); a server goes on."""
        self.client.close()
        process = self.process
        if process is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=5.0)
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        if self.log is not None:
            self.log.close()


class WarmSession:
    """A session layer: pytest configured with the run's arguments, its conftests and test
    modules imported, forking a run zygote per run."""

    def __init__(self, base: WarmBase, spec: dict[str, Any]) -> None:
        self.base = base
        #: Kept with the session by a server, for ``tach server status``.
        self.about = {
            "args": list(spec.get("pytest_args", [])),
            "invocation_dir": str(spec.get("invocation_dir", "")),
        }
        self.log: LogBuffer | None = LogBuffer("tach-session-output")
        control, control_theirs = socket.socketpair()
        self.control = Channel(control, "session control channel")
        link, link_theirs = LayerLink.pair("session layer link")
        fds = [control_theirs.fileno(), link_theirs.fileno(), self.log.fileno()]
        try:
            self.process = base.client.fork(
                {"op": "session", "spec": {**spec, "control_fd": 0, "link_fd": 1, "log_fd": 2}},
                fds,
            )
        finally:
            control_theirs.close()
            link_theirs.close()
        self.client = LayerClient(link)
        self.configured: dict[str, Any] | None = None
        self.ready: dict[str, Any] = {}

    @classmethod
    def leased(cls, base: WarmBase, pid: int, link_fd: int, info: dict[str, Any]) -> WarmSession:
        """A kept session layer a server lent: its link, and what it said when it was made."""
        session = cls.__new__(cls)
        session.base = base
        session.about = {}
        session.log = None
        session.control = None
        session.process = LayerProcess(pid, base.client)
        session.client = LayerClient(LayerLink.from_fd(link_fd, "session layer link"))
        session.configured = info.get("configured")
        session.ready = dict(info.get("ready") or {})
        session.lent = True
        return session

    #: Lent by a server: closing it gives it back (the session layer goes on).
    lent = False

    def wait_configured(self) -> dict[str, Any] | None:
        """pytest's reading of the command line; None when pytest stopped first."""
        self.configured = self.control.expect(MessageKind.Configured)
        return self.configured

    def prepare(self, plan: dict[str, Any]) -> dict[str, Any] | None:
        """Hand the session layer the whole suite's plan; its ``ready`` message, or None
        when it died preparing (its output says why)."""
        try:
            self.control.send(MessageKind.Plan, plan)
            self.ready = self.client.answer(timeout=24 * 3600.0)
        except (OSError, LayerError):
            return None
        return self.ready

    def output(self) -> str:
        return self.log.read_all().decode("utf-8", "replace") if self.log is not None else ""

    def fork_run(self, spec: dict[str, Any], fds: list[int], conftest_dirs: list[str]) -> Any:
        """A run zygote for ``spec`` (its fds named by index in ``fds``), or
        :class:`StaleLayer`."""
        return self.client.fork({"op": "run", "spec": spec, "conftest_dirs": conftest_dirs}, fds)

    def close(self) -> None:
        """End the session layer, or give it back to the server that keeps it."""
        self.client.close()
        if self.control is not None:
            self.control.close()
        if not self.lent:
            with contextlib.suppress(subprocess.TimeoutExpired, LayerError):
                self.process.wait(timeout=5.0)
            self.process.send_signal(signal.SIGKILL)
        if self.log is not None:
            self.log.close()


def _with_columns(env: dict[str, str] | None) -> dict[str, str]:
    out = dict(os.environ if env is None else env)
    # pytest sizes separators and tracebacks to the terminal; the layers have none.
    out.setdefault("COLUMNS", str(shutil.get_terminal_size((80, 24)).columns))
    return out


#: Module-level calls a conftest may make without changing how other modules import: they
#: only register things with the library they belong to.
HARMLESS_CALLS = frozenset(
    {
        "register_profile",
        "load_profile",
        "register_type_strategy",
        "addinivalue_line",
        "getLogger",
    }
)


def base_imports(found: object, rootdir: Path) -> list[str]:
    """The modules outside the project that the tests import, for the base layer to import
    first (empty when importing them before the conftests could change what they do).

    Under pytest they are imported after the conftests; importing them earlier, in the base,
    is the same only when no conftest does anything at import time that an import could see
    (set an environment variable, patch a module, put a directory on ``sys.path``). A conftest
    whose module level does more than import, define and assign plain values keeps the base
    to pytest and its plugins.
    """
    result = getattr(found, "result", None)
    if result is None:
        return []
    for conftest in getattr(result, "conftests", []):
        path = Path(conftest)
        if not path.is_absolute():
            path = rootdir / path
        if _acts_at_import(path):
            return []
    options = getattr(found, "options", None)
    plugins = {str(name).partition(".")[0] for name in getattr(options, "plugins", None) or ()}
    names: dict[str, None] = {}
    for imports in result.imports.values():
        for imported in imports:
            module = imported.module
            if (
                imported.file is None
                and not module.startswith(".")
                and module.partition(".")[0] not in plugins  # -p NAME: pytest rewrites it
            ):
                names[module] = None
    return list(names)


def _acts_at_import(path: Path) -> bool:
    """Whether the module at ``path`` does anything but import, define and assign at import."""
    try:
        tree = ast.parse(path.read_bytes(), filename=str(path))
    except (OSError, SyntaxError, ValueError):
        return True
    return any(_acts(statement) for statement in tree.body)


def _acts(statement: ast.stmt) -> bool:
    if isinstance(
        statement,
        ast.Import | ast.ImportFrom | ast.Pass | ast.FunctionDef | ast.AsyncFunctionDef,
    ):
        return False  # a fixture's decorator registers it; its body runs later
    if isinstance(statement, ast.ClassDef):
        return any(_acts(inner) for inner in statement.body)
    if isinstance(statement, ast.Expr):
        if isinstance(statement.value, ast.Constant):
            return False  # a docstring
        return _has_call(statement.value)
    if isinstance(statement, ast.Assign | ast.AnnAssign):
        targets = statement.targets if isinstance(statement, ast.Assign) else [statement.target]
        if not all(isinstance(target, ast.Name | ast.Tuple) for target in targets):
            return True  # os.environ["X"] = ..., module.attribute = ...
        return statement.value is not None and _has_call(statement.value)
    if isinstance(statement, ast.If | ast.Try):
        blocks = [statement.body, statement.orelse]
        if isinstance(statement, ast.Try):
            blocks += [handler.body for handler in statement.handlers] + [statement.finalbody]
        return any(_acts(inner) for block in blocks for inner in block)
    return True


def _has_call(node: ast.AST) -> bool:
    for inner in ast.walk(node):
        if isinstance(inner, ast.Call):
            func = inner.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name not in HARMLESS_CALLS:
                return True
    return False
