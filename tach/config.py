"""The run command's options: what Tach decides itself, and what goes to pytest in the zygote.

pytest's own options keep their meaning. Those that shape collection and test execution
(``-k``, ``-m``, ``-p``, ``-W``, ``--tb``, ``-o``, ``-c``, ``--rootdir``, ``--import-mode``,
``-v``, and everything after ``--``) are handed to pytest in the zygote unchanged; pytest also
applies the ini file's ``addopts`` there itself. Those that are about scheduling and reporting
(``-x``, ``--maxfail``, ``-r``, ``-q``, ``--durations``, ``--color``, ``--lf``, ``--ff``,
``--collect-only``) are Tach's: the supervisor owns the run and its output. The reporting flags
found in ``addopts`` (and ``PYTEST_ADDOPTS``) count too, read before the command line's as
pytest reads them.

Tach's own settings come from four layers, the first that sets a value winning: the command
line, ``TACH_*`` environment variables, the ``[tool.tach]`` table of ``pyproject.toml``, and
pytest's ini options (Tach's flags found in ``addopts``); then the defaults.
:func:`load_tool_table` reads and checks ``[tool.tach]``; :func:`build_run_config` resolves the
layers and records where each value came from (``tach --show-config`` prints it).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shlex
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

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
    parser.add_argument(
        "--junit-xml",
        "--junitxml",
        dest="junit_xml",
        default=None,
        metavar="PATH",
        help="write a JUnit XML report to PATH (as pytest's --junitxml)",
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
    #: Where to write the JUnit XML report (absolute), if anywhere.
    junit_xml: str | None = None
    #: ``[tool.tach] env``: variables set for the zygote (and so every test process).
    env: dict[str, str] = dataclasses.field(default_factory=dict)
    #: ``[tool.tach] python_path``: absolute directories put in front of ``sys.path``.
    python_path: list[str] = dataclasses.field(default_factory=list)
    #: ``[tool.tach] warm_imports``: modules the zygote imports before forking.
    warm_imports: list[str] = dataclasses.field(default_factory=list)
    #: ``[tool.tach] addopts``: given to pytest before the command line's arguments.
    tool_addopts: list[str] = dataclasses.field(default_factory=list)
    #: Where each setting's value came from (``tach --show-config``).
    sources: dict[str, str] = dataclasses.field(default_factory=dict)


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
    ns: argparse.Namespace,
    addopts: Sequence[str],
    fmt: str | None,
    python: str,
    *,
    layers: Layers | None = None,
    passthrough: Sequence[str] = (),
) -> RunConfig:
    """Resolve the parsed command line (over ``addopts``) into a :class:`RunConfig`.

    ``fmt`` is the command line's ``--format`` (None when not given); ``layers`` are the
    ``TACH_*`` environment and ``[tool.tach]`` (none: only the command line and ``addopts``);
    ``passthrough`` the arguments after ``--``, whose reporting flags win over both addopts.
    """
    layers = layers if layers is not None else Layers()
    base = reporting_defaults([*addopts, *layers.tool.get("addopts", []), *passthrough])
    maxfail = ns.maxfail or base.maxfail
    if ns.exitfirst or base.exitfirst:
        maxfail = 1
    if maxfail < 0:
        raise ConfigValueError(f"--maxfail must be 0 or more, not {maxfail}")
    capture = ns.capture or base.capture
    no_capture = ns.no_capture or base.no_capture or capture == "no"
    verbosity = (base.verbose + ns.verbose) - (base.quiet + ns.quiet)
    reportchars = ns.reportchars if ns.reportchars is not None else base.reportchars
    pytest_args: list[str] = list(layers.tool.get("addopts", []))
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
    resolve = _Resolver(layers, base)
    junit_xml = resolve("junit_xml", getattr(ns, "junit_xml", None), "--junit-xml", str, None)
    return RunConfig(
        args=list(ns.args),
        workers=resolve("workers", ns.workers, "-n/--workers", parse_workers, "auto"),
        isolation=resolve("isolation", ns.isolation, "--isolation", parse_isolation, "module"),
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
        fmt=resolve("format", fmt, "--format", parse_format, "human"),
        pytest_args=pytest_args,
        keyword=ns.keyword,
        markexpr=ns.markexpr,
        tbstyle=ns.tb or base.tb or "auto",
        inifile=ns.inifile,
        rootdir=ns.rootdir,
        timeout=resolve("timeout", getattr(ns, "timeout", None), "--timeout", parse_timeout, None)
        or 0.0,
        session_timeout=parse_seconds(ns.session_timeout, "--session-timeout"),
        max_memory=parse_size(ns.max_memory, "--max-memory"),
        junit_xml=layers.absolute(junit_xml, resolve.sources["junit_xml"]),
        env=resolve.table("env", {}),
        python_path=[layers.from_rootdir(p) for p in resolve.table("python_path", [])],
        warm_imports=resolve.table("warm_imports", []),
        tool_addopts=resolve.table("addopts", []),
        sources=resolve.sources,
    )


# -- [tool.tach] and TACH_* ------------------------------------------------------------------

#: ``[tool.tach]`` keys and the type each must have, as error messages name it.
TOOL_KEYS: dict[str, str] = {
    "env": "a table of strings",
    "python_path": "a list of strings",
    "workers": 'an integer or "auto"',
    "isolation": '"none", "module" or "test"',
    "timeout": "a number of seconds",
    "warm_imports": "a list of strings",
    "addopts": "a string or a list of strings",
    "junit_xml": "a string (a path)",
    "format": '"human" or "json"',
}

#: The ``TACH_*`` environment variable of each setting that has one.
ENV_VARS: dict[str, str] = {
    "workers": "TACH_WORKERS",
    "isolation": "TACH_ISOLATION",
    "timeout": "TACH_TIMEOUT",
    "junit_xml": "TACH_JUNIT_XML",
    "format": "TACH_FORMAT",
}

#: The settings ``--show-config`` prints, in its order.
SETTINGS = (
    "workers",
    "isolation",
    "timeout",
    "format",
    "junit_xml",
    "addopts",
    "env",
    "python_path",
    "warm_imports",
)


def parse_isolation(value: str) -> str:
    if value not in ISOLATION_MODES:
        raise ConfigValueError(
            f"--isolation must be one of {', '.join(ISOLATION_MODES)}, not {value!r}"
        )
    return value


def parse_format(value: str) -> str:
    if value not in ("human", "json"):
        raise ConfigValueError(f"--format must be human or json, not {value!r}")
    return value


def parse_timeout(value: str | float) -> float:
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise ConfigValueError(f"timeout takes a number of seconds, not {value!r}") from None
    if not seconds >= 0 or seconds == float("inf"):
        raise ConfigValueError(f"timeout must be a finite number of seconds >= 0, not {value!r}")
    return seconds


def _is_str_list(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _tool_value_ok(key: str, value: object) -> bool:
    if key == "env":
        return isinstance(value, dict) and all(
            isinstance(v, str | int | float) and not isinstance(v, bool) for v in value.values()
        )
    if key in ("python_path", "warm_imports"):
        return _is_str_list(value)
    if key == "workers":
        return (isinstance(value, int) and not isinstance(value, bool) and value >= 1) or (
            value == "auto"
        )
    if key == "isolation":
        return value in ISOLATION_MODES
    if key == "timeout":
        return isinstance(value, int | float) and not isinstance(value, bool) and value >= 0
    if key == "addopts":
        return isinstance(value, str) or _is_str_list(value)
    if key == "junit_xml":
        return isinstance(value, str) and bool(value)
    if key == "format":
        return value in ("human", "json")
    return False


def load_tool_table(pyproject: Path) -> dict[str, Any]:
    """``[tool.tach]`` of ``pyproject`` (empty when there is none), checked and normalised.

    An unknown key or a value of the wrong type is a :class:`ConfigValueError` naming the key,
    the file and the type expected. ``addopts`` comes back as a list of arguments, ``env``
    values as strings.
    """
    if not pyproject.is_file():
        return {}
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib
    try:
        doc = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigValueError(f"{pyproject}: {exc}") from exc
    tool = doc.get("tool", {})
    table = tool.get("tach", {}) if isinstance(tool, dict) else {}
    if not isinstance(table, dict):
        raise ConfigValueError(f"{pyproject}: [tool.tach] must be a table")
    checked: dict[str, Any] = {}
    for key, value in table.items():
        if key not in TOOL_KEYS:
            known = ", ".join(sorted(TOOL_KEYS))
            raise ConfigValueError(
                f"{pyproject}: unknown key {key!r} in [tool.tach] (known keys: {known})"
            )
        if not _tool_value_ok(key, value):
            raise ConfigValueError(
                f"{pyproject}: [tool.tach] {key} must be {TOOL_KEYS[key]}, "
                f"not {type(value).__name__} {value!r}"
            )
        if key == "addopts" and isinstance(value, str):
            value = shlex.split(value)
        elif key == "env":
            value = {name: str(v) for name, v in value.items()}
        elif key == "timeout":
            value = float(value)
        checked[key] = value
    return checked


@dataclasses.dataclass
class Layers:
    """The layers of settings below the command line: ``TACH_*`` and ``[tool.tach]``."""

    #: ``[tool.tach]``, as :func:`load_tool_table` returns it.
    tool: dict[str, Any] = dataclasses.field(default_factory=dict)
    #: The ``pyproject.toml`` it came from.
    tool_path: Path | None = None
    #: The environment ``TACH_*`` variables are read from.
    environ: Mapping[str, str] = dataclasses.field(default_factory=dict)
    #: Where relative paths of ``[tool.tach]`` start.
    rootdir: Path | None = None
    #: Where relative paths of the command line and the environment start.
    invocation_dir: Path | None = None

    @classmethod
    def load(
        cls,
        rootdir: Path,
        inifile: Path | None,
        invocation_dir: Path,
        environ: Mapping[str, str] | None = None,
    ) -> Layers:
        """The layers of a project: ``[tool.tach]`` of its ``pyproject.toml`` (the config file
        when that is one, else the rootdir's) and the ``TACH_*`` variables of ``environ``."""
        if inifile is not None and inifile.name == "pyproject.toml":
            pyproject = inifile
        else:
            pyproject = rootdir / "pyproject.toml"
        return cls(
            tool=load_tool_table(pyproject),
            tool_path=pyproject,
            environ=dict(os.environ if environ is None else environ),
            rootdir=rootdir,
            invocation_dir=invocation_dir,
        )

    def from_rootdir(self, path: str) -> str:
        base = self.rootdir or Path.cwd()
        return os.path.normpath(base / os.path.expanduser(path))

    def absolute(self, path: str | None, source: str) -> str | None:
        """A path setting made absolute: ``[tool.tach]``'s from the rootdir, others from the
        invocation directory (as pytest's ``--junitxml``)."""
        if path is None:
            return None
        path = os.path.expanduser(os.path.expandvars(path))
        if source.startswith("[tool.tach]"):
            return self.from_rootdir(path)
        return os.path.normpath((self.invocation_dir or Path.cwd()) / path)


class _Resolver:
    """Picks each setting from the first layer that has it, and remembers which one it was."""

    def __init__(self, layers: Layers, addopts: argparse.Namespace) -> None:
        self.layers = layers
        self.addopts = addopts
        self.sources: dict[str, str] = {}

    def __call__(
        self,
        key: str,
        cli_value: Any,
        flag: str,
        parse: Callable[[Any], Any],
        default: Any,
    ) -> Any:
        env_var = ENV_VARS.get(key)
        ini_value = getattr(self.addopts, key, None)
        candidates = [
            (cli_value, f"command line ({flag})"),
            (self.layers.environ.get(env_var) if env_var else None, f"environment ({env_var})"),
            (self.layers.tool.get(key), f"[tool.tach] ({self.layers.tool_path})"),
            (ini_value, "pytest ini options (addopts)"),
        ]
        for value, source in candidates:
            if value is None or value == "":
                continue
            self.sources[key] = source
            try:
                return parse(value)
            except ConfigValueError as exc:
                raise ConfigValueError(f"{exc} (from {source})") from None
        self.sources[key] = "default"
        return parse(default) if default is not None else None

    def table(self, key: str, default: Any) -> Any:
        """A setting only ``[tool.tach]`` has."""
        if key in self.layers.tool:
            self.sources[key] = f"[tool.tach] ({self.layers.tool_path})"
            return self.layers.tool[key]
        self.sources[key] = "default"
        return default


def show_config(config: RunConfig) -> dict[str, dict[str, Any]]:
    """Each setting's effective value and where it came from (``tach --show-config``)."""
    values = {
        "workers": config.workers,
        "isolation": config.isolation,
        "timeout": config.timeout,
        "format": config.fmt,
        "junit_xml": config.junit_xml,
        "addopts": config.tool_addopts,
        "env": config.env,
        "python_path": config.python_path,
        "warm_imports": config.warm_imports,
    }
    return {
        key: {"value": values[key], "source": config.sources.get(key, "default")}
        for key in SETTINGS
    }
