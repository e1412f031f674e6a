"""The run command's options: the few that are Tach's, and everything else, which is pytest's.

``tach`` takes the command line ``pytest`` takes. Tach's own options (:func:`add_run_arguments`:
workers, isolation, output format, limits, JUnit XML, slicing, shards) are taken out of it by
:func:`split_arguments`; every other word, options and arguments alike and in their order, goes
to pytest in the zygote unchanged. pytest parses them there with its own parser, every plugin's
and initial conftest's options registered and ``addopts``/``PYTEST_ADDOPTS`` applied, so an
option pytest accepts is accepted with its meaning, and one it refuses is refused with pytest's
message and exit code 4. The supervisor reads what it needs of them (what to collect, ``-k``,
``-m``, ``-x``, ``-v``, ``-r``, ``--tb``, ``--durations``, ``--lf``...) from pytest's answer
(:func:`apply_pytest_options`), never from a list of pytest's options of its own.

Where a Tach option has the name of a plugin's, Tach's wins (``docs/outputs.md`` says why):
``-n`` (pytest-xdist's, whose values ``auto``, ``logical`` and ``0`` it accepts), ``--timeout``
(pytest-timeout's, with the same meaning), ``--junitxml`` (pytest's own, with the same
meaning: the supervisor writes the file).

Tach's own settings come from four layers, the first that sets a value winning: the command
line, ``TACH_*`` environment variables, the ``[tool.tach]`` table of ``pyproject.toml``, and
pytest's ini options (Tach's options found in ``addopts``); then the defaults.
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
#: ``--slice``: when a long module may be split across processes (``docs/engine.md``).
SLICE_LEVELS = ("never", "safe", "always")
#: ``--format``: the terminal report, the NDJSON stream, GitHub Actions annotations.
FORMATS = ("human", "json", "github")


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """Tach's own options of ``tach [options] [pytest's options and arguments]`` (``--version``
    and ``--help`` aside)."""
    parser.add_argument(
        "--format",
        choices=FORMATS,
        default=None,
        help="json: the NDJSON event stream on stdout, the report on stderr; github: the "
        "report, then GitHub Actions annotations of the failures on stdout, and a Markdown job "
        "summary appended to $GITHUB_STEP_SUMMARY (default: human)",
    )
    parser.add_argument(
        "--show-config",
        action="store_true",
        help="print the effective configuration and where each value came from, and exit",
    )
    parser.add_argument(
        "-n",
        "--workers",
        default=None,
        metavar="N",
        help="worker processes: a number, auto or logical (the CPUs this process may use); "
        "0 is one worker, as pytest-xdist's -n 0 runs without distribution (default: auto)",
    )
    parser.add_argument(
        "--isolation",
        choices=ISOLATION_MODES,
        default=None,
        help="what a test process is (default: module)",
    )
    parser.add_argument(
        "--slice",
        choices=SLICE_LEVELS,
        default=None,
        help="split a long test module across workers: never (default), safe (only where "
        "no module-level state can be observed), always",
    )
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
    parser.add_argument(
        "--report-html",
        default=None,
        metavar="PATH",
        help="write the run's report as one self-contained HTML page to PATH: failures, "
        "slowest tests, a timeline of the workers (env TACH_REPORT_HTML; --html is "
        "pytest-html's)",
    )
    add_shard_arguments(parser)
    add_fault_arguments(parser)
    add_watch_arguments(parser)
    add_warm_arguments(parser)


def add_shard_arguments(parser: argparse.ArgumentParser) -> None:
    """``--shard`` and ``--durations-file`` (``docs/ci.md``)."""
    parser.add_argument(
        "--shard",
        default=None,
        metavar="K/N",
        help="run only the K-th of N shards of the selected tests (1-based), balanced by "
        "recorded durations; auto: from the CI's variables (GitLab, CircleCI, Buildkite); "
        "an empty shard exits 0 (env TACH_SHARD)",
    )
    parser.add_argument(
        "--durations-file",
        default=None,
        metavar="FILE",
        help="balance --shard by the durations in FILE (tach durations --export), not by "
        ".tach/durations.json, so that every machine plans the same shards",
    )
    parser.add_argument(
        "--changed-since",
        default=None,
        metavar="REF",
        help="run only the tests a change since the git revision REF can affect (committed "
        "since its merge base with HEAD, staged, unstaged and untracked files), by their "
        "imports (env TACH_CHANGED_SINCE)",
    )
    parser.add_argument(
        "--changed-dep",
        action="append",
        default=None,
        dest="changed_deps",
        metavar="GLOB=PATHS",
        help="with --changed-since: a changed file matching GLOB (rootdir-relative) affects "
        "the tests under PATHS (comma-separated; none: no test), for what imports do not "
        "show (data files, dynamic imports); repeatable, adds to [tool.tach] changed_deps",
    )


def add_warm_arguments(parser: argparse.ArgumentParser) -> None:
    """``--keep-warm`` (``docs/watch.md``, "Kept warm between commands")."""
    parser.add_argument(
        "--keep-warm",
        action="store_true",
        default=None,
        help="leave pytest, the plugins and the project set up in a per-user server after "
        "the run, and use it in later runs (tach server status|stop)",
    )


def add_watch_arguments(parser: argparse.ArgumentParser) -> None:
    """``--watch`` and its options (``docs/watch.md``)."""
    parser.add_argument(
        "-w",
        "--watch",
        action="store_true",
        default=None,
        help="run, then re-run the tests a change affects whenever a file changes "
        "(Enter: all, f: failed, q: quit)",
    )
    parser.add_argument(
        "--watch-all",
        action="store_true",
        default=None,
        help="with --watch: re-run every test on each change, not only the affected ones",
    )
    parser.add_argument(
        "--watch-debounce",
        default=None,
        metavar="MS",
        help="with --watch: wait until files have been quiet this long before a run (default: 100)",
    )


def _option_arity(parser: argparse.ArgumentParser) -> dict[str, int]:
    """Each option string of ``parser`` and how many words it takes (0 or 1)."""
    arity: dict[str, int] = {}
    for action in parser._actions:
        takes = 0 if action.nargs == 0 else 1
        for option in action.option_strings:
            arity[option] = takes
    return arity


def split_arguments(
    argv: Sequence[str], parser: argparse.ArgumentParser
) -> tuple[list[str], list[str]]:
    """Tach's options (those ``parser`` defines) apart from everything else, which is pytest's.

    Only exact option names count (no abbreviations: ``--iso`` is pytest's to judge), in
    the forms ``--name value``, ``--name=value``, ``-n value`` and ``-nvalue``. Everything after
    ``--`` is pytest's, as is every other word, in its order.
    """
    arity = _option_arity(parser)
    ours: list[str] = []
    theirs: list[str] = []
    words = iter(argv)
    for word in words:
        if word == "--":
            theirs.extend(words)
            break
        name, eq, _ = word.partition("=")
        if word.startswith("--") and name in arity:
            ours.append(word)
            if arity[name] and not eq:
                ours.append(next(words, ""))
            continue
        if not word.startswith("--") and word[:2] in arity and len(word) >= 2:
            ours.append(word)
            if arity[word[:2]] and len(word) == 2:
                ours.append(next(words, ""))
            continue
        theirs.append(word)
    return ours, theirs


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
    parser.add_argument(
        "--max-processes",
        default=None,
        metavar="N",
        help="RLIMIT_NPROC of each test process: it and its descendants at most N processes "
        "(needs a non-root user)",
    )
    parser.add_argument(
        "--max-open-files",
        default=None,
        metavar="N",
        help="RLIMIT_NOFILE of each test process",
    )
    parser.add_argument(
        "--max-cpu-time",
        default=None,
        metavar="SECONDS",
        help="CPU time a test may use (RLIMIT_CPU); past it the test process is killed",
    )
    add_isolation_arguments(parser)


def add_isolation_arguments(parser: argparse.ArgumentParser) -> None:
    """``--isolate-network`` and ``--private-tmp`` (``docs/isolation.md``)."""
    parser.add_argument(
        "--isolate-network",
        dest="network",
        action="store_const",
        const="off",
        default=None,
        help="run each test process in a network namespace with only loopback up "
        "(@pytest.mark.network keeps the host's network)",
    )
    parser.add_argument(
        "--private-tmp",
        action="store_true",
        default=None,
        help="give each test process a private tmpfs at /tmp (and TMPDIR)",
    )


@dataclasses.dataclass
class RunConfig:
    """The resolved options of one run: Tach's own, then those pytest's answer gives
    (:func:`apply_pytest_options`)."""

    workers: int
    isolation: str
    python: str
    fmt: str
    #: What the zygote's pytest gets on its command line: ``[tool.tach] addopts``, then the
    #: command line's words that are not Tach's.
    pytest_args: list[str]
    #: ``--slice``: never, safe or always.
    slice: str = "never"
    #: Seconds a test may take (0: no limit), the whole run (0: no limit), and the memory
    #: limit of a test process in bytes (0: none).
    timeout: float = 0.0
    session_timeout: float = 0.0
    max_memory: int = 0
    #: ``--max-processes``, ``--max-open-files`` (0: no limit), ``--max-cpu-time`` (seconds).
    max_processes: int = 0
    max_open_files: int = 0
    max_cpu_time: float = 0.0
    #: ``--isolate-network`` (``[tool.tach] network = "off"``), ``--private-tmp``.
    isolate_network: bool = False
    private_tmp: bool = False
    #: Where to write the JUnit XML report (absolute), if anywhere.
    junit_xml: str | None = None
    #: Where to write the HTML report (absolute), if anywhere (``--report-html``).
    report_html: str | None = None
    #: ``[tool.tach] env``: variables set for the zygote (and so every test process).
    env: dict[str, str] = dataclasses.field(default_factory=dict)
    #: ``[tool.tach] python_path``: absolute directories put in front of ``sys.path``.
    python_path: list[str] = dataclasses.field(default_factory=list)
    #: ``[tool.tach] warm_imports``: modules the zygote imports before forking.
    warm_imports: list[str] = dataclasses.field(default_factory=list)
    #: ``[tool.tach] addopts``: given to pytest before the command line's arguments.
    tool_addopts: list[str] = dataclasses.field(default_factory=list)
    #: ``--watch``, ``--watch-all``, and the quiet time before a watch run (seconds).
    watch: bool = False
    watch_all: bool = False
    watch_debounce: float = 0.1
    #: ``--shard K/N``: (K, N), 1-based; None: the whole run.
    shard: tuple[int, int] | None = None
    #: ``--durations-file``: the durations shards are balanced by (absolute), if not .tach's.
    durations_file: str | None = None
    #: ``--changed-since REF``: run only the tests a change since REF can affect.
    changed_since: str | None = None
    #: ``--changed-dep`` and ``[tool.tach] changed_deps``: (glob, rootdir-relative paths).
    changed_deps: list[tuple[str, list[str]]] = dataclasses.field(default_factory=list)
    #: What git says changed since ``changed_since`` (asked before the run starts).
    change: Any = None
    #: ``--keep-warm``: run from (and leave) a per-user server; its idle time in seconds.
    keep_warm: bool = False
    keep_warm_idle: float = 900.0
    #: Where each setting's value came from (``tach --show-config``).
    sources: dict[str, str] = dataclasses.field(default_factory=dict)

    # What pytest made of its options (``Configured``), once it has answered.
    #: pytest's collection arguments (the command line's, else ``testpaths``, else the
    #: invocation directory), absolute.
    args: list[str] = dataclasses.field(default_factory=list)
    keyword: str | None = None
    markexpr: str | None = None
    maxfail: int = 0
    verbosity: int = 0
    reportchars: str = "fE"
    tbstyle: str = "auto"
    durations: int | None = None
    color: str = "auto"
    capture_output: bool = True
    collect_only: bool = False
    last_failed: bool = False
    failed_first: bool = False
    doctest_modules: bool = False
    #: pytest's ``--pdb`` and ``--trace``.
    usepdb: bool = False
    trace: bool = False
    #: The run can lend its terminal to a test stopped in pdb (a cold run whose standard input
    #: and output are a terminal; ``tach.debugger``).
    terminal: bool = False


class ConfigValueError(ValueError):
    """An option has a value Tach cannot use; the message names the option."""


def parse_workers(value: str | None) -> int:
    if value in (None, "", "auto", "logical"):
        return max(1, len(os.sched_getaffinity(0)))
    try:
        workers = int(value)
    except ValueError:
        raise ConfigValueError(
            f"-n/--workers takes a number, 'auto' or 'logical', not {value!r}"
        ) from None
    if workers < 0:
        raise ConfigValueError(f"-n/--workers must be 0 or more, not {workers}")
    return max(workers, 1)


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


def size_of(option: str) -> Callable[[Any], int]:
    """:func:`parse_size` for ``option``, also taking a number (``[tool.tach]``)."""
    return lambda value: parse_size(str(value), option)


def count(option: str) -> Callable[[Any], int]:
    """A whole number of at least 1 for ``option``."""

    def parse(value: Any) -> int:
        try:
            number = int(value)
        except (TypeError, ValueError):
            raise ConfigValueError(f"{option} takes a whole number, not {value!r}") from None
        if number < 1 or isinstance(value, bool):
            raise ConfigValueError(f"{option} must be at least 1, not {value!r}")
        return number

    return parse


def cpu_seconds(value: Any) -> float:
    """``--max-cpu-time``: whole seconds as the kernel counts them (rounded up), at least 1."""
    seconds = parse_seconds(str(value), "--max-cpu-time")
    if seconds <= 0:
        raise ConfigValueError(f"--max-cpu-time must be more than 0 seconds, not {value!r}")
    return float(int(seconds + 0.999))


def parse_network(value: str | bool) -> bool:
    """``network``: ``"off"`` (isolated: True) or ``"on"``/``"host"`` (False)."""
    if value is True or value in ("off", "isolated"):
        return True
    if value is False or value in ("on", "host"):
        return False
    raise ConfigValueError(f'network must be "off" or "on", not {value!r}')


def hermetic_spec(config: RunConfig) -> dict[str, Any]:
    """The isolation and limits of test processes, as the zygote's spec carries them
    (:class:`tach.isolation.Hermetic`)."""
    from tach.isolation import Hermetic

    return Hermetic(
        network=config.isolate_network,
        private_tmp=config.private_tmp,
        max_memory=config.max_memory,
        max_processes=config.max_processes,
        max_open_files=config.max_open_files,
        max_cpu_time=config.max_cpu_time,
    ).to_spec()


def options_parser() -> argparse.ArgumentParser:
    """A parser of Tach's run options alone (for ``addopts`` and ``[tool.tach] addopts``)."""
    parser = argparse.ArgumentParser(add_help=False)
    add_run_arguments(parser)
    return parser


def tach_options_in(words: Sequence[str]) -> argparse.Namespace:
    """Tach's options among pytest-style ``words`` (``addopts``), parsed as the command line's."""
    parser = options_parser()
    ours, _ = split_arguments(words, parser)
    namespace, _ = parser.parse_known_args(ours)
    return namespace


def build_run_config(
    ns: argparse.Namespace,
    pytest_args: Sequence[str],
    addopts: Sequence[str],
    python: str,
    *,
    layers: Layers | None = None,
) -> RunConfig:
    """Resolve Tach's own settings into a :class:`RunConfig`.

    ``ns`` is the command line's Tach options; ``pytest_args`` the rest of it; ``addopts``
    pytest's ``addopts`` and ``PYTEST_ADDOPTS`` (the lowest layer of Tach's settings);
    ``layers`` the ``TACH_*`` environment and ``[tool.tach]`` (none: only the command line and
    ``addopts``). Tach's options in ``[tool.tach] addopts`` are read as the command line's;
    the rest goes to pytest in front of ``pytest_args``.
    """
    layers = layers if layers is not None else Layers()
    tool_addopts = list(layers.tool.get("addopts", []))
    tool_tach, tool_pytest = split_arguments(tool_addopts, options_parser())
    base = tach_options_in([*addopts, *tool_tach])
    resolve = _Resolver(layers, base)
    junit_xml = resolve("junit_xml", getattr(ns, "junit_xml", None), "--junit-xml", str, None)
    report_html = resolve(
        "report_html", getattr(ns, "report_html", None), "--report-html", str, None
    )
    return RunConfig(
        workers=resolve("workers", ns.workers, "-n/--workers", parse_workers, "auto"),
        isolation=resolve("isolation", ns.isolation, "--isolation", parse_isolation, "module"),
        slice=resolve("slice", ns.slice, "--slice", parse_slice, "never"),
        python=ns.python or python,
        fmt=resolve("format", ns.format, "--format", parse_format, "human"),
        pytest_args=[*tool_pytest, *pytest_args],
        timeout=resolve("timeout", getattr(ns, "timeout", None), "--timeout", parse_timeout, None)
        or 0.0,
        session_timeout=parse_seconds(ns.session_timeout, "--session-timeout"),
        max_memory=resolve(
            "max_memory", ns.max_memory, "--max-memory", size_of("--max-memory"), None
        )
        or 0,
        max_processes=resolve(
            "max_processes", ns.max_processes, "--max-processes", count("--max-processes"), None
        )
        or 0,
        max_open_files=resolve(
            "max_open_files",
            ns.max_open_files,
            "--max-open-files",
            count("--max-open-files"),
            None,
        )
        or 0,
        max_cpu_time=resolve("max_cpu_time", ns.max_cpu_time, "--max-cpu-time", cpu_seconds, None)
        or 0.0,
        isolate_network=resolve(
            "network",
            ns.network,
            "--isolate-network",
            parse_network,
            False,
        ),
        private_tmp=resolve("private_tmp", ns.private_tmp, "--private-tmp", parse_flag, False),
        junit_xml=layers.absolute(junit_xml, resolve.sources["junit_xml"]),
        report_html=layers.absolute(report_html, resolve.sources["report_html"]),
        env=resolve.table("env", {}),
        python_path=[layers.from_rootdir(p) for p in resolve.table("python_path", [])],
        warm_imports=resolve.table("warm_imports", []),
        tool_addopts=tool_addopts,
        watch=bool(getattr(ns, "watch", None)),
        watch_all=resolve("watch_all", getattr(ns, "watch_all", None), "--watch-all", bool, False),
        watch_debounce=resolve(
            "watch_debounce",
            getattr(ns, "watch_debounce", None),
            "--watch-debounce",
            parse_milliseconds,
            100,
        ),
        keep_warm=resolve(
            "keep_warm", getattr(ns, "keep_warm", None), "--keep-warm", parse_flag, False
        ),
        keep_warm_idle=resolve.table("keep_warm_idle", 900.0),
        shard=resolve(
            "shard",
            getattr(ns, "shard", None),
            "--shard",
            lambda value: parse_shard(value, layers.environ),
            None,
        ),
        durations_file=layers.absolute(
            resolve(
                "durations_file",
                getattr(ns, "durations_file", None),
                "--durations-file",
                str,
                None,
            ),
            resolve.sources.get("durations_file", "default"),
        ),
        changed_since=resolve(
            "changed_since", getattr(ns, "changed_since", None), "--changed-since", str, None
        ),
        changed_deps=changed_deps(resolve, getattr(ns, "changed_deps", None)),
        sources=resolve.sources,
    )


def changed_deps(resolve: _Resolver, cli: Sequence[str] | None) -> list[tuple[str, list[str]]]:
    """``[tool.tach] changed_deps``, then each ``--changed-dep`` of the command line."""
    deps = list(resolve.table("changed_deps", {}).items())
    if cli:
        table = resolve.sources["changed_deps"]
        deps += [parse_changed_dep(value) for value in cli]
        resolve.sources["changed_deps"] = "command line (--changed-dep)" + (
            f" and {table}" if table != "default" else ""
        )
    return deps


def parse_changed_dep(value: str) -> tuple[str, list[str]]:
    """``--changed-dep GLOB=PATH[,PATH...]`` as ``(GLOB, [PATH, ...])`` (``GLOB=``: none)."""
    glob, equals, paths = value.partition("=")
    if not equals or not glob.strip():
        raise ConfigValueError(
            f"--changed-dep takes GLOB=PATH[,PATH...] (GLOB= for a file that affects no "
            f"test), not {value!r}"
        )
    return glob.strip(), [path.strip() for path in paths.split(",") if path.strip()]


def apply_pytest_options(config: RunConfig, configured: Mapping[str, Any]) -> None:
    """Fill in what pytest made of its command line (the zygote's ``Configured`` message)."""
    options = configured["options"]
    config.args = list(configured["args"])
    config.keyword = options.get("keyword") or None
    config.markexpr = options.get("markexpr") or None
    config.maxfail = int(options.get("maxfail") or 0)
    config.verbosity = int(options.get("verbose") or 0)
    config.reportchars = str(options.get("reportchars") or "")
    config.tbstyle = str(options.get("tbstyle") or "auto")
    durations = options.get("durations")
    config.durations = int(durations) if durations is not None else None
    config.color = str(options.get("color") or "auto")
    config.capture_output = options.get("capture") != "no"
    config.collect_only = bool(options.get("collectonly"))
    config.last_failed = bool(options.get("lf"))
    config.failed_first = bool(options.get("failedfirst"))
    config.doctest_modules = bool(options.get("doctestmodules"))
    config.usepdb = bool(options.get("usepdb"))
    config.trace = bool(options.get("trace"))
    xmlpath = options.get("xmlpath")
    if config.junit_xml is None and xmlpath:  # pytest's --junitxml in addopts
        config.junit_xml = os.path.normpath(Path(configured.get("invocation_dir", ".")) / xmlpath)
        config.sources["junit_xml"] = "pytest ini options (addopts)"


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
    "report_html": "a string (a path)",
    "format": '"human", "json" or "github"',
    "slice": '"never", "safe" or "always"',
    "watch_all": "a boolean",
    "keep_warm": "a boolean",
    "keep_warm_idle": "a number of seconds",
    "watch_debounce": "a number of milliseconds",
    "network": '"off" or "on"',
    "private_tmp": "a boolean",
    "max_memory": 'a size ("512M") or a number of bytes',
    "max_processes": "an integer >= 1",
    "max_open_files": "an integer >= 1",
    "max_cpu_time": "a number of seconds",
    "changed_deps": "a table of lists of strings (glob = [paths])",
}

