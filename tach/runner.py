"""Carrying out one run: from pytest's answer and static discovery to units, the supervisor's
run, and what the run leaves for the next (durations, the last failures); the one place that
picks exit codes.

Exit codes are pytest's (``ExitCode``): 0 all passed, 1 some failed, 2 interrupted,
3 internal error, 4 usage error, 5 no tests collected.

:mod:`tach.cli` (a cold run), :mod:`tach.watch` and :mod:`tach.server` (warm runs) plan and run
with these.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

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


def run_environment(config: RunConfig) -> dict[str, str] | None:
    """The zygote's environment: this one with ``[tool.tach] env`` (None: this one)."""
    return {**os.environ, **config.env} if config.env else None


def run_spec(config: RunConfig, invocation_dir: Path, durations: dict[str, float]) -> Any:
    """The supervisor's :class:`tach.lifecycle.RunSpec` of ``config`` (with what pytest made of
    its options, once :func:`tach.config.apply_pytest_options` has put them there)."""
    from tach import lifecycle
    from tach.config import hermetic_spec

    return lifecycle.RunSpec(
        capture_output=config.capture_output,
        collect_only=config.collect_only,
        maxfail=config.maxfail,
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
        hermetic=hermetic_spec(config),
        cwd_on_path=cwd_on_path(),
        debug=config.terminal,
    )


def session_spec(config: RunConfig, invocation_dir: Path) -> dict[str, Any]:
    """What a warm session layer is made for (``tach.lifecycle.layers.WarmSession``)."""
    return {
        "invocation_dir": str(invocation_dir),
        "pytest_args": config.pytest_args,
        "isolation": config.isolation,
        "junit_xml": bool(config.junit_xml),
    }


def session_plan(config: RunConfig, found: Any, invocation_dir: Path) -> dict[str, Any]:
    """The ``Plan`` a session layer prepares with: the conftests and test modules of every
    test ``found``, and the warm imports."""
    plan = plan_run(config, found, invocation_dir)
    return {
        "conftest_dirs": plan.conftest_dirs,
        "warm_imports": config.warm_imports,
        "collection_paths": plan.collection_paths,
    }


def cwd_on_path() -> bool:
    """Whether the invocation directory leads ``sys.path`` (``python -m tach``, as
    ``python -m pytest``; not the ``tach`` command, as not the ``pytest`` command)."""
    return Path(sys.argv[0]).name != "tach"


def check_expressions(config: RunConfig) -> None:
    """``-k`` and ``-m`` read by pytest's own parser: ``ConfigError`` with the message pytest
    gives for one it cannot read."""
    from tach.discovery.select import compile_expression

    for expression, flag in ((config.keyword, "-k"), (config.markexpr, "-m")):
        if expression is not None:
            compile_expression(expression, flag)


def check_debugging(config: RunConfig) -> None:
    """``--pdb`` and ``--trace`` need a terminal to debug on: ``ConfigError`` without one."""
    from tach.discovery.ini import ConfigError

    flags = [flag for flag, on in (("--pdb", config.usepdb), ("--trace", config.trace)) if on]
    if flags and not config.terminal:
        raise ConfigError(
            f"{' and '.join(flags)} need{'s' if len(flags) == 1 else ''} a terminal to debug "
            "on: Tach's standard input or output is not a terminal here (CI, a pipe, "
            "--format=json redirected), or Tach runs in the background, or the run is a --watch "
            "or --keep-warm one, which do not lend theirs. Run tach from a terminal, in the "
            "foreground, or leave the option out."
        )


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
    # events' ``t`` counts from the run's start: read when each is written, since a watch
    # run's supervisor (made ahead) starts its clock again when the run is resumed
    origin = (lambda: supervisor.started) if hasattr(supervisor, "started") else None
    json_reporter = None
    if config.fmt == "json":
        json_reporter = JsonReporter(locations=locations, origin=origin)
        reporters.append(json_reporter)
    elif config.fmt == "github":  # after the terminal report: its commands end the output
        from tach.reporter.github import GithubReporter

        json_reporter = GithubReporter(locations=locations)
        reporters.append(json_reporter)
    if config.junit_xml:
        reporters.append(junit_reporter(config.junit_xml, found.config, locations))
    html_reporter = None
    if config.report_html:
        from tach.reporter.html import HtmlReporter

        html_reporter = HtmlReporter(config.report_html, locations=locations, origin=origin)
        reporters.append(html_reporter)
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
    expected = plan.expected_tests
    if config.change is not None:
        units = changed_units(config, found, supervisor, units)
        expected = sum(len(unit.expected) for unit in units)
    if config.shard is not None:
        narrowed = bool(config.last_failed and last_failed)
        units, digest = shard_of_run(config, found, plan.units, units, durations, narrowed)
        expected = sum(len(u.expected) for u in units)
        supervisor.spec.run_info = {
            **supervisor.spec.run_info,
            "shard": {"index": config.shard[0], "total": config.shard[1], "plan": digest},
        }
        supervisor.decide_exit = shard_exit_code
    locations.update(result.tests)
    if human is not None:
        human.expected = expected
    for events in (json_reporter, html_reporter):
        if events is not None:
            events.expected = expected
    summary = supervisor.run(units, plan.conftest_dirs, config.warm_imports, plan.collection_paths)
    if config.shard is not None and summary.exit_code == EXIT_OK and exit_code(summary) != EXIT_OK:
        k, n = config.shard
        sys.stderr.write(
            f"tach: shard {k}/{n} ran no tests: exit code 0, as an empty shard is not a "
            "failure (tach merge gives the whole run's)\n"
        )
    if human is None and summary.zygote_exit_code is not None:
        sys.stderr.write(summary.zygote_output)  # why pytest stopped, even under -q
    if summary.zygote_exit_code is None and not summary.collect_only:
        with contextlib.suppress(OSError):
            save_durations(cache_dir, summary.results.values(), durations)
            save_last_failed(cache_dir, summary, last_failed)
    if retain is not None:
        retain += [supervisor, summary, found, plan, units, durations, locations, last_failed]
    if config.shard is not None or (config.change is not None and not units):
        return shard_exit_code(summary)
    return exit_code(summary)


