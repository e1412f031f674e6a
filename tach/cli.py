"""Command line: argv -> configuration -> the chosen command; the one place that picks exit codes.

Exit codes are pytest's (``ExitCode``): 0 all passed, 1 some failed, 2 interrupted,
3 internal error, 4 usage error, 5 no tests collected.

Commands: run (the default: ``tach [options] [paths | node ids]``) and ``list`` (static
discovery, :mod:`tach.listing`).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from tach import __version__

if TYPE_CHECKING:
    from tach.config import RunConfig
    from tach.discovery.ini import CollectOptions
    from tach.scheduler import Reporter, RunSummary, Unit

EXIT_OK = 0
EXIT_TESTS_FAILED = 1
EXIT_INTERRUPTED = 2
EXIT_INTERNAL_ERROR = 3
EXIT_USAGE_ERROR = 4
EXIT_NO_TESTS = 5


def version_text() -> str:
    """Tach's, pytest's and Python's versions, as ``--version`` prints them."""
    import platform
    from importlib import metadata  # not at import time: it costs ~30 ms per start

    try:
        pytest_version = metadata.version("pytest")
    except metadata.PackageNotFoundError:
        pytest_version = "not installed"
    python = f"{platform.python_implementation()} {platform.python_version()}"
    return f"tach {__version__} (pytest {pytest_version}, {python} at {sys.executable})"


class _HelpFormatter(argparse.HelpFormatter):
    """argparse's help formatter, as wide as the terminal, found without ``shutil``.

    argparse makes a formatter for every ``add_argument`` (to check its metavar), and its own
    asks ``shutil.get_terminal_size``: importing ``shutil`` costs a few milliseconds of every
    start, for a width that only help text uses.
    """

    def __init__(
        self,
        prog: str,
        indent_increment: int = 2,
        max_help_position: int = 24,
        width: int | None = None,
    ) -> None:
        if width is None:
            width = _terminal_columns() - 2
        super().__init__(prog, indent_increment, max_help_position, width)


def _terminal_columns() -> int:
    """The terminal's width as ``shutil.get_terminal_size`` finds it: ``$COLUMNS``, else the
    terminal of standard output, else 80."""
    try:
        columns = int(os.environ.get("COLUMNS", "0"))
    except ValueError:
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            columns = 0
    return columns if columns > 0 else 80


class _ArgumentParser(argparse.ArgumentParser):
    """argparse, but a usage error exits with pytest's usage-error code (4), not 2."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE_ERROR, f"{self.prog}: error: {message}\n")


class _VersionAction(argparse.Action):
    """``--version``, computing the text only when asked (it reads package metadata)."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: object,
        option_string: str | None = None,
    ) -> None:
        print(version_text())
        parser.exit(EXIT_OK)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``python -m tach``."""
    parser = _ArgumentParser(
        prog="tach",
        description="Run an existing pytest suite from a warm, forking zygote.",
    )
    parser.add_argument(
        "--version",
        action=_VersionAction,
        nargs=0,
        help="show Tach's, pytest's and Python's versions and exit",
    )
    parser.add_argument(
        "--format",
        choices=("human", "json"),
        default="human",
        help="output format (json: one document for `list`)",
    )
    sub = parser.add_subparsers(dest="command", parser_class=_ArgumentParser)
    lp = sub.add_parser("list", help="list tests found statically (no user code is imported)")
    lp.add_argument(
        "args",
        nargs="*",
        metavar="PATH_OR_NODEID",
        help="files, directories or node ids (default: testpaths or cwd)",
    )
    lp.add_argument("-k", dest="keyword", metavar="EXPR", help="pytest -k expression")
    lp.add_argument("-m", dest="markexpr", metavar="MARKEXPR", help="pytest -m expression")
    lp.add_argument("-q", "--quiet", action="store_true", help="one node id per line")
    lp.add_argument(
        "--format",
        choices=("human", "json"),
        # unset unless given here: `tach --format=json list` keeps working
        default=argparse.SUPPRESS,
        help="json: one document (as `tach --format=json list`)",
    )
    lp.add_argument(
        "-c",
        "--config-file",
        dest="inifile",
        metavar="FILE",
        help="pytest config file (as pytest -c)",
    )
    lp.add_argument("--rootdir", metavar="DIR", help="rootdir (as pytest --rootdir)")
    lp.add_argument(
        "-o",
        "--override-ini",
        dest="overrides",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="override an ini option",
    )
    lp.add_argument(
        "--doctest-modules",
        action="store_true",
        help="list the doctests of every module too (as pytest --doctest-modules)",
    )
    lp.add_argument("--ignore", action="append", default=[], metavar="PATH")
    lp.add_argument("--deselect", action="append", default=[], metavar="NODEID_PREFIX")
    lp.add_argument(
        "--collect",
        action="store_true",
        help="also run pytest --collect-only in a child process and show "
        "where its ids differ from the static ones",
    )
    lp.add_argument(
        "--python",
        metavar="EXE",
        help="the project's interpreter: its pytest and plugins provide the builtin and plugin "
        "fixtures, and --collect runs it (default: this one)",
    )
    lp.add_argument("--no-cache", action="store_true", help="do not read or write .tach/")
    lp.add_argument(
        "--problems",
        action="store_true",
        help="report fixture problems (cycles, scope mismatches, unknown names)",
    )
    return parser


def build_run_parser() -> argparse.ArgumentParser:
    """The parser of Tach's own options of ``tach [options] [pytest's options and arguments]``;
    every other word is pytest's (:func:`tach.config.split_arguments`)."""
    from tach.config import add_run_arguments

    parser = _ArgumentParser(
        prog="tach",
        usage="tach [tach options] [pytest options] [file_or_dir] [file_or_dir] [...]",
        description="Run an existing pytest suite from a warm, forking zygote: the options below "
        "are Tach's, every other option and argument is pytest's (and its plugins'), with "
        "pytest's meaning. `tach list --help` for static discovery.",
        add_help=False,
    )
    parser.add_argument(
        "-h", "--help", action="store_true", help="show Tach's options, then pytest's, and exit"
    )
    parser.add_argument(
        "--version",
        action=_VersionAction,
        nargs=0,
        help="show Tach's, pytest's and Python's versions and exit",
    )
    add_run_arguments(parser)
    return parser


