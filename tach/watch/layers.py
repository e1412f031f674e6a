"""The warm layers of ``tach --watch``, and how each run gets its run zygote.

:class:`WarmLayers` starts the base and the session layer (and replaces them when they go
stale), forks the next run's zygote as soon as a run ends (:meth:`WarmLayers.fork_ahead`), and
starts the run of a test module whose write is still settling (:meth:`WarmLayers.speculate`).
:class:`tach.watch.session.WatchSession` decides what runs and when.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from tach.graph import CONFIG_FILES, ImportGraph
from tach.lifecycle.layers import LayerError, StaleLayer, WarmBase, WarmSession, base_imports

if TYPE_CHECKING:
    from tach.config import RunConfig
    from tach.discovery.ini import CollectOptions


class WarmLayers:
    """The layers and the run zygotes of a watch session (a part of
    :class:`tach.watch.session.WatchSession`, whose discovery, failures and output it uses)."""

    config: RunConfig
    first_reading: CollectOptions
    rootdir: Path
    invocation_dir: Path
    graph: ImportGraph | None
    found: Any
    #: pytest's reading of the command line, from the session layer.
    configured: dict[str, Any] | None
    #: The test directories runs had conftests of (for a run zygote that starts before its plan).
    conftest_dirs: set[str]
    base: WarmBase | None = None
    session: WarmSession | None = None
    #: The next run's supervisor, its run zygote forked ahead (see :meth:`fork_ahead`).
    ahead: Any = None
    #: ``(path, supervisor, found)``: the run of ``path`` started while its change settled,
    #: and the discovery of what it runs.
    speculative: tuple[Path, Any, Any] | None = None

    if TYPE_CHECKING:  # the watch session's, used here

        def discover(self, only: set[Path] | None = None) -> Any: ...

        def failed_files(self) -> set[Path]: ...

        def write(self, text: str) -> None: ...

    # -- the run zygote of each run -------------------------------------------------------------

    def start_run(self, changed: list[Path], files: int) -> Any:
        """A supervisor whose run zygote is forked from the session layer, ahead or now (for
        at most ``files`` units: no more workers), or None when the session cannot fork now."""
        if self.session is None:
            return None
        supervisor = self.take_ahead()
        if supervisor is not None:
            supervisor.resume(list(self.conftest_dirs))
        else:
            supervisor = self.new_supervisor(changed)
            supervisor.layer = self.session
            supervisor.plan["conftest_dirs"] = list(self.conftest_dirs)
            try:
                supervisor.start()
            except (StaleLayer, LayerError):
                supervisor.abort()
                return None  # the run itself finds it so again, and replaces what must be
        if self.config.slice == "never":
            supervisor.spec.workers = max(1, min(supervisor.spec.workers, files))
        return supervisor

    def speculate(self, path: Path) -> None:
        """A write to ``path`` just ended, and the change is settling: when it is a test module
        the import graph knows, start its run now (:meth:`start_run`: the zygote forked ahead
        checks and imports it again) and discover what it runs, while the settle waits. Both
        are used if nothing else came meanwhile (:meth:`take_speculative`); otherwise the run
        is ended, and discovery made again: they looked at the files too early."""
        graph = self.graph
        if (
            self.ahead is None
            or graph is None
            or self.configured is None
            or self.config.watch_all
            or path.name in CONFIG_FILES
            or not graph.knows(path)
            or not path.exists()
        ):
            return
        tests, unseen = graph.affected([path])
        if not tests or unseen:
            return
        only = self.failed_files() | tests
        supervisor = self.start_run([path], len(only))
        if supervisor is None:
            return
        found = self.discover(only)
        if found is None:
            supervisor.abort()
            return
        self.speculative = (path, supervisor, found)

    def take_speculative(self) -> tuple[Any, Any] | None:
        """The run :meth:`speculate` started and its discovery, for the change that settled
        into what it started for; or None."""
        speculative, self.speculative = self.speculative, None
        return speculative[1:] if speculative is not None else None

    def drop_speculative(self) -> None:
        taken = self.take_speculative()
        if taken is not None:
            taken[0].abort()

    def fork_ahead(self) -> None:
        """Fork the next run's zygote now, between runs: when a file changes, the run starts
        with pytest's session already forked and only checks what changed since
        (:meth:`tach.lifecycle.Supervisor.resume`). Its slots are as many as ``-n`` says; the
        run starts as many workers as it has units for."""
        if self.session is None or self.ahead is not None:
            return
        supervisor = self.new_supervisor([])
        supervisor.layer = self.session
        supervisor.ahead = True
        supervisor.plan["conftest_dirs"] = list(self.conftest_dirs)
        try:
            supervisor.start()
        except (StaleLayer, LayerError):
            supervisor.abort()  # the next run finds the layer stale, and replaces it
            return
        self.ahead = supervisor

    def take_ahead(self) -> Any:
        """The supervisor whose run zygote was forked ahead (its run starts once resumed);
        None when there is none, or it was forked from a session layer that is gone."""
        supervisor, self.ahead = self.ahead, None
        if supervisor is not None and supervisor.layer is not self.session:
            supervisor.abort()
            return None
        return supervisor

    def new_supervisor(self, changed: list[Path]) -> Any:
        from tach import lifecycle
        from tach.reporter import Reporters
        from tach.runner import exit_code, run_spec
        from tach.scheduler import load_durations

        durations = load_durations(self.rootdir / ".tach")
        spec = run_spec(self.config, self.invocation_dir, durations)
        return lifecycle.Supervisor(spec, Reporters([]), decide_exit=exit_code)

    # -- the layers -------------------------------------------------------------------------------

    def ensure_session(self) -> WarmSession | None:
        """The session layer, started (with its base) when there is none; None when pytest
        refuses to start (its output was shown: a usage error, a conftest that fails)."""
        from tach.config import apply_pytest_options
        from tach.discovery.ini import ConfigError
        from tach.runner import check_debugging, check_expressions, session_plan, session_spec

        if self.session is not None:
            return self.session
        for _ in range(2):
            base = self.ensure_base()
            try:
                session = base.new_session(session_spec(self.config, self.invocation_dir))
                break
            except StaleLayer:
                self.close_layers()
        else:
            raise LayerError("the base layer went stale as soon as it started")
        configured = session.wait_configured()
        if configured is None:
            session.close()
            self.write(session.output() or "pytest stopped before its session started\n")
            return None
        self.configured = configured
        apply_pytest_options(self.config, configured)
        try:
            check_expressions(self.config)
            check_debugging(self.config)
        except ConfigError as exc:
            session.close()
            self.write(f"ERROR: {exc}\n")
            return None
        found = self.discover()
        if found is None:
            session.close()
            return None
        ready = session.prepare(session_plan(self.config, found, self.invocation_dir))
        if ready is None:
            session.close()
            self.write(session.output() or "the session layer stopped while it prepared\n")
            return None
        self.session = session
        return session

    def ensure_base(self) -> WarmBase:
        """The base layer, started when there is none. One whose imports failed part-way is
        replaced by one with pytest alone (what the failed import did would be done twice)."""
        if self.base is None:
            imports = list(self.config.warm_imports)
            found = self.discover_first()
            if found is not None:
                imports = base_imports(found, self.rootdir) + imports
            base = self.start_base(imports)
            if base.ready.get("failures") and imports:
                base.close()
                base = self.start_base([])
            self.base = base
        return self.base

    def start_base(self, imports: list[str]) -> WarmBase:
        from tach.runner import cwd_on_path, run_environment

        base = WarmBase.start(
            self.config.python,
            str(self.invocation_dir),
            run_environment(self.config),
            imports,
            self.config.python_path,
            cwd_on_path(),
            str(self.rootdir),
        )
        base.wait_ready()
        return base

    def discover_first(self) -> Any:
        """Discovery before pytest has answered (for the base layer's imports)."""
        from tach.discovery.ini import ConfigError
        from tach.runner import discover_for_run

        try:
            return discover_for_run(self.first_reading, self.invocation_dir)
        except ConfigError:
            return None

    def replace_session(self) -> None:
        self.drop_speculative()
        if self.ahead is not None:
            self.ahead.abort()
            self.ahead = None
        if self.session is not None:
            self.session.close()
            self.session = None

    def close_layers(self) -> None:
        self.replace_session()
        if self.base is not None:
            self.base.close()
            self.base = None