#: The ``TACH_*`` environment variable of each setting that has one.
ENV_VARS: dict[str, str] = {
    "workers": "TACH_WORKERS",
    "isolation": "TACH_ISOLATION",
    "timeout": "TACH_TIMEOUT",
    "junit_xml": "TACH_JUNIT_XML",
    "report_html": "TACH_REPORT_HTML",
    "format": "TACH_FORMAT",
    "slice": "TACH_SLICE",
    "keep_warm": "TACH_KEEP_WARM",
    "shard": "TACH_SHARD",
    "durations_file": "TACH_DURATIONS_FILE",
    "network": "TACH_NETWORK",
    "private_tmp": "TACH_PRIVATE_TMP",
    "changed_since": "TACH_CHANGED_SINCE",
}

#: The settings ``--show-config`` prints, in its order.
SETTINGS = (
    "workers",
    "isolation",
    "slice",
    "timeout",
    "format",
    "junit_xml",
    "report_html",
    "addopts",
    "env",
    "python_path",
    "warm_imports",
    "keep_warm",
    "shard",
    "durations_file",
    "network",
    "private_tmp",
    "max_memory",
    "max_processes",
    "max_open_files",
    "max_cpu_time",
    "changed_since",
    "changed_deps",
)

#: ``--shard auto``: the CI variables of the shard's number and the number of shards, and
#: whether the number counts from 0.
CI_SHARD_VARIABLES = (
    ("CI_NODE_INDEX", "CI_NODE_TOTAL", False),  # GitLab's parallel:
    ("CIRCLE_NODE_INDEX", "CIRCLE_NODE_TOTAL", True),  # CircleCI's parallelism
    ("BUILDKITE_PARALLEL_JOB", "BUILDKITE_PARALLEL_JOB_COUNT", True),  # Buildkite's parallelism
)