def _command_of(argv: Sequence[str]) -> str:
    """``list`` when the first word that is not an option (or --format's value) is ``list``."""
    skip = False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg == "--":
            return "run"
        if arg == "--format":
            skip = True
            continue
        if not arg.startswith("-"):
            return "list" if arg == "list" else "run"
    return "run"


def exit_code(summary: RunSummary) -> int:
    """pytest's exit code for a finished run (the one place that decides it)."""
    if summary.zygote_exit_code is not None:
        return summary.zygote_exit_code or EXIT_INTERNAL_ERROR
    if summary.usage_errors:
        return EXIT_USAGE_ERROR
    if summary.internal_errors:
        return EXIT_INTERNAL_ERROR
    if summary.interrupted == "KeyboardInterrupt" or summary.aborted:
        return EXIT_INTERRUPTED
    stats = summary.stats
    if stats.count("failed") or stats.count("error") or summary.plugin_failures:
        return EXIT_TESTS_FAILED
    if summary.plugin_exit_status:
        return summary.plugin_exit_status
    if summary.collect_only:
        return EXIT_OK if stats.collected - summary.deselected > 0 else EXIT_NO_TESTS
    if not any(result.status for result in summary.results.values()):
        return EXIT_NO_TESTS
    return EXIT_OK


def run_tests(argv: Sequence[str], *, retain: list[object] | None = None) -> int:
    """``tach [options] [pytest's options and arguments]``: run the tests (``retain``: see
    :func:`run_and_exit`).

    The zygote starts at once, and pytest parses its command line there; meanwhile static
    discovery plans the run from a first reading of pytest's arguments here. pytest's answer
    (``Configured``) is what counts: when it selects other tests than the first reading did
    (a plugin's option that takes a value, say), discovery runs again on pytest's values.
    """
    from tach.config import ConfigValueError, Layers, build_run_config, split_arguments
    from tach.discovery.ini import ConfigError, addopts_args, determine_config, split_pytest_args

    parser = build_run_parser()
    ours, pytest_words = split_arguments(argv, parser)
    ns = parser.parse_args(ours)
    invocation_dir = Path.cwd()

    first_reading = split_pytest_args(pytest_words)
    try:
        project = determine_config(
            first_reading.paths,
            inifile=first_reading.inifile,
            rootdir=first_reading.rootdir,
            invocation_dir=invocation_dir,
            overrides=first_reading.overrides,
        )
        layers = Layers.load(project.rootdir, project.inifile, invocation_dir)
        config = build_run_config(
            ns, pytest_words, addopts_args(project), sys.executable, layers=layers
        )
    except (ConfigError, ConfigValueError) as exc:
        sys.stderr.write(f"ERROR: {exc}\n")
        return EXIT_USAGE_ERROR
    if ns.help:
        return show_help(parser, config, invocation_dir)
    if ns.show_config:
        print_config(config, project, layers)
        return EXIT_OK
    if config.keep_warm and not config.watch:
        from tach.server import ServerError, run_kept_warm

        try:
            code = run_kept_warm(config, first_reading, project.rootdir, invocation_dir, retain)
        except ServerError as exc:
            sys.stderr.write(f"ERROR: {exc}\n")
            return EXIT_USAGE_ERROR
        if code is not None:
            return code
    if config.watch:
        from tach.watch import WatchSession

        def load() -> tuple[RunConfig, CollectOptions, Path]:
            project = determine_config(
                first_reading.paths,
                inifile=first_reading.inifile,
                rootdir=first_reading.rootdir,
                invocation_dir=invocation_dir,
                overrides=first_reading.overrides,
            )
            layers = Layers.load(project.rootdir, project.inifile, invocation_dir)
            config = build_run_config(
                ns, pytest_words, addopts_args(project), sys.executable, layers=layers
            )
            return config, first_reading, project.rootdir

        return WatchSession(load).run()
    return run_configured(config, first_reading, project.rootdir, invocation_dir, retain)


