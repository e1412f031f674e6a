"""Command line: argv -> configuration -> the chosen command; the one place that picks exit codes.

Exit codes are pytest's (``ExitCode``): 0 all passed, 1 some failed, 2 interrupted,
3 internal error, 4 usage error, 5 no tests collected.

Commands: run (the default: ``tach [options] [paths | node ids]``), ``list`` (static
discovery, :mod:`tach.listing`), ``doctor`` (what this machine supports, :mod:`tach.doctor`),
``merge`` (the streams of a run's shards, :mod:`tach.merge`), ``durations --export`` (the
durations shards are balanced by) and ``report`` (a run's stream as one HTML page,
:mod:`tach.reporter.html`).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from tach import __version__

if TYPE_CHECKING:
    from tach.config import RunConfig
    from tach.discovery.ini import CollectOptions

from tach.runner import (
    EXIT_INTERNAL_ERROR,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE_ERROR,
    check_debugging,
    check_expressions,
    discover_for_run,
    exit_code,
    plan_and_run,
    pytest_inputs,
    pytest_options,
    run_environment,
    run_inputs,
    run_spec,
)


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
        "pytest's meaning. `tach list --help` for static discovery; `tach report --help` for "
        "a run's NDJSON stream as an HTML page.",
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

    def load() -> tuple[Any, Layers, RunConfig]:
        """pytest's project configuration, Tach's settings' layers, and the run's settings
        (read again by ``--watch`` when a configuration file changes)."""
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
        return project, layers, config

    try:
        project, layers, config = load()
    except (ConfigError, ConfigValueError) as exc:
        sys.stderr.write(f"ERROR: {exc}\n")
        return EXIT_USAGE_ERROR
    if ns.help:
        return show_help(parser, config, invocation_dir)
    if config.shard is not None and config.watch:
        sys.stderr.write("ERROR: --shard cannot be used with --watch\n")
        return EXIT_USAGE_ERROR
    if config.changed_since is not None and not ns.show_config:
        from tach.changed import ChangedSinceError, git_change

        if config.watch:
            sys.stderr.write("ERROR: --changed-since cannot be used with --watch\n")
            return EXIT_USAGE_ERROR
        try:
            config.change = git_change(config.changed_since, Path(project.rootdir))
        except ChangedSinceError as exc:
            sys.stderr.write(f"ERROR: {exc}\n")
            return EXIT_USAGE_ERROR
    if config.durations_file and not ns.show_config:
        from tach.scheduler import DurationsFileError, load_durations_file

        try:
            load_durations_file(Path(config.durations_file))
        except DurationsFileError as exc:
            sys.stderr.write(f"ERROR: {exc}\n")
            return EXIT_USAGE_ERROR
    if ns.show_config:
        print_config(config, project, layers)
        return EXIT_OK
    refused = isolation_refused(config)
    if refused:
        for problem in refused:
            sys.stderr.write(f"ERROR: {problem}\n")
        return EXIT_USAGE_ERROR
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

        def reload() -> tuple[RunConfig, CollectOptions, Path]:
            project, _, config = load()
            return config, first_reading, project.rootdir

        return WatchSession(reload).run()
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
    from tach.debugger.relay import interactive
    from tach.discovery.ini import ConfigError
    from tach.reporter import Reporters
    from tach.scheduler import load_durations

    config.terminal = interactive()
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
        check_expressions(config)
        check_debugging(config)
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


def isolation_refused(config: RunConfig) -> list[str]:
    """What this machine refuses of the run's ``--isolate-network``, ``--private-tmp`` and
    ``--max-processes`` (tried in a throwaway process before any test runs); empty when none
    is asked for or all is allowed."""
    from tach.config import hermetic_spec
    from tach.isolation import Hermetic, probe_in_subprocess

    hermetic = Hermetic.from_spec(hermetic_spec(config))
    if not (hermetic.namespaces or hermetic.max_processes):
        return []
    return probe_in_subprocess(hermetic)


def show_help(parser: argparse.ArgumentParser, config: RunConfig, invocation_dir: Path) -> int:
    """``tach --help``: Tach's options, then pytest's with this project's plugins and conftests
    (pytest's own ``--help``, run with the project's interpreter and arguments)."""
    import subprocess

    parser.print_help()
    print("\npytest's options (with this project's plugins and conftests):\n", flush=True)
    return subprocess.call(
        [config.python, "-m", "pytest", *config.pytest_args, "--help"], cwd=invocation_dir
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


def merge_command(argv: Sequence[str]) -> int:
    """``tach merge STREAM... [--junit-xml OUT] [--json OUT] [--format github]``
    (:mod:`tach.merge`)."""
    from tach.merge import run_merge

    parser = _ArgumentParser(
        prog="tach merge",
        description="Merge the NDJSON streams of a run's shards (tach --shard K/N "
        "--format=json) into one run: pytest's summary, and the exit code of the whole run. "
        "Exit code 3 when the streams are not a whole run (a shard missing, given twice, "
        "cut short or failed to start), naming it.",
    )
    parser.add_argument("streams", nargs="+", metavar="SHARD.ndjson")
    parser.add_argument(
        "--junit-xml", "--junitxml", dest="junit_xml", metavar="PATH", help="write JUnit XML"
    )
    parser.add_argument(
        "--json", dest="json_out", metavar="PATH", help="write the merged NDJSON stream (-: stdout)"
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="print no summary")
    parser.add_argument(
        "--format",
        choices=("human", "github"),
        default="human",
        help="github: GitHub Actions annotations of the whole run's failures on stdout, and a "
        "job summary appended to $GITHUB_STEP_SUMMARY",
    )
    ns = parser.parse_args(argv)
    return run_merge(ns.streams, ns.junit_xml, ns.json_out, ns.quiet, fmt=ns.format)


def report_command(argv: Sequence[str]) -> int:
    """``tach report RUN.ndjson [SHARD.ndjson...] -o report.html`` (:mod:`tach.reporter.html`)."""
    from tach.reporter.html import run_report

    parser = _ArgumentParser(
        prog="tach report",
        description="Write a run's NDJSON stream (tach --format=json, or tach merge --json) as "
        "one self-contained HTML page: the summary, failures with their reports and output, "
        "the slowest tests and a timeline of the workers. Several streams are the shards of "
        "one run, merged as tach merge merges them. Exit code 0 once written.",
    )
    parser.add_argument("streams", nargs="+", metavar="RUN.ndjson")
    parser.add_argument(
        "-o", "--output", required=True, metavar="PATH", help="the HTML file to write"
    )
    ns = parser.parse_args(argv)
    return run_report(ns.streams, ns.output, combine=_merged_stream)


def _merged_stream(paths: Sequence[str]) -> bytes:
    """The shards' streams ``paths`` as ``tach merge --json`` writes them."""
    import io

    from tach.merge import InputError, MergeError, merge, read_stream, write_ndjson
    from tach.reporter.html import ReportError

    try:
        merged = merge([read_stream(path) for path in paths])
    except InputError as exc:
        raise ReportError(str(exc), EXIT_USAGE_ERROR) from None
    except MergeError as exc:
        raise ReportError(
            f"the shards do not make a whole run:\n{exc}", EXIT_INTERNAL_ERROR
        ) from None
    buffer = io.BytesIO()
    write_ndjson(merged, buffer)
    return buffer.getvalue()


