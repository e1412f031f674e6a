"""``tach --watch``: run, then run again what each change affects, from warm layers.

The first run starts a base layer and a session layer (:mod:`tach.layers`) and runs every test;
each later run forks a run zygote from the session layer, so that it starts with pytest set up,
the conftests loaded and the test modules imported. A test file that changed is imported again
by the run zygote; a project module, conftest or config file the session layer imported makes it
stale, and a new one is forked from the base (which is itself replaced when a module it imported
or a site directory changed). Which tests run is decided by :class:`tach.graph.ImportGraph`;
the last run's failures run first.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import selectors
import signal
import sys
import termios
import tty
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tach.graph import CONFIG_FILES, ImportGraph
from tach.lifecycle.layers import LayerError, StaleLayer
from tach.watch.changes import ChangeFeed
from tach.watch.layers import WarmLayers

if TYPE_CHECKING:
    from tach.config import RunConfig
    from tach.discovery.ini import CollectOptions
    from tach.scheduler import Unit

#: What a key typed at the terminal asks for.
KEY_ALL, KEY_FAILED, KEY_QUIT = "all", "failed", "quit"


class Keys:
    """Single keys from the terminal (cbreak mode while watching; restored on exit)."""

    def __init__(self) -> None:
        self.fd = sys.stdin.fileno() if sys.stdin is not None else -1
        self.saved: list[Any] | None = None
        if self.fd >= 0 and os.isatty(self.fd):
            with contextlib.suppress(termios.error):
                self.saved = termios.tcgetattr(self.fd)
                tty.setcbreak(self.fd)

    @property
    def active(self) -> bool:
        return self.saved is not None

    def read(self) -> str | None:
        try:
            data = os.read(self.fd, 64)
        except OSError:
            return None
        if not data:
            return KEY_QUIT  # end of input
        for char in data.decode("utf-8", "replace"):
            if char in "\r\n":
                return KEY_ALL
            if char in "fF":
                return KEY_FAILED
            if char in "qQ\x04":
                return KEY_QUIT
        return None

    def restore(self) -> None:
        if self.saved is not None:
            with contextlib.suppress(termios.error):
                termios.tcsetattr(self.fd, termios.TCSADRAIN, self.saved)
            self.saved = None


class WatchSession(WarmLayers):
    """One ``tach --watch``: its layers, its runs, and the loop between them."""

    def __init__(self, load: Callable[[], tuple[RunConfig, CollectOptions, Path]]) -> None:
        #: Reads the command line and configuration files (again, when one changes).
        self.load = load
        config, first_reading, rootdir = load()
        self.config = config
        self.first_reading = first_reading
        self.rootdir = Path(rootdir)
        self.invocation_dir = Path.cwd()
        self.configured: dict[str, Any] | None = None
        self.cycle = 0
        self.graph: ImportGraph | None = None
        #: The last discovery (see :meth:`discover`).
        self.found: Any = None
        #: The test directories runs had conftests of (for a run zygote forked early).
        self.conftest_dirs: set[str] = set()
        #: Node ids of the tests that failed in the last run that ran them.
        self.failed: set[str] = set()
        self.last_code = 0
        self.out = sys.stderr if config.fmt == "json" else sys.stdout

    # -- the loop -------------------------------------------------------------------------------

    def run(self) -> int:
        """Run everything, then wait for changes and keys until ``q``, Ctrl-C or end of input."""
        feed = ChangeFeed(self.rootdir, self.config.watch_debounce)
        keys = Keys()
        previous = {
            signum: signal.signal(signum, _interrupt) for signum in (signal.SIGTERM, signal.SIGHUP)
        }
        selector = selectors.DefaultSelector()
        selector.register(feed.wake_fd(), selectors.EVENT_READ, "files")
        if keys.active:
            selector.register(keys.fd, selectors.EVENT_READ, "keys")
        try:
            self.run_cycle([], None)
            while not self.last_interrupted:
                if self.spoke:
                    self.say_waiting(keys.active)
                    self.spoke = False
                key = None
                if not feed.pending():
                    events = selector.select()
                    for selected, _ in events:
                        if selected.data == "keys":
                            key = keys.read() or key
                if key == KEY_QUIT:
                    break
                if key == KEY_ALL:
                    self.run_cycle([], None)
                elif key == KEY_FAILED and not self.failed:
                    self.write("\ntach --watch: no test failed in the last runs\n")
                elif key == KEY_FAILED:
                    self.run_cycle([], "failed")
                elif feed.pending():
                    changed = feed.take(self.speculate)
                    if self.graph is not None:
                        changed = [p for p in changed if p.exists() or self.graph.knows(p)]
                    if self.speculative is not None and not (
                        feed.settled_quietly and changed == [self.speculative[0]]
                    ):
                        self.drop_speculative()  # more came while it settled: start over
                    if changed:
                        self.on_change(changed)
                    self.drop_speculative()
        except KeyboardInterrupt:
            self.last_code = 2
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
            keys.restore()
            selector.close()
            feed.close()
            self.close_layers()
        return self.last_code

    def say_waiting(self, keys: bool) -> None:
        hint = " (Enter: run all, f: run failed, q: quit)" if keys else " (Ctrl-C to quit)"
        self.write(f"\ntach --watch: waiting for changes{hint}\n")

    def write(self, text: str) -> None:
        self.spoke = True
        with contextlib.suppress(OSError):
            self.out.write(text)
            self.out.flush()

    def on_change(self, changed: list[Path]) -> None:
        """Run what ``changed`` affects."""
        if any(path.name in CONFIG_FILES and path.name != "conftest.py" for path in changed):
            self.close_layers()  # pytest's or Tach's configuration: start from scratch
            self.reload_config()
            self.run_cycle(changed, None)
            return
        graph = self.graph
        if graph is None or self.configured is None or self.config.watch_all:
            self.run_cycle(changed, None)
            return
        if all(graph.knows(path) or path.suffix != ".py" for path in changed):
            # the graph knows every changed module: discovery need only read what will run
            tests, unseen = graph.affected(changed)
            if tests is not None:  # a test module that was removed has nothing to run
                gone = {path for path in tests if not path.exists()}
                tests -= gone
                unseen = [path for path in unseen if path not in gone]
                if gone and not tests and not unseen:
                    names = ", ".join(self.relative(path) for path in sorted(gone))
                    self.write(f"\ntach --watch: {names} removed; nothing to run\n")
                    return
            only = self.failed_files() | (tests or set())
            early, found = None, None
            if tests and not any(path.name == "conftest.py" for path in changed):
                # the run zygote forks while discovery reads the files (a conftest that
                # appeared would make the session stale in a way only discovery shows)
                early, found = self.take_speculative() or (self.start_run(changed, len(only)), None)
            if found is None:
                found = self.discover(only) if tests else None
        else:  # a new module: is it a test module? Discovery of everything says
            early = None
            found = self.discover()
            if found is None or self.graph is None:
                return
            tests, unseen = self.graph.affected(changed)
        # a test file that does not parse has no imports: it is a test file all the same
        broken = (
            {Path(self.rootdir, error.file) for error in found.result.errors} if found else set()
        )
        if tests is not None:
            tests |= {path for path in unseen if path in broken}
        unseen = [path for path in unseen if path not in broken]
        if unseen:
            names = ", ".join(self.relative(path) for path in unseen)
            self.write(
                f"\ntach --watch: no test is known to depend on {names} (imports only are "
                "followed); Enter runs every test\n"
            )
        if tests is None or tests:
            self.run_cycle(changed, tests, found, early)
        elif early is not None:
            early.abort()

    def reload_config(self) -> None:
        """Read Tach's settings again (a config file changed); keep the old on an error."""
        from tach.config import ConfigValueError
        from tach.discovery.ini import ConfigError

        try:
            config, first_reading, rootdir = self.load()
        except (ConfigError, ConfigValueError) as exc:
            self.write(f"ERROR: {exc}\n")
            return
        self.config, self.first_reading, self.rootdir = config, first_reading, Path(rootdir)

    # -- one run ----------------------------------------------------------------------------------

    #: The last run was interrupted (Ctrl-C during a run ends the watch).
    last_interrupted = False
    #: Something was said since the last "waiting for changes".
    spoke = True

    def run_cycle(
        self,
        changed: list[Path],
        tests: set[Path] | str | None,
        found: Any = None,
        started: Any = None,
    ) -> None:
        """One run: ``tests`` the test modules to run (None: all; ``"failed"``: the tests
        that failed last); ``found``: a discovery made since the files last changed;
        ``started``: a supervisor whose run zygote is already forked (:meth:`start_run`)."""
        from tach.runner import plan_and_run

        self.cycle += 1
        what = (
            "all tests"
            if tests is None
            else "the failed tests"
            if tests == "failed"
            else f"{len(tests)} test file{'s' if len(tests) != 1 else ''}"
        )
        because = (
            f" after a change to {', '.join(self.relative(p) for p in changed[:5])}"
            + (f" and {len(changed) - 5} more" if len(changed) > 5 else "")
            if changed
            else ""
        )
        if self.cycle > 1:
            self.write(f"\ntach --watch: run {self.cycle}: {what}{because}\n")
        for _attempt in range(3):
            existed = self.session is not None
            session = self.ensure_session()
            if started is not None and started.layer is not session:
                started.abort()  # forked from a session that is gone
                started = None
            if session is None:
                self.last_code = 4
                return
            if not existed:
                found = self.found  # what the new session was planned from
            elif found is None:
                found = self.discover()
            if found is None:
                if started is not None:
                    started.abort()
                return
            retain: list[object] = []
            supervisor = started or self.take_ahead() or self.new_supervisor(changed)
            started = None
            supervisor.layer = session
            supervisor.spec.run_info = self.run_info(changed)
            try:
                code = plan_and_run(
                    self.config,
                    supervisor,
                    found,
                    supervisor.spec.durations,
                    self.invocation_dir,
                    retain,
                    choose=self.chooser(tests, supervisor.spec),
                )
            except StaleLayer as exc:
                self.write(f"tach --watch: reloading ({self.describe(exc.paths)} changed)\n")
                self.replace_session()
                found = None
                continue
            except LayerError as exc:
                self.write(f"tach --watch: {exc}; starting afresh\n")
                self.close_layers()
                found = None
                continue
            break
        else:
            self.last_code = 3
            return
        self.last_code = code
        self.conftest_dirs |= set(supervisor.plan.get("conftest_dirs") or [])
        summary = retain[1]
        self.last_interrupted = bool(getattr(summary, "aborted", False))
        if supervisor.signals:  # it came once the run had ended, while its zygote exited
            self.last_interrupted, self.last_code = True, 2  # as Ctrl-C between runs
        self.remember(summary, tests)
        if not self.last_interrupted:
            self.fork_ahead()

    def chooser(
        self, tests: set[Path] | str | None, spec: Any
    ) -> Callable[[list[Unit]], list[Unit]]:
        """Which planned units run: those of ``tests`` whole, and, first, the tests that
        failed last (alone, when their unit is not affected). No more workers than units are
        started for the run (``spec.workers``): a run of one file forks one."""
        failed = set(self.failed)

        def choose(units: list[Unit]) -> list[Unit]:
            chosen = select(units)
            spec.workers = max(1, min(spec.workers, len(chosen)))
            return chosen

        def select(units: list[Unit]) -> list[Unit]:
            from tach.runner import rerun_units

            if tests == "failed":
                return rerun_units(units, failed, self.rootdir) if failed else []
            chosen = []
            for unit in units:
                path = Path(unit.args[0].partition("::")[0]) if unit.args else None
                has_failed = unit.id in failed or any(test in failed for test in unit.expected)
                if tests is None or _selected(path, tests):
                    chosen.append(unit)
                elif has_failed:
                    chosen += rerun_units([unit], failed, self.rootdir)
                else:
                    continue
                if has_failed:  # the last run's failures first
                    chosen[-1].weight = float("inf")
            return chosen

        return choose

    def failed_files(self) -> set[Path]:
        """The test modules of the tests that failed last."""
        return {Path(self.rootdir, test_id.partition("::")[0]) for test_id in self.failed}

    def remember(self, summary: Any, tests: set[Path] | str | None) -> None:
        """Keep the failures of what ran (a test that ran and passed is no longer failed)."""
        ran = {test_id for test_id, result in summary.results.items() if result.status}
        now_failed = {
            test_id
            for test_id, result in summary.results.items()
            if result.status in ("fail", "error")
        }
        self.failed = (self.failed - ran) | now_failed

    def run_info(self, changed: list[Path]) -> dict[str, Any]:
        """What ``run_start`` says of this run in the watch session."""
        return {"cycle": self.cycle, "changed": [self.relative(p) for p in changed]}

    def discover(self, only: set[Path] | None = None) -> Any:
        """Static discovery with pytest's options; of only the test modules ``only`` when
        given and pytest's arguments are whole files and directories (a node id or a file
        outside them keeps the whole discovery)."""
        from tach.discovery.ini import ConfigError
        from tach.runner import discover_for_run, pytest_options

        assert self.configured is not None
        options = pytest_options(self.configured, self.invocation_dir)
        args = [Path(self.invocation_dir, arg) for arg in options.paths]
        only = {path for path in only or () if path.exists()}
        if (
            only
            and all("::" not in str(arg) for arg in args)
            and all(any(arg == path or arg in path.parents for arg in args) for path in only)
        ):
            paths = sorted(os.path.relpath(path, self.invocation_dir) for path in only)
            options = dataclasses.replace(options, paths=paths)
        else:
            only = None
        try:
            self.found = discover_for_run(options, self.invocation_dir)
        except ConfigError as exc:
            self.write(f"ERROR: {exc}\n")
            self.found = None
            return None
        # the import graph follows what discovery read
        imports = self.found.result.imports
        if self.graph is None:
            self.graph = ImportGraph(self.rootdir, imports)
            self.graph.prime()
        else:
            self.graph = self.graph.merged(imports) if only else self.graph.updated(imports)
        return self.found

    # -- words --------------------------------------------------------------------------------

    def relative(self, path: Path) -> str:
        try:
            return path.relative_to(self.rootdir).as_posix()
        except ValueError:
            return str(path)

    def describe(self, paths: list[str]) -> str:
        names = [self.relative(Path(p)) for p in paths[:3]]
        more = f" and {len(paths) - 3} more" if len(paths) > 3 else ""
        return ", ".join(names) + more if names else "what it imported"


def _interrupt(signum: int, frame: Any) -> None:
    """SIGTERM or SIGHUP between runs: end the watch as Ctrl-C does."""
    raise KeyboardInterrupt


def _selected(path: Path | None, tests: set[Path]) -> bool:
    if path is None:
        return False
    return path in tests or any(path in test.parents for test in tests)