def run_configured(
    config: RunConfig,
    first_reading: CollectOptions,
    rootdir: Path,
    invocation_dir: Path,
    retain: list[object] | None,
) -> int:
    """Start the zygote, plan the run while pytest parses its options, and run it."""
    from tach import lifecycle
    from tach.config import apply_pytest_options
    from tach.discovery.ini import ConfigError
    from tach.discovery.select import compile_expression
    from tach.reporter import Reporters
    from tach.scheduler import load_durations

    durations = load_durations(rootdir / ".tach")
    env = run_environment(config)
    supervisor = lifecycle.Supervisor(
        run_spec(config, invocation_dir, durations), Reporters([]), decide_exit=exit_code
    )
    supervisor.start()
    first_error: ConfigError | None = None
    try:
        # pytest starts up in the zygote while static discovery plans the run here.
        found = discover_for_run(first_reading, invocation_dir)
    except ConfigError as exc:
        found, first_error = None, exc  # pytest's own reading decides, below
    except BaseException:
        supervisor.abort()
        raise
    configured = supervisor.wait_configured()
    if configured is None:  # pytest refused the command line, or stopped before configuring
        code, output = supervisor.abandoned()
        if first_error is not None and code != EXIT_USAGE_ERROR:
            # what discovery found wrong (an unreadable path, say) says more than a crash
            sys.stderr.write(f"ERROR: {first_error}\n")
            return EXIT_USAGE_ERROR
        if code == EXIT_OK:  # pytest answered without a session (``-V``, say)
            sys.stdout.write(output)
            return EXIT_OK
        sys.stderr.write(output)
        return code if code > 0 else EXIT_INTERNAL_ERROR
    if configured.get("informational"):  # --fixtures, --markers...: pytest shows them
        supervisor.abandoned()
        import subprocess

        sys.stdout.flush()
        return subprocess.call(
            [config.python, "-m", "pytest", *config.pytest_args], cwd=invocation_dir, env=env
        )
    apply_pytest_options(config, configured)
    try:
        for expression, flag in ((config.keyword, "-k"), (config.markexpr, "-m")):
            if expression is not None:  # pytest's own parser: the same message pytest gives
                compile_expression(expression, flag)
        if found is None or run_inputs(found, invocation_dir) != pytest_inputs(configured):
            found = discover_for_run(pytest_options(configured, invocation_dir), invocation_dir)
    except ConfigError as exc:
        supervisor.abort()
        sys.stderr.write(f"ERROR: {exc}\n")
        return EXIT_USAGE_ERROR
    except BaseException:
        supervisor.abort()
        raise
    return plan_and_run(config, supervisor, found, durations, invocation_dir, retain)


def run_environment(config: RunConfig) -> dict[str, str] | None:
    """The zygote's environment: this one with ``[tool.tach] env`` (None: this one)."""
    return {**os.environ, **config.env} if config.env else None