def durations_command(argv: Sequence[str]) -> int:
    """``tach durations --export FILE [STREAM...]`` (:func:`tach.merge.export_durations`)."""
    from tach.discovery.ini import ConfigError, determine_config
    from tach.merge import export_durations

    parser = _ArgumentParser(
        prog="tach durations",
        description="Write the test durations recorded in .tach/ (updated with those of the "
        "NDJSON streams given, e.g. a merged run's) to a file to commit, for "
        "--shard K/N --durations-file FILE.",
    )
    parser.add_argument("--export", required=True, metavar="FILE", help="the file to write")
    parser.add_argument("streams", nargs="*", metavar="RUN.ndjson")
    parser.add_argument("--rootdir", metavar="DIR", help="rootdir (as pytest --rootdir)")
    ns = parser.parse_args(argv)
    invocation_dir = Path.cwd()
    try:
        project = determine_config([], rootdir=ns.rootdir, invocation_dir=invocation_dir)
    except ConfigError as exc:
        sys.stderr.write(f"ERROR: {exc}\n")
        return EXIT_USAGE_ERROR
    return export_durations(invocation_dir / ns.export, Path(project.rootdir), ns.streams)


def main(argv: Sequence[str] | None = None, *, retain: list[object] | None = None) -> int:
    """Run the command line and return the process exit code (``retain``: see
    :func:`tach.listing.run_list`)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv == ["doctor"]:
        from tach.doctor import doctor

        return doctor(sys.stdout)
    if argv[:1] == ["server"] and argv[1:2] in (["status"], ["stop"]):
        from tach.server import server_command

        return server_command(argv[1:])
    if argv[:1] == ["merge"]:
        return merge_command(argv[1:])
    if argv[:1] == ["durations"]:
        return durations_command(argv[1:])
    if argv[:1] == ["report"]:
        return report_command(argv[1:])
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