def parse_shard(value: str, environ: Mapping[str, str] | None = None) -> tuple[int, int]:
    """``--shard``: ``K/N`` (1 <= K <= N) as ``(K, N)``; ``auto``: from the CI variables of
    ``environ`` (:data:`CI_SHARD_VARIABLES`)."""
    text = str(value).strip()
    if text == "auto":
        return _shard_from_ci(os.environ if environ is None else environ)
    index, slash, total = text.partition("/")
    try:
        k, n = int(index), int(total)
    except ValueError:
        raise ConfigValueError(
            f"--shard takes K/N (the K-th of N shards, 1 <= K <= N, e.g. 1/4) or auto, "
            f"not {value!r}"
        ) from None
    if not slash or n < 1 or not 1 <= k <= n:
        raise ConfigValueError(
            f"--shard takes K/N with 1 <= K <= N (shards count from 1), not {value!r}"
        )
    return k, n


def _shard_from_ci(environ: Mapping[str, str]) -> tuple[int, int]:
    for index_var, total_var, from_zero in CI_SHARD_VARIABLES:
        index, total = environ.get(index_var), environ.get(total_var)
        if not index or not total:
            continue
        try:
            k, n = int(index) + (1 if from_zero else 0), int(total)
        except ValueError:
            raise ConfigValueError(
                f"--shard auto: {index_var}={index!r} and {total_var}={total!r} must be numbers"
            ) from None
        if n < 1 or not 1 <= k <= n:
            raise ConfigValueError(
                f"--shard auto: {index_var}={index!r} is not a shard of {total_var}={total!r}"
            )
        return k, n
    names = ", ".join(f"{i}/{t}" for i, t, _ in CI_SHARD_VARIABLES)
    raise ConfigValueError(f"--shard auto: none of the CI variables {names} is set; give K/N")