def run_spec(config: RunConfig, invocation_dir: Path, durations: dict[str, float]) -> Any:
    """The supervisor's :class:`tach.lifecycle.RunSpec` of ``config``."""
    from tach import lifecycle

    return lifecycle.RunSpec(
        python=config.python,
        invocation_dir=str(invocation_dir),
        pytest_args=config.pytest_args,
        workers=config.workers,
        isolation=config.isolation,
        python_path=config.python_path,
        env=run_environment(config),
        durations=durations,
        junit_xml=bool(config.junit_xml),
        timeout=config.timeout,
        session_timeout=config.session_timeout,
        max_memory=config.max_memory,
        cwd_on_path=cwd_on_path(),
    )


def cwd_on_path() -> bool:
    """Whether the invocation directory leads ``sys.path`` (``python -m tach``, as
    ``python -m pytest``; not the ``tach`` command, as not the ``pytest`` command)."""
    return Path(sys.argv[0]).name != "tach"


def discover_for_run(options: CollectOptions, invocation_dir: Path) -> Any:
    """Static discovery of what a run collects (without the plugins' fixtures)."""
    from tach.discovery.core import discover

    return discover(invocation_dir=invocation_dir, options=options, with_plugins=False)


def pytest_options(configured: dict[str, Any], invocation_dir: Path) -> CollectOptions:
    """pytest's own reading of the command line, as discovery takes it (paths under the
    invocation directory relative to it, as its messages name them)."""
    from tach.discovery.ini import CollectOptions

    options = configured["options"]
    plugins = [str(p) for p in options.get("plugins") or []]
    paths = []
    for arg in configured["args"]:
        path = Path(arg.partition("::")[0])
        if path == invocation_dir or invocation_dir in path.parents:
            arg = os.path.relpath(arg, invocation_dir) if "::" not in arg else arg
        paths.append(arg)
    return CollectOptions(
        paths=paths,
        keyword=options.get("keyword") or None,
        markexpr=options.get("markexpr") or None,
        ignore=list(options.get("ignore") or []),
        ignore_glob=list(options.get("ignore_glob") or []),
        deselect=list(options.get("deselect") or []),
        disabled_plugins=[p[3:] for p in plugins if p.startswith("no:")],
        plugins=[p for p in plugins if not p.startswith("no:")],
        overrides=list(options.get("override_ini") or []),
        inifile=configured.get("inifile"),
        rootdir=configured.get("rootdir"),
        noconftest=bool(options.get("noconftest")),
        collect_in_virtualenv=bool(options.get("collect_in_virtualenv")),
        doctest_modules=bool(options.get("doctestmodules")),
        doctest_glob=list(options.get("doctestglob") or []),
        import_mode=options.get("importmode"),
        final=True,
    )


def _absolute_args(args: Sequence[str], invocation_dir: Path) -> list[str]:
    out = []
    for arg in args:
        path, sep, rest = arg.partition("::")
        out.append(os.path.normpath(invocation_dir / path) + sep + rest)
    return out


def run_inputs(found: Any, invocation_dir: Path) -> tuple[Any, ...]:
    """What decided the tests a discovery found: its paths, selection and ignore options,
    rootdir and config file (compared with :func:`pytest_inputs`)."""
    options = found.options
    inifile = found.config.inifile
    return (
        _absolute_args(found.paths, invocation_dir),
        options.keyword or None,
        options.markexpr or None,
        list(options.ignore),
        list(options.ignore_glob),
        list(options.deselect),
        str(found.config.rootdir),
        str(inifile) if inifile else None,
        bool(options.doctest_modules),
    )


def pytest_inputs(configured: dict[str, Any]) -> tuple[Any, ...]:
    """The same as :func:`run_inputs`, as pytest read them."""
    options = pytest_options(configured, Path(configured["invocation_dir"]))
    return (
        list(configured["args"]),
        options.keyword,
        options.markexpr,
        options.ignore,
        options.ignore_glob,
        options.deselect,
        options.rootdir,
        options.inifile,
        options.doctest_modules,
    )


