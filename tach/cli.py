"""Command line: argv -> configuration -> the chosen command; the one place that picks exit codes.

Exit codes are pytest's (``ExitCode``): 0 all passed, 1 some failed, 2 interrupted,
3 internal error, 4 usage error, 5 no tests collected.
"""

from __future__ import annotations

import argparse
import platform
import sys
from collections.abc import Sequence
from importlib import metadata

from tach import __version__

EXIT_OK = 0
EXIT_TESTS_FAILED = 1
EXIT_INTERRUPTED = 2
EXIT_INTERNAL_ERROR = 3
EXIT_USAGE_ERROR = 4
EXIT_NO_TESTS = 5


def version_text() -> str:
    """Tach's, pytest's and Python's versions, as ``--version`` prints them."""
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


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``python -m tach``."""
    parser = _ArgumentParser(
        prog="tach",
        description="Run an existing pytest suite from a warm, forking zygote.",
    )
    parser.add_argument("--version", action="version", version=version_text())
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line and return the process exit code."""
    parser = build_parser()
    parser.parse_args(argv)
    parser.print_help()
    return EXIT_USAGE_ERROR
