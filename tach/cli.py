"""Command line: argv -> configuration -> the chosen command; the one place that picks exit codes.

Exit codes are pytest's (``ExitCode``): 0 all passed, 1 some failed, 2 interrupted,
3 internal error, 4 usage error, 5 no tests collected.

Commands: ``list`` (static discovery, :mod:`tach.listing`).
"""

from __future__ import annotations

import argparse
import platform
import sys
from collections.abc import Sequence

from tach import __version__

EXIT_OK = 0
EXIT_TESTS_FAILED = 1
EXIT_INTERRUPTED = 2
EXIT_INTERNAL_ERROR = 3
EXIT_USAGE_ERROR = 4
EXIT_NO_TESTS = 5


def version_text() -> str:
    """Tach's, pytest's and Python's versions, as ``--version`` prints them."""
    from importlib import metadata  # not at import time: it costs ~30 ms per start

    try:
        pytest_version = metadata.version("pytest")
    except metadata.PackageNotFoundError:
        pytest_version = "not installed"
    python = f"{platform.python_implementation()} {platform.python_version()}"
    return f"tach {__version__} (pytest {pytest_version}, {python} at {sys.executable})"


class _ArgumentParser(argparse.ArgumentParser):
    """argparse, but a usage error exits with pytest's usage-error code (4), not 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE_ERROR, f"{self.prog}: error: {message}\n")


class _VersionAction(argparse.Action):
    """``--version``, computing the text only when asked (it reads package metadata)."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: object, option_string: str | None = None) -> None:
        print(version_text())
        parser.exit(EXIT_OK)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``python -m tach``."""
    parser = _ArgumentParser(
        prog="tach",
        description="Run an existing pytest suite from a warm, forking zygote.",
    )
    parser.add_argument("--version", action=_VersionAction, nargs=0,
                        help="show Tach's, pytest's and Python's versions and exit")
    parser.add_argument("--format", choices=("human", "json"), default="human",
                        help="output format (json: one document for `list`)")
    sub = parser.add_subparsers(dest="command", parser_class=_ArgumentParser)
    lp = sub.add_parser("list", help="list tests found statically (no user code is imported)")
    lp.add_argument("args", nargs="*", metavar="PATH_OR_NODEID",
                    help="files, directories or node ids (default: testpaths or cwd)")
    lp.add_argument("-k", dest="keyword", metavar="EXPR", help="pytest -k expression")
    lp.add_argument("-m", dest="markexpr", metavar="MARKEXPR", help="pytest -m expression")
    lp.add_argument("-q", "--quiet", action="store_true", help="one node id per line")
    lp.add_argument("-c", "--config-file", dest="inifile", metavar="FILE",
                    help="pytest config file (as pytest -c)")
    lp.add_argument("--rootdir", metavar="DIR", help="rootdir (as pytest --rootdir)")
    lp.add_argument("-o", "--override-ini", dest="overrides", action="append", default=[],
                    metavar="NAME=VALUE", help="override an ini option")
    lp.add_argument("--ignore", action="append", default=[], metavar="PATH")
    lp.add_argument("--deselect", action="append", default=[], metavar="NODEID_PREFIX")
    lp.add_argument("--collect", action="store_true",
                    help="also run pytest --collect-only in a child process and show "
                         "where its ids differ from the static ones")
    lp.add_argument("--python", metavar="EXE",
                    help="interpreter for --collect (default: this one)")
    lp.add_argument("--no-cache", action="store_true", help="do not read or write .tach/")
    lp.add_argument("--problems", action="store_true",
                    help="report fixture problems (cycles, scope mismatches, unknown names)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line and return the process exit code."""
    parser = build_parser()
    ns = parser.parse_args(argv)
    if ns.command == "list":
        from .listing import ListRequest, run_list

        req = ListRequest(args=ns.args, keyword=ns.keyword, markexpr=ns.markexpr,
                          quiet=ns.quiet, fmt=ns.format, inifile=ns.inifile,
                          rootdir=ns.rootdir, overrides=ns.overrides, ignore=ns.ignore,
                          deselect=ns.deselect, collect=ns.collect, python=ns.python,
                          no_cache=ns.no_cache, problems=ns.problems)
        try:
            return run_list(req, sys.stdout, sys.stderr)
        except BrokenPipeError:
            # the reader went away (``tach list | head``): not an error of ours
            import os

            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return EXIT_OK
    parser.print_help()
    return EXIT_USAGE_ERROR