def plan_and_run(
    config: RunConfig,
    supervisor: Any,
    found: Any,
    durations: dict[str, float],
    invocation_dir: Path,
    retain: list[object] | None,
    choose: Callable[[list[Unit]], list[Unit]] | None = None,
) -> int:
    """Plan the units of the discovered tests, run them, and save what the run teaches
    (``choose``: which of the planned units to run, in what order of weight; all of them)."""
    from tach.reporter import Reporters
    from tach.reporter.human import HumanReporter
    from tach.reporter.json import JsonReporter
    from tach.results import Locations
    from tach.scheduler import (
        RecordedFiles,
        estimate_weight,
        recorded_items,
        save_durations,
        slice_heavy_units,
    )

    result = found.result
    rootdir = Path(result.rootdir)
    cache_dir = rootdir / ".tach"
    locations = Locations()
    reporters: list[Reporter] = []
    human = None
    if config.fmt != "json" or config.verbosity >= 0:  # -q silences it beside the JSON stream
        human = HumanReporter(
            sys.stderr if config.fmt == "json" else sys.stdout,
            verbosity=config.verbosity,
            reportchars=config.reportchars,
            durations=config.durations,
            color=config.color,
            tbstyle=config.tbstyle,
            locations=locations,
        )
        reporters.append(human)
    json_reporter = None
    if config.fmt == "json":
        json_reporter = JsonReporter(locations=locations)
        reporters.append(json_reporter)
    if config.junit_xml:
        reporters.append(junit_reporter(config.junit_xml, found.config, locations))
    supervisor.reporter = Reporters(reporters)

    plan = plan_run(config, found, invocation_dir)
    last_failed = load_last_failed(cache_dir)
    recorded = recorded_items(durations) if any(t.dynamic for t in result.tests) else {}
    directories = any(unit.unlisted_directory for unit in plan.units)
    files = RecordedFiles(durations, rootdir) if directories and durations else None
    for unit in plan.units:
        unit.weight = estimate_weight(unit, durations, recorded, files)
    units = plan.units
    selection = StaticSelection(found)
    if config.slice != "never":
        units = slice_heavy_units(
            units,
            config.workers,
            sliceable(found, config.slice),
            selection.count,
            durations,
            recorded,
        )
    for unit in units:
        unit.count = selection.count(unit, durations, recorded)
    if config.last_failed and last_failed:
        units = rerun_units(units, last_failed, rootdir)
    elif config.failed_first and last_failed:
        failed_items = recorded_items(last_failed)
        for unit in units:
            if failed_tests(unit, last_failed, failed_items):
                unit.weight = float("inf")
    if choose is not None:
        units = choose(units)
    locations.update(result.tests)
    if human is not None:
        human.expected = plan.expected_tests
    if json_reporter is not None:
        json_reporter.expected = plan.expected_tests
    summary = supervisor.run(units, plan.conftest_dirs, config.warm_imports, plan.collection_paths)
    if human is None and summary.zygote_exit_code is not None:
        sys.stderr.write(summary.zygote_output)  # why pytest stopped, even under -q
    if summary.zygote_exit_code is None and not summary.collect_only:
        with contextlib.suppress(OSError):
            save_durations(cache_dir, summary.results.values(), durations)
            save_last_failed(cache_dir, summary, last_failed)
    if retain is not None:
        retain += [supervisor, summary, found, plan, units, durations, locations, last_failed]
    return exit_code(summary)


def plan_run(config: RunConfig, found: Any, invocation_dir: Path) -> Any:
    """The units (a :class:`tach.scheduler.Plan`) of the tests ``found`` for ``config``."""
    from tach.scheduler import plan_units

    result = found.result
    rootdir = Path(result.rootdir)
    dynamic = [
        rootdir / test.id.rstrip("/")
        for test in result.tests
        if test.dynamic and (test.id.endswith("/") or test.id == "")
    ]
    roots = [Path(arg.partition("::")[0]) for arg in config.args]
    if config.doctest_modules:
        dynamic += [root for root in roots if root.is_dir()]
    dynamic = clip_to_roots(dynamic, roots)
    error_files = [
        e.file
        for e in result.errors
        if e.file.endswith(".py") and Path(e.file).name != "conftest.py"
    ]
    plan = plan_units(
        rootdir, result.tests, result.imports, error_files, dynamic, found.walked_dirs, roots
    )
    narrow_to_node_ids(plan.units, config.args, invocation_dir)
    return plan


def show_help(parser: argparse.ArgumentParser, config: RunConfig, invocation_dir: Path) -> int:
    """``tach --help``: Tach's options, then pytest's with this project's plugins and conftests
    (pytest's own ``--help``, run with the project's interpreter and arguments)."""
    import subprocess

    parser.print_help()
    print("\npytest's options (with this project's plugins and conftests):\n", flush=True)
    return subprocess.call(
        [config.python, "-m", "pytest", *config.pytest_args, "--help"], cwd=invocation_dir
    )


