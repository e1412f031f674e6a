"""The run command's options: what Tach decides itself, and what goes to pytest in the zygote.

pytest's own options keep their meaning. Those that shape collection and test execution
(``-k``, ``-m``, ``-p``, ``-W``, ``--tb``, ``-o``, ``-c``, ``--rootdir``, ``--import-mode``,
``-v``, and everything after ``--``) are handed to pytest in the zygote unchanged; pytest also
applies the ini file's ``addopts`` there itself. Those that are about scheduling and reporting
(``-x``, ``--maxfail``, ``-r``, ``-q``, ``--durations``, ``--color``, ``--lf``, ``--ff``,
``--collect-only``) are Tach's: the supervisor owns the run and its output. The reporting flags
found in ``addopts`` (and ``PYTEST_ADDOPTS``) count too, read before the command line's as
pytest reads them.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from collections.abc import Sequence

ISOLATION_MODES = ("none", "module", "test")


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``tach [options] [paths | node ids]``."""
    parser.add_argument(
        "args", nargs="*", metavar="PATH_OR_NODEID", help="what to run (pytest's arguments)"
    )
    parser.add_argument(
        "-n", "--workers", default=None, metavar="N", help="worker processes (default: CPUs)"
    )
    parser.add_argument(
        "--isolation",
        choices=ISOLATION_MODES,
        default=None,
        help="what a test process is (default: module)",
    )
    parser.add_argument("-k", dest="keyword", metavar="EXPR", help="pytest's -k expression")
    parser.add_argument("-m", dest="markexpr", metavar="MARKEXPR", help="pytest's -m expression")
    parser.add_argument(
        "-x", "--exitfirst", action="store_true", help="stop after the first failure"
    )
    parser.add_argument("--maxfail", type=int, default=0, metavar="N", help="stop after N failures")
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="more output, one line per test"
    )
    parser.add_argument("-q", "--quiet", action="count", default=0, help="less output")
    parser.add_argument(
        "-r", dest="reportchars", default=None, metavar="CHARS", help="short summary (pytest's -r)"
    )
    parser.add_argument(
        "-s", dest="no_capture", action="store_true", help="show test output live (--capture=no)"
    )
    parser.add_argument("--capture", default=None, metavar="METHOD", help="pytest's capture method")
    parser.add_argument(
        "-p", dest="plugins", action="append", default=[], metavar="NAME", help="pytest's -p"
    )
    parser.add_argument(
        "-W", dest="warnings", action="append", default=[], metavar="SPEC", help="pytest's -W"
    )
    parser.add_argument(
        "--tb", default=None, metavar="STYLE", help="traceback style (pytest's --tb)"
    )
    parser.add_argument(
        "-o", "--override-ini", dest="overrides", action="append", default=[], metavar="NAME=VALUE"
    )
    parser.add_argument(
        "-c", "--config-file", dest="inifile", metavar="FILE", help="pytest config file"
    )
    parser.add_argument("--rootdir", metavar="DIR", help="pytest's rootdir")
    parser.add_argument(
        "--import-mode", default=None, metavar="MODE", help="pytest's --import-mode"
    )
    parser.add_argument(
        "--lf", "--last-failed", dest="last_failed", action="store_true", help="rerun failures"
    )
    parser.add_argument(
        "--ff", "--failed-first", dest="failed_first", action="store_true", help="failures first"
    )
    parser.add_argument(
        "--co", "--collect-only", dest="collect_only", action="store_true", help="only collect"
    )
    parser.add_argument(
        "--durations", type=int, default=None, metavar="N", help="show the N slowest phases"
    )
    parser.add_argument("--color", choices=("yes", "no", "auto"), default="auto")
    parser.add_argument(
        "--python", default=None, metavar="EXE", help="interpreter of the tests (default: this one)"
    )
    add_fault_arguments(parser)


def add_fault_arguments(parser: argparse.ArgumentParser) -> None:
    """Limits of a run: per-test timeout, whole-run timeout, memory of a test process."""
    parser.add_argument(
        "--timeout",
        default=None,
        metavar="SECONDS",
        help="fail a test (setup, call and teardown) that runs longer (env TACH_TIMEOUT; "
        "@pytest.mark.timeout(N) wins; 0: none)",
    )
    parser.add_argument(
        "--session-timeout",
        default=None,
        metavar="SECONDS",
        help="stop the whole run after this long; tests not run are reported, exit 2",
    )
    parser.add_argument(
        "--max-memory",
        default=None,
        metavar="SIZE",
        help="RLIMIT_DATA of each test process, e.g. 512M, 2G (bytes without a suffix)",
    )


@dataclasses.dataclass
class RunConfig:
    """The resolved options of one run."""

    args: list[str]
    workers: int
    isolation: str
    maxfail: int
    verbosity: int
    reportchars: str
    capture_output: bool
    collect_only: bool
    last_failed: bool
    failed_first: bool
    durations: int | None
    color: str
    python: str
    fmt: str
    #: What the zygote's pytest gets on its command line.
    pytest_args: list[str]
    keyword: str | None = None
    markexpr: str | None = None
    #: pytest's --tb style (the reporter prints ``line`` and ``no`` differently).
    tbstyle: str = "auto"
    inifile: str | None = None
    rootdir: str | None = None
    #: Seconds a test may take (0: no limit), the whole run (0: no limit), and the memory
    #: limit of a test process in bytes (0: none).
    timeout: float = 0.0
    session_timeout: float = 0.0
    max_memory: int = 0