def changed_units(config: RunConfig, found: Any, supervisor: Any, units: list[Unit]) -> list[Unit]:
    """The units of ``units`` with a test ``config.change`` (``--changed-since``) can affect
    (:mod:`tach.changed`); the selection goes to ``run_start``. No unit: the run is not a
    failure (pytest's 5 becomes 0), as nothing the change touches is tested."""
    from tach.changed import select, unit_path
    from tach.graph import ImportGraph

    result = found.result
    graph = ImportGraph(Path(result.rootdir), result.imports)
    test_files = {unit_path(unit) for unit in units if not unit.id.endswith("/")}
    python_files = found.config.get("python_files") or ("test_*.py", "*_test.py")
    durations_file = Path(config.durations_file) if config.durations_file else None
    selection = select(
        config.change, graph, test_files, config.changed_deps, python_files, durations_file
    )
    kept = [unit for unit in units if selection.keeps(unit)]
    supervisor.spec.run_info = {
        **supervisor.spec.run_info,
        "changed_since": selection.to_json(units, kept),
    }
    if not kept:
        supervisor.decide_exit = shard_exit_code
    return kept


def shard_exit_code(summary: RunSummary) -> int:
    """:func:`exit_code` of one shard's run (``--shard``): a shard that ran no tests is not a
    failure (5 becomes 0), since a CI matrix must not fail because one machine got nothing."""
    code = exit_code(summary)
    return EXIT_OK if code == EXIT_NO_TESTS else code


def shard_of_run(
    config: RunConfig,
    found: Any,
    planned: Sequence[Unit],
    units: Sequence[Unit],
    durations: dict[str, float],
    narrowed: bool,
) -> tuple[list[Unit], str]:
    """The units of ``config.shard`` among the run's ``units`` (:mod:`tach.shards`), and the
    digest of the whole cut (:func:`tach.shards.plan_digest`).

    A module weighs what its unit of the plan (``planned``, before slicing) weighs with the
    durations of ``--durations-file``, else ``durations`` (``.tach``'s), less the tests
    ``-k``/``-m``/``--deselect`` leave out; ``narrowed`` (``--lf`` reran only some tests):
    what the tests rerun weigh.
    """
    from tach.scheduler import (
        UNIT_OVERHEAD_SECONDS,
        RecordedFiles,
        estimate_weight,
        load_durations_file,
        recorded_items,
    )
    from tach.shards import cut, group_of, plan_digest

    assert config.shard is not None
    if config.durations_file:
        durations = load_durations_file(Path(config.durations_file))
    rootdir = Path(found.result.rootdir)
    dynamic = any(t.dynamic for t in found.result.tests)
    recorded = recorded_items(durations) if dynamic else {}
    files = RecordedFiles(durations, rootdir) if durations else None

    dropped = StaticSelection(found).dropped()

    def weight(unit: Unit) -> float:
        if dropped and any(test_id in dropped for test_id in unit.expected):
            # what -k, -m and --deselect leave out costs nothing: click's 31,000 stress tests,
            # all deselected, had made one shard of their module alone, and it ran nothing
            kept = [test_id for test_id in unit.expected if test_id not in dropped]
            unit = dataclasses.replace(unit, expected=kept)
        return estimate_weight(unit, durations, recorded, files)

    whole = {unit.id: unit for unit in planned}

    def weigh(group: str, members: list[Unit]) -> float:
        if not narrowed and group in whole:
            return weight(whole[group])
        extra = UNIT_OVERHEAD_SECONDS * (len(members) - 1)
        return sum(weight(unit) for unit in members) - extra

    index, total = config.shard
    shard_of = cut(units, total, weigh)
    mine = [unit for unit in units if shard_of[group_of(unit)] == index]
    return mine, plan_digest(shard_of)


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
        dropped = self.dropped()
        count = 0
        for test_id in unit.expected:
            if test_id in dropped:
                continue
            items = recorded.get(test_id) if recorded and test_id not in (durations or {}) else None
            count += len(items) if items else 1
        return count

    def dropped(self) -> frozenset[str]:
        """The ids of the tests the selection leaves out (computed once)."""
        if self._dropped is None:
            self._dropped = self._deselected()
        return self._dropped

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