def junit_reporter(path: str, project: Any, locations: Any) -> Reporter:
    """The JUnit XML reporter, configured by pytest's ``junit_*`` ini options."""
    from tach.reporter.junit import JunitXmlReporter

    return JunitXmlReporter(
        path,
        locations=locations,
        suite_name=str(project.get("junit_suite_name") or "pytest"),
        family=str(project.get("junit_family") or "xunit2"),
        logging=str(project.get("junit_logging") or "no"),
        log_passing_tests=str(project.get("junit_log_passing_tests") or "true").strip().lower()
        in ("y", "yes", "t", "true", "on", "1"),
        duration_report=str(project.get("junit_duration_report") or "total"),
    )


def print_config(config: Any, project: Any, layers: Any) -> None:
    """``--show-config``: each setting, its value and where it came from (JSON with
    ``--format=json``)."""
    import orjson

    from tach.config import show_config

    settings = show_config(config)
    if config.fmt == "json":
        document = {
            "rootdir": str(project.rootdir),
            "configfile": str(project.inifile) if project.inifile else None,
            "pyproject": str(layers.tool_path) if layers.tool_path else None,
            "settings": settings,
        }
        sys.stdout.write(orjson.dumps(document, option=orjson.OPT_INDENT_2).decode() + "\n")
        return
    print(f"rootdir: {project.rootdir}")
    print(f"configfile: {project.inifile or '(none)'}")
    width = max(len(key) for key in settings)
    for key, entry in settings.items():
        value = orjson.dumps(entry["value"]).decode()
        print(f"{key:<{width}} = {value}  # {entry['source']}")


class StaticSelection:
    """How many of a unit's tests ``-k``, ``-m`` and ``--deselect`` (pytest's final values)
    keep, as static discovery's marks tell: for slicing decisions and ``run_start``'s count
    only; pytest in the workers decides what runs. (click's ``-m 'not stress'`` leaves out
    31,000 of its 33,000 tests, all in one module.) Computed on first use, once."""

    def __init__(self, found: Any) -> None:
        self.found = found
        self._dropped: frozenset[str] | None = None

    def count(
        self,
        unit: Unit,
        durations: dict[str, float] | None = None,
        recorded: dict[str, list[str]] | None = None,
    ) -> int:
        """The tests of ``unit`` the selection keeps; with ``recorded`` (see
        ``tach.scheduler.recorded_items``), a dynamic test counts as the items earlier runs
        recorded for it."""
        if self._dropped is None:
            self._dropped = self._deselected()
        count = 0
        for test_id in unit.expected:
            if test_id in self._dropped:
                continue
            items = recorded.get(test_id) if recorded and test_id not in (durations or {}) else None
            count += len(items) if items else 1
        return count

    def _deselected(self) -> frozenset[str]:
        from tach.discovery import ConfigError
        from tach.discovery.select import select

        options = self.found.options
        if not (options.keyword or options.markexpr or options.deselect):
            return frozenset()
        tests = self.found.result.tests
        # -m depends on a test's marks alone: evaluate it once per distinct set of marks.
        by_marks: dict[frozenset[str], list[Any]] = {}
        for test in tests:
            by_marks.setdefault(frozenset(test.marks), []).append(test)
        try:
            kept = {
                id(test)
                for group in by_marks.values()
                for test in (
                    group
                    if not options.markexpr or select(group[:1], None, options.markexpr, [])[0]
                    else ()
                )
            }
            survivors = [test for test in tests if id(test) in kept]
            survivors, _ = select(survivors, options.keyword, None, options.deselect)
        except ConfigError:  # pytest reports a bad expression itself
            return frozenset()
        keep = {test.id for test in survivors}
        return frozenset(test.id for test in tests if test.id not in keep)