class ConfigValueError(ValueError):
    """An option has a value Tach cannot use; the message names the option."""


def parse_workers(value: str | None) -> int:
    if value in (None, "", "auto", "logical"):
        return max(1, len(os.sched_getaffinity(0)))
    try:
        workers = int(value)
    except ValueError:
        raise ConfigValueError(f"-n/--workers takes a number or 'auto', not {value!r}") from None
    if workers < 1:
        raise ConfigValueError(f"-n/--workers must be at least 1, not {workers}")
    return workers


def parse_seconds(value: str | None, option: str) -> float:
    """A duration in seconds (``None``, ``""``: 0, meaning no limit)."""
    if value in (None, ""):
        return 0.0
    try:
        seconds = float(value)
    except ValueError:
        raise ConfigValueError(f"{option} takes a number of seconds, not {value!r}") from None
    if not seconds >= 0 or seconds == float("inf"):
        raise ConfigValueError(f"{option} must be a finite number of seconds >= 0, not {value!r}")
    return seconds


_SIZE_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def parse_size(value: str | None, option: str) -> int:
    """A size in bytes: ``1048576``, ``512M``, ``2G``, ``64KiB`` (``None``: 0, no limit)."""
    if value in (None, ""):
        return 0
    text = value.strip().upper().removesuffix("IB").removesuffix("B")
    unit = text[-1:] if text[-1:] in _SIZE_UNITS else ""
    number = text[: len(text) - len(unit)]
    try:
        size = int(float(number) * _SIZE_UNITS[unit])
    except ValueError:
        raise ConfigValueError(f"{option} takes a size such as 512M or 2G, not {value!r}") from None
    if size <= 0:
        raise ConfigValueError(f"{option} must be more than 0 bytes, not {value!r}")
    return size


def reporting_defaults(addopts: Sequence[str]) -> argparse.Namespace:
    """The reporting flags found in ``addopts``, parsed as the command line would be."""
    parser = argparse.ArgumentParser(add_help=False)
    add_run_arguments(parser)
    namespace, _ = parser.parse_known_args(list(addopts))
    return namespace


def build_run_config(
    ns: argparse.Namespace, addopts: Sequence[str], fmt: str, python: str
) -> RunConfig:
    """Resolve the parsed command line (over ``addopts``) into a :class:`RunConfig`."""
    base = reporting_defaults(addopts)
    maxfail = ns.maxfail or base.maxfail
    if ns.exitfirst or base.exitfirst:
        maxfail = 1
    if maxfail < 0:
        raise ConfigValueError(f"--maxfail must be 0 or more, not {maxfail}")
    capture = ns.capture or base.capture
    no_capture = ns.no_capture or base.no_capture or capture == "no"
    verbosity = (base.verbose + ns.verbose) - (base.quiet + ns.quiet)
    reportchars = ns.reportchars if ns.reportchars is not None else base.reportchars
    pytest_args: list[str] = []
    for flag, value in (
        ("-k", ns.keyword),
        ("-m", ns.markexpr),
        ("--tb", ns.tb),
        ("-c", ns.inifile),
        ("--rootdir", ns.rootdir),
        ("--import-mode", ns.import_mode),
        ("--capture", ns.capture),
    ):
        if value is not None:
            pytest_args += [flag, value]
    if ns.no_capture:
        pytest_args.append("-s")
    for plugin in ns.plugins:
        pytest_args += ["-p", plugin]
    for spec in ns.warnings:
        pytest_args += ["-W", spec]
    for override in ns.overrides:
        pytest_args += ["-o", override]
    if ns.verbose:
        pytest_args.append("-" + "v" * ns.verbose)  # longreprs depend on verbosity, as in pytest
    if ns.quiet:
        pytest_args.append("-" + "q" * ns.quiet)
    pytest_args += ns.args
    return RunConfig(
        args=list(ns.args),
        workers=parse_workers(ns.workers),
        isolation=ns.isolation or "module",
        maxfail=maxfail,
        verbosity=verbosity,
        reportchars=reportchars if reportchars is not None else "fE",
        capture_output=not no_capture,
        collect_only=ns.collect_only,
        last_failed=ns.last_failed,
        failed_first=ns.failed_first,
        durations=ns.durations if ns.durations is not None else base.durations,
        color=ns.color,
        python=ns.python or python,
        fmt=fmt,
        pytest_args=pytest_args,
        keyword=ns.keyword,
        markexpr=ns.markexpr,
        tbstyle=ns.tb or base.tb or "auto",
        inifile=ns.inifile,
        rootdir=ns.rootdir,
        timeout=parse_seconds(
            ns.timeout if ns.timeout is not None else os.environ.get("TACH_TIMEOUT"),
            "--timeout" if ns.timeout is not None else "TACH_TIMEOUT",
        ),
        session_timeout=parse_seconds(ns.session_timeout, "--session-timeout"),
        max_memory=parse_size(ns.max_memory, "--max-memory"),
    )