def parse_isolation(value: str) -> str:
    if value not in ISOLATION_MODES:
        raise ConfigValueError(
            f"--isolation must be one of {', '.join(ISOLATION_MODES)}, not {value!r}"
        )
    return value


def parse_slice(value: str) -> str:
    if value not in SLICE_LEVELS:
        raise ConfigValueError(f"--slice must be one of {', '.join(SLICE_LEVELS)}, not {value!r}")
    return value


def parse_format(value: str) -> str:
    if value not in FORMATS:
        raise ConfigValueError(f"--format must be human, json or github, not {value!r}")
    return value


def parse_flag(value: str | bool) -> bool:
    """A yes/no setting: a boolean, or 1/0, true/false, yes/no, on/off (environment)."""
    if isinstance(value, bool):
        return value
    word = str(value).strip().lower()
    if word in ("1", "true", "yes", "on"):
        return True
    if word in ("0", "false", "no", "off"):
        return False
    raise ConfigValueError(f"expected 1/0, true/false, yes/no or on/off, not {value!r}")


def parse_milliseconds(value: str | float) -> float:
    """``--watch-debounce``: milliseconds, as seconds."""
    try:
        ms = float(value)
    except (TypeError, ValueError):
        raise ConfigValueError(
            f"--watch-debounce takes a number of milliseconds, not {value!r}"
        ) from None
    if not 0 <= ms < 60_000:
        raise ConfigValueError(f"--watch-debounce must be 0 to 60000 milliseconds, not {value!r}")
    return ms / 1000.0


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
    if key == "changed_deps":
        return isinstance(value, dict) and all(_is_str_list(v) for v in value.values())
    if key == "workers":
        return (isinstance(value, int) and not isinstance(value, bool) and value >= 1) or (
            value == "auto"
        )
    if key == "isolation":
        return value in ISOLATION_MODES
    if key == "slice":
        return value in SLICE_LEVELS
    if key == "timeout":
        return isinstance(value, int | float) and not isinstance(value, bool) and value >= 0
    if key == "addopts":
        return isinstance(value, str) or _is_str_list(value)
    if key in ("junit_xml", "report_html"):
        return isinstance(value, str) and bool(value)
    if key == "format":
        return value in FORMATS
    if key == "network":
        return value in ("off", "on")
    if key in ("max_processes", "max_open_files"):
        return isinstance(value, int) and not isinstance(value, bool) and value >= 1
    if key == "max_memory":
        return isinstance(value, str) or (
            isinstance(value, int) and not isinstance(value, bool) and value > 0
        )
    if key == "max_cpu_time":
        return isinstance(value, int | float) and not isinstance(value, bool) and value > 0
    if key in ("watch_all", "keep_warm", "private_tmp"):
        return isinstance(value, bool)
    if key == "keep_warm_idle":
        return isinstance(value, int | float) and not isinstance(value, bool) and value > 0
    if key == "watch_debounce":
        return isinstance(value, int | float) and not isinstance(value, bool) and value >= 0
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
        "slice": config.slice,
        "timeout": config.timeout,
        "format": config.fmt,
        "junit_xml": config.junit_xml,
        "report_html": config.report_html,
        "addopts": config.tool_addopts,
        "env": config.env,
        "python_path": config.python_path,
        "warm_imports": config.warm_imports,
        "keep_warm": config.keep_warm,
        "shard": f"{config.shard[0]}/{config.shard[1]}" if config.shard else None,
        "durations_file": config.durations_file,
        "network": "off" if config.isolate_network else "on",
        "private_tmp": config.private_tmp,
        "max_memory": config.max_memory,
        "max_processes": config.max_processes,
        "max_open_files": config.max_open_files,
        "max_cpu_time": config.max_cpu_time,
        "changed_since": config.changed_since,
        "changed_deps": {glob: paths for glob, paths in config.changed_deps},
    }
    return {
        key: {"value": values[key], "source": config.sources.get(key, "default")}
        for key in SETTINGS
    }