def sliceable(found: Any, level: str = "always") -> Callable[[Unit], bool]:
    """Whether a unit's tests may be split across processes (``--slice``, ``docs/engine.md``).

    At either level the resolver must say that no module-scoped fixture binds the tests, nor a
    class-scoped one a test outside any class. The closure of a dynamic test is what its source
    names; its items may bind more (a scope given to ``metafunc.parametrize``), so the worker
    checks again with pytest's fixtures: where a module-scoped fixture binds an item, the first
    slice runs them all. It also keeps a class a class-scoped fixture binds in one slice
    (``tach.worker.slice_items``). ``safe`` asks more of the module's source
    (:func:`shares_module_state`): no unittest classes, no module- or class-level set-up, no
    ``global`` statement.
    """
    from tach.resolver import Resolver, resolve_all

    by_id = {test.id: test for test in found.result.tests}
    rootdir = Path(found.result.rootdir)

    def check(unit: Unit) -> bool:
        tests = [by_id[i] for i in unit.expected if i in by_id]
        if len(tests) != len(unit.expected):
            return False
        if level == "safe" and (
            any(t.unittest for t in tests)
            or any(shares_module_state(rootdir / f) for f in {t.file for t in tests})
        ):
            return False
        resolver = Resolver(
            found.result.fixtures,
            ini_usefixtures=found.config.get("usefixtures"),
            plugins_complete=False,
        )
        _, closures = resolve_all(tests, resolver)
        for t in tests:
            closure = closures.get(t.id)
            if closure is None or closure.widest_scope == "module":
                return False
            if closure.widest_scope == "class" and not t.classes:
                return False
        return True

    return check


#: Functions and methods by which pytest or unittest set up state that later tests see.
SHARED_SETUP_NAMES = frozenset(
    {
        "setup_module",
        "teardown_module",
        "setUpModule",
        "tearDownModule",
        "setup_class",
        "teardown_class",
        "setUpClass",
        "tearDownClass",
        "setup",
        "teardown",
    }
)


def shares_module_state(path: Path) -> bool:
    """Whether a test module's source shows state its tests share: module- or class-level
    set-up, or a ``global`` statement (a test that rebinds a module variable). Unreadable
    source counts as shared."""
    import ast

    try:
        tree = ast.parse(path.read_bytes())
    except (OSError, SyntaxError, ValueError):
        return True
    for node in ast.walk(tree):
        if isinstance(node, ast.Global | ast.Nonlocal):
            return True
        if (
            isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
            and node.name in SHARED_SETUP_NAMES
        ):
            return True
    return False


def narrow_to_node_ids(units: Sequence[Unit], args: Sequence[str], invocation_dir: Path) -> None:
    """Make the unit of a file named by node ids (``f.py::test_a``) collect just those.

    A unit collects its whole file unless every argument that reaches the file names tests
    in it: a directory or the plain file among the arguments covers the whole file, as in
    pytest, which drops a node id that another argument contains.
    """
    whole: list[Path] = []
    selected: dict[Path, list[str]] = {}
    for arg in args:
        path_part, sep, rest = arg.partition("::")
        path = Path(os.path.normpath(invocation_dir / path_part))
        if sep:
            selected.setdefault(path, []).append(f"{path}::{rest}")
        else:
            whole.append(path)
    for unit in units:
        if len(unit.args) != 1 or unit.ignore or unit.slice:
            continue
        path = Path(unit.args[0])
        if path in selected and not any(w == path or w in path.parents for w in whole):
            unit.args = list(dict.fromkeys(selected[path]))


def clip_to_roots(dirs: Sequence[Path], roots: Sequence[Path]) -> list[Path]:
    """Dynamic directories, limited to what the run collects (a root inside one stands for it)."""
    clipped: list[Path] = []
    for directory in dirs:
        for root in roots:
            if root == directory or directory in root.parents:
                clipped.append(root)
            elif root in directory.parents:
                clipped.append(directory)
    return [d for d in dict.fromkeys(clipped) if d.is_dir()]


def load_last_failed(cache_dir: Path) -> set[str]:
    import orjson

    try:
        data = orjson.loads((cache_dir / "lastfailed.json").read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return set()
    return {item for item in data if isinstance(item, str)} if isinstance(data, list) else set()


def save_last_failed(cache_dir: Path, summary: RunSummary, old: set[str]) -> None:
    """pytest's ``lastfailed`` rule: failures are added, tests that passed are removed."""
    failed = set(old)
    for result in summary.results.values():
        if result.status in ("fail", "error"):
            failed.add(result.id)
        elif result.status is not None:
            failed.discard(result.id)
    failed |= {r.get("nodeid", "") for r in summary.collect_errors if r.get("outcome") == "failed"}
    import orjson

    from tach.scheduler import write_atomically

    write_atomically(cache_dir / "lastfailed.json", orjson.dumps(sorted(failed)))


def failed_tests(
    unit: Unit, last_failed: set[str], failed_items: dict[str, list[str]]
) -> list[str]:
    """The tests of ``unit`` that failed last time. A dynamic test is expected under its
    function's id, and what failed was one of its items: ``failed_items`` holds those, by that
    id (``recorded_items(last_failed)``)."""
    ids: list[str] = []
    for test_id in unit.expected:
        if test_id in last_failed:
            ids.append(test_id)
        ids.extend(failed_items.get(test_id, ()))
    return ids


def rerun_units(units: Sequence[Unit], last_failed: set[str], rootdir: Path) -> list[Unit]:
    """``--lf``: only the tests that failed last time (their files, when they were errors)."""
    from tach.scheduler import Unit, recorded_items

    failed_items = recorded_items(last_failed)
    chosen = []
    for unit in units:
        ids = failed_tests(unit, last_failed, failed_items)
        if ids:
            args = [str(rootdir / test_id) for test_id in ids]
            chosen.append(Unit(unit.id, args, ids))
        elif unit.id in last_failed:  # the file itself failed to collect
            chosen.append(unit)
    return chosen or list(units)


def run_and_exit() -> NoReturn:
    """The ``tach`` command and ``python -m tach``: :func:`main` on ``sys.argv``, then exit.

    A run keeps every test's result and phase reports, and a listing hundreds of thousands of
    objects; freeing them one by one when the functions holding them return and when the
    interpreter exits took about 60 ms of a cold ``tach list`` of 1,500 test modules, and
    0.3–0.4 s after the closing line of a run of 64,000 tests. So both commands keep them
    (``retain``) and, once their output is flushed, end the process at once (``os._exit``):
    nothing is left to do, the zygote and discovery's processes have ended, and neither
    command starts threads or registers exit handlers.
    """
    retained: list[object] = []
    code = main(sys.argv[1:], retain=retained)
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):
        sys.exit(code)  # a broken or closed stream: the ordinary exit reports it
    os._exit(code)


def list_paths(words: Sequence[str], other_options: bool) -> list[str]:
    """``tach list``'s paths and node ids. Options it does not know are pytest's (a plugin's,
    a conftest's) and do not change what static discovery lists; with no pytest to ask which
    of them take a value, a word among the arguments that names no path is taken for such a
    value when there are any (``--cov pkg``), and left for discovery to refuse otherwise."""
    if not other_options:
        return list(words)
    return [word for word in words if Path(word.partition("::")[0]).exists()]


def main(argv: Sequence[str] | None = None, *, retain: list[object] | None = None) -> int:
    """Run the command line and return the process exit code (``retain``: see
    :func:`tach.listing.run_list`)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["server"] and argv[1:2] in (["status"], ["stop"]):
        from tach.server import server_command

        return server_command(argv[1:])
    if _command_of(argv) == "run":
        from tach.heap import young_collections_only

        try:
            # The supervisor keeps every test's result and phase reports until the run ends:
            # on packaging (64,207 tests) nine full collections took 2.0-2.5 s of its 6-8 CPU
            # seconds.
            with young_collections_only():
                return run_tests(argv, retain=retain)
        except KeyboardInterrupt:  # before the run started (the run itself handles its own)
            sys.stderr.write("!!! KeyboardInterrupt !!!\n")
            return EXIT_INTERRUPTED
        except BrokenPipeError:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return EXIT_INTERRUPTED
    parser = build_parser()
    ns, others = parser.parse_known_args(argv)
    if others and ns.command != "list":
        parser.error(f"unrecognized arguments: {' '.join(others)}")
    if ns.command == "list":
        from .listing import ListRequest, run_list

        req = ListRequest(
            args=[
                *list_paths(ns.args, bool(others)),
                *others,
                *(["--doctest-modules"] if ns.doctest_modules else []),
            ],
            keyword=ns.keyword,
            markexpr=ns.markexpr,
            quiet=ns.quiet,
            fmt=ns.format,
            inifile=ns.inifile,
            rootdir=ns.rootdir,
            overrides=ns.overrides,
            ignore=ns.ignore,
            deselect=ns.deselect,
            collect=ns.collect,
            python=ns.python,
            no_cache=ns.no_cache,
            problems=ns.problems,
        )
        try:
            return run_list(req, sys.stdout, sys.stderr, retain=retain)
        except BrokenPipeError:
            # the reader went away (``tach list | head``): not an error of ours
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return EXIT_OK
    parser.print_help()
    return EXIT_USAGE_ERROR
