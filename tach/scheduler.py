"""Scheduling policy: units of work, their order, and the interface results are reported through.

Pure policy, no processes: the event loop in :mod:`tach.lifecycle.supervisor` asks a
:class:`UnitQueue` what to run next and tells a :class:`Reporter` what happened.

A *unit* is a test module (or a list of node ids inside one, when the remaining tests of a unit
are retried in a fresh process). Units are handed out longest first — by the durations recorded
in ``.tach/durations.json`` by earlier runs, else by their static test counts — so that the last
unit to finish is a short one and workers finish together.
"""

from __future__ import annotations

import bisect
import dataclasses
import os
import tempfile
from collections.abc import Callable, Collection, Iterable, Sequence
from pathlib import Path
from typing import Any, Protocol

import orjson

from tach.results import Stats, TestResult

#: The time a test with no recorded duration is assumed to take.
DEFAULT_TEST_SECONDS = 0.005
#: What a test costs beyond its recorded duration (the duration covers its set-up, call and
#: teardown; pytest's hooks around them and the passing on of its reports come on top): about
#: 0.5 ms a test on packaging's 64,000 tests, nearly half of the CPU its run costs.
TEST_OVERHEAD_SECONDS = 0.0005
#: A unit's fixed cost (collection and a fork), in the same currency.
UNIT_OVERHEAD_SECONDS = 0.01


@dataclasses.dataclass
class Unit:
    """A piece of work for one worker: pytest collection arguments and what we expect of them."""

    id: str
    #: Arguments for ``session.perform_collect`` (absolute paths or node ids).
    args: list[str]
    #: Node ids static discovery expects (may be empty when unknown).
    expected: list[str] = dataclasses.field(default_factory=list)
    weight: float = 0.0
    #: How often this unit was started; a unit whose worker died twice is not tried again.
    attempts: int = 0
    #: Paths a directory unit leaves to other units (pytest's ``--ignore``, for this unit only).
    ignore: list[str] = dataclasses.field(default_factory=list)
    #: Run only one slice of the module's tests (see :func:`slice_heavy_units`).
    slice: UnitSlice | None = None
    #: The tests pytest is expected to report for it, when known better than ``expected``
    #: says (``-k``/``-m``/``--deselect`` applied, a dynamic test's recorded items counted).
    count: int | None = None

    @property
    def unlisted_directory(self) -> bool:
        """A directory unit whose tests static discovery does not know (a plugin collects
        them): it weighs what earlier runs recorded under it (:class:`RecordedFiles`)."""
        return not self.expected and self.id.endswith("/")


@dataclasses.dataclass
class UnitSlice:
    """The tests one slice of a unit runs: those whose position in ``ids`` (all the unit's
    tests, in static discovery's order, each dynamic test as the ids earlier runs recorded for
    it) is in ``[bounds[index], bounds[index + 1])``, once the worker has moved the cuts out
    of classes a class-scoped fixture binds.

    The worker picks its items by node id, not by position among the items pytest collected,
    so a test is never run twice nor left out even where pytest's order differs; an item
    static discovery did not expect is run by slice 0.
    """

    index: int
    bounds: list[int]
    ids: list[str]


def _unit_path(unit: Unit) -> str:
    """The file or directory a unit collects (its first argument, without a node id part)."""
    return str(Path(unit.args[0].partition("::")[0]))


class UnitQueue:
    """Units in the order they are handed out: the heaviest first."""

    def __init__(self, units: Iterable[Unit], durations: dict[str, float] | None = None) -> None:
        durations = durations or {}
        self._units = list(units)
        for unit in self._units:
            if not unit.weight:
                unit.weight = estimate_weight(unit, durations)
        self._units.sort(key=lambda unit: unit.weight)  # popped from the end: heaviest first

    def __len__(self) -> int:
        return len(self._units)

    def pop(self) -> Unit | None:
        return self._units.pop() if self._units else None

    def run_last(self, paths: Iterable[str]) -> None:
        """Hand out the units at ``paths`` after every other (a plugin's session order: see
        ``tach.adapters``), each part still heaviest first."""
        later = set(paths)
        if later:
            # popped from the end: the units to run last go to the front, in their order
            self._units.sort(key=lambda unit: not (unit.args and str(Path(unit.args[0])) in later))

    def drop(self, paths: Iterable[str]) -> list[Unit]:
        """Take out the units of the modules at ``paths`` (those pytest's walk leaves out:
        the zygote found it so); return them."""
        gone = {str(Path(p)) for p in paths}
        if not gone:
            return []
        dropped = [u for u in self._units if u.args and _unit_path(u) in gone]
        self._units = [u for u in self._units if not (u.args and _unit_path(u) in gone)]
        return dropped

    def push_front(self, unit: Unit) -> None:
        """Run ``unit`` next (a retry of the rest of a unit whose process died)."""
        self._units.append(unit)

    def expected_tests(self, failed_conftests: Sequence[str] = ()) -> int:
        """The tests static discovery expects of the queued units, less those below a
        directory whose conftest failed to import (``failed_conftests``: the conftest files,
        or their directories), of which pytest collects none."""
        cut = [os.path.dirname(p) if p.endswith(".py") else p for p in failed_conftests]
        count = 0
        for unit in self._units:
            if (
                cut
                and unit.args
                and any(unit.args[0] == d or unit.args[0].startswith(d + os.sep) for d in cut)
            ):
                continue
            count += unit.count if unit.count is not None else len(unit.expected)
        return count

    def clear(self) -> list[Unit]:
        dropped, self._units = self._units, []
        return dropped


def estimate_weight(
    unit: Unit,
    durations: dict[str, float],
    recorded: dict[str, list[str]] | None = None,
    files: RecordedFiles | None = None,
) -> float:
    """The seconds ``unit`` is expected to take: its tests' recorded durations (a default for
    the others), each test's overhead, and the unit's own. With ``recorded`` (see
    :func:`recorded_items`), a dynamic test counts as the items earlier runs recorded for it;
    with ``files``, a directory unit weighs what they recorded under its directory."""
    if files is not None and unit.unlisted_directory:
        weight = files.weight(unit)
        if weight is not None:
            return weight
    ids = unit_tests(unit, durations, recorded)
    known = [durations[i] for i in ids if i in durations]
    unknown = len(ids) - len(known)
    return (
        UNIT_OVERHEAD_SECONDS
        + sum(known)
        + len(ids) * TEST_OVERHEAD_SECONDS
        + max(unknown, 1 if not known else 0) * DEFAULT_TEST_SECONDS
    )


def recorded_items(durations: Iterable[str]) -> dict[str, list[str]]:
    """The parametrized ids earlier runs recorded, under the id of their function, in the
    order they were recorded: ``m.py::test_f[0]`` and ``m.py::test_f[1]`` under
    ``m.py::test_f``. Static discovery names a test it cannot expand (a dynamic one) by the
    id of its function; this is what it became when it ran."""
    out: dict[str, list[str]] = {}
    for test_id in durations:
        if test_id.endswith("]"):
            sep = test_id.find("::")
            at = test_id.find("[", sep) if sep >= 0 else -1
            if at > 0:
                out.setdefault(test_id[:at], []).append(test_id)
    return out


def unit_tests(
    unit: Unit, durations: dict[str, float], recorded: dict[str, list[str]] | None
) -> list[str]:
    """The tests of ``unit`` as far as earlier runs know them: each id static discovery
    expects, except that an id with no duration of its own (a dynamic test) stands for the
    ids recorded under it, if any."""
    if not recorded:
        return unit.expected
    out: list[str] = []
    for test_id in unit.expected:
        if test_id in durations:
            out.append(test_id)
        else:
            out.extend(recorded.get(test_id) or (test_id,))
    return out


class RecordedFiles:
    """Recorded test time by file, to weigh a directory unit: static discovery knows no test
    of a directory whose files a plugin collects (pygments' ``tests/examplefiles/``, 1,500
    sample files in some 600 directory units), so without this each such unit weighed one
    default test: it was handed out last whatever it held, and the run's total (a worker's
    share with it) came out nearly 40% short."""

    def __init__(self, durations: dict[str, float], rootdir: Path) -> None:
        self.rootdir = rootdir
        self.seconds_of: dict[str, float] = {}
        self.tests_of: dict[str, int] = {}
        for test_id, seconds in durations.items():
            file = test_id.partition("::")[0]
            self.seconds_of[file] = self.seconds_of.get(file, 0.0) + seconds
            self.tests_of[file] = self.tests_of.get(file, 0) + 1
        self.files = sorted(self.tests_of)
        #: cumulative seconds and tests over ``files``, for sums over a range of them
        self.seconds = [0.0]
        self.tests = [0]
        for file in self.files:
            self.seconds.append(self.seconds[-1] + self.seconds_of[file])
            self.tests.append(self.tests[-1] + self.tests_of[file])

    def under(self, path: str) -> tuple[float, int]:
        """Seconds and tests recorded for the file ``path``, or for every file under the
        directory ``path`` (relative to the rootdir, ``/``-separated)."""
        if path in self.tests_of:
            return self.seconds_of[path], self.tests_of[path]
        directory = path.rstrip("/")
        if directory in ("", "."):  # the rootdir itself
            return self.seconds[-1], self.tests[-1]
        prefix = directory + "/"
        lo = bisect.bisect_left(self.files, prefix)
        hi = bisect.bisect_left(self.files, directory + "0")  # "0" follows "/"
        return self.seconds[hi] - self.seconds[lo], self.tests[hi] - self.tests[lo]

    def weight(self, unit: Unit) -> float | None:
        """What a directory unit weighs by the tests earlier runs recorded in it (leaving out
        the paths it leaves to other units); None when they recorded none."""
        seconds, tests = self.under(unit.id)
        for path in unit.ignore:
            left = Path(os.path.relpath(path, self.rootdir)).as_posix()
            left_seconds, left_tests = self.under(left)
            seconds -= left_seconds
            tests -= left_tests
        if tests <= 0:
            return None
        return UNIT_OVERHEAD_SECONDS + max(seconds, 0.0) + tests * TEST_OVERHEAD_SECONDS


def load_durations(cache_dir: Path) -> dict[str, float]:
    """Test durations recorded by earlier runs (empty when none or unreadable)."""
    try:
        data = orjson.loads((cache_dir / "durations.json").read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {
        k: float(v) for k, v in data.items() if isinstance(k, str) and isinstance(v, int | float)
    }


def load_durations_file(path: Path) -> dict[str, float]:
    """The durations of a file ``tach durations --export`` wrote (``--durations-file``):
    :class:`DurationsFileError` when it cannot be read, is not JSON or not an object of
    numbers by test id (a file the user named must not silently count as empty)."""
    try:
        data = orjson.loads(path.read_bytes())
    except OSError as exc:
        raise DurationsFileError(f"--durations-file {path}: {exc.strerror or exc}") from None
    except orjson.JSONDecodeError as exc:
        raise DurationsFileError(f"--durations-file {path}: not JSON ({exc})") from None
    if not isinstance(data, dict) or not all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in data.values()
    ):
        raise DurationsFileError(
            f"--durations-file {path}: expected an object of seconds by test id, as "
            "`tach durations --export FILE` writes"
        )
    return {str(k): float(v) for k, v in data.items()}


class DurationsFileError(ValueError):
    """A ``--durations-file`` that cannot be used; the message names it and why."""


def save_durations(cache_dir: Path, results: Iterable[TestResult], old: dict[str, float]) -> None:
    """Record this run's durations (merged over the old ones), atomically."""
    merged = dict(old)
    for result in results:
        if result.status is not None:
            # To the microsecond; ``round(x, 6)`` costs 1.7 µs a test, this a tenth of that.
            merged[result.id] = int(result.duration * 1e6 + 0.5) / 1e6
    write_atomically(cache_dir / "durations.json", orjson.dumps(merged))
    ignore = cache_dir / ".gitignore"
    if not ignore.exists():
        # as pytest does for .pytest_cache: git ignores the cache (``--changed-since`` and
        # ``git status`` alike) without a rule of the project's
        ignore.write_text("# Created by tach automatically.\n*\n")


def write_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename.

    The file gets the permissions ``open`` would give it (a temporary file is private), so
    that a report is as readable as the one pytest writes.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class Reporter(Protocol):
    """What the run tells the outside world; reporters never talk to workers."""

    def on_run_start(self, info: dict[str, Any]) -> None: ...

    def on_collected(
        self, unit: Unit, ids: Sequence[str], errors: Sequence[dict[str, Any]]
    ) -> None: ...

    def on_test_start(self, result: TestResult) -> None: ...

    def on_report(self, result: TestResult, report: dict[str, Any]) -> None: ...

    def on_test_finished(self, result: TestResult) -> None: ...

    def on_warning(self, warning: dict[str, Any]) -> None: ...

    def on_record(self, record: dict[str, Any]) -> None:
        """A ``record_testsuite_property`` / ``record_xml_attribute`` call (JUnit XML)."""

    def on_terminal_text(self, text: dict[str, Any]) -> None:
        """What a test process wrote to pytest's terminal writer ({id, text}): the terminal's."""

    def on_debug(self, event: dict[str, Any]) -> None:
        """A debugger session began (``event``: ``debug_start`` {id, slot, pid, where, how})
        or ended (``debug_end`` {id, slot, pid, duration}); see ``tach.lifecycle.debugging``."""

    def on_run_finished(self, summary: RunSummary) -> None: ...

    def flush(self) -> None:
        """Write out what the reporter holds back: the run calls it before it waits for the
        next event, so that nothing shown waits on a test still running."""


@dataclasses.dataclass
class RunSummary:
    """The outcome of a whole run, from which the command line picks the exit code."""

    stats: Stats
    results: dict[str, TestResult]
    collect_errors: list[dict[str, Any]]
    warnings: list[dict[str, Any]]
    duration: float
    collect_only: bool = False
    usage_errors: list[str] = dataclasses.field(default_factory=list)
    internal_errors: list[str] = dataclasses.field(default_factory=list)
    interrupted: str | None = None
    #: Set when the zygote (that is, pytest) stopped before the run started.
    zygote_exit_code: int | None = None
    zygote_output: str = ""
    deselected: int = 0
    #: The process exit code, when the caller told the supervisor how to choose it.
    exit_code: int | None = None
    #: The run was cut short (a signal, ``--session-timeout``): pytest's "interrupted".
    aborted: bool = False
    #: Tests that were collected or planned but never ran to the end.
    not_run: list[str] = dataclasses.field(default_factory=list)
    #: What plugins wrote at the end of the session (``pytest_terminal_summary``).
    plugin_report: str = ""
    #: Failures plugins added to the session (``--cov-fail-under``): the run fails.
    plugin_failures: int = 0
    #: The exit status a plugin gave the session at its end (syrupy's, for unused snapshots).
    plugin_exit_status: int = 0


@dataclasses.dataclass
class Plan:
    """What a run will do: its units, and what the zygote loads before forking."""

    units: list[Unit]
    #: Directories whose conftests the zygote loads (every test directory).
    conftest_dirs: list[str]
    #: The units' paths in pytest's collection order: the zygote imports the test modules
    #: there as pytest's collection would, before it forks (``tach.zygote.Zygote.prepare``).
    collection_paths: list[str]
    expected_tests: int


def plan_units(
    rootdir: Path,
    tests: Sequence[Any],
    imports: dict[str, Sequence[Any]],
    error_files: Sequence[str],
    dynamic_dirs: Sequence[Path],
    walked_dirs: Collection[Path] | None = None,
    roots: Sequence[Path] = (),
) -> Plan:
    """Units for a run: one per test file, plus directory units for what only pytest can see.

    ``tests`` are static discovery's tests (``id``, ``file``); ``imports`` maps each test module
    to the modules it imports (``module``, ``file``); ``error_files`` are test files discovery
    could not read (pytest reports their collection error); ``dynamic_dirs`` are directories
    where pytest may collect items that static discovery cannot enumerate (a conftest with
    ``pytest_collect_file``, ``--doctest-modules``). Each dynamic directory is split into one
    unit per subdirectory plus one for its own files, each leaving the file units to
    themselves through a per-unit ``--ignore``. Only subdirectories pytest recurses into
    (``walked_dirs``, when given) get a unit: a unit's path is an explicit argument, which
    pytest collects even where ``norecursedirs`` or ``collect_ignore`` would leave it out.

    The plan's collection paths are the units' paths in pytest's collection order (``roots``:
    its collection arguments, in their order). The zygote imports the modules there in that
    order, as pytest's collection does, so that every module is found where pytest's
    collection finds it (a package collected under ``src/`` by ``--doctest-modules`` before
    the tests import it, not its copy installed in the virtual environment).
    """
    expected: dict[str, list[str]] = {}
    for test in tests:
        if test.id.endswith("/") or test.id == "":  # a dynamic directory record, not a test
            continue
        expected.setdefault(test.file, []).append(test.id)
    files = list(dict.fromkeys([*expected, *imports, *error_files]))
    file_paths = {rel: rootdir / rel for rel in files}
    units = [Unit(rel, [str(path)], expected.get(rel, [])) for rel, path in file_paths.items()]

    for directory in dict.fromkeys(dynamic_dirs):
        inside = [str(p) for p in file_paths.values() if directory in p.parents]
        try:
            subdirs = sorted(
                p
                for p in directory.iterdir()
                if p.is_dir()
                and not p.name.startswith((".", "__"))
                and (walked_dirs is None or p in walked_dirs)
            )
        except OSError:  # not a directory, or one that cannot be read: pytest reports that
            subdirs = []
        for sub in subdirs:
            owned = [p for p in inside if Path(p).is_relative_to(sub)]
            units.append(Unit(f"{sub.relative_to(rootdir)}/", [str(sub)], ignore=owned))
        units.append(
            Unit(
                f"{directory.relative_to(rootdir)}/",
                [str(directory)],
                ignore=[*inside, *map(str, subdirs)],
            )
        )

    test_dirs = {str(p.parent) for p in file_paths.values()} | {str(d) for d in dynamic_dirs}
    paths = sorted({Path(unit.args[0]) for unit in units}, key=lambda p: collection_order(p, roots))
    return Plan(
        units=units,
        conftest_dirs=sorted(test_dirs),
        collection_paths=[str(path) for path in paths],
        expected_tests=sum(len(ids) for ids in expected.values()),
    )


def collection_order(path: Path, roots: Sequence[Path]) -> tuple[int, tuple[str, ...]]:
    """Where pytest's collection meets ``path``: under the first of its collection ``roots``
    that holds it, then in its walk, which takes the entries of a directory by name."""
    for index, root in enumerate(roots):
        if path == root or root in path.parents:
            return index, path.relative_to(root).parts
    return len(roots), path.parts


#: A unit is sliced only when it has at least this many tests, or when earlier runs recorded
#: at least ``SLICE_MIN_SECONDS`` of test time for it...
SLICE_MIN_TESTS = 500
SLICE_MIN_SECONDS = 1.0
#: ...and into at most this many slices per worker.
SLICES_PER_WORKER = 2


def slice_heavy_units(
    units: list[Unit],
    workers: int,
    can_slice: Callable[[Unit], bool],
    selected: Callable[[Unit], int] | None = None,
    durations: dict[str, float] | None = None,
    recorded: dict[str, list[str]] | None = None,
) -> list[Unit]:
    """Split the units too heavy for one worker into slices of their tests.

    A unit is heavy when it weighs more than a worker's fair share of the run. It is split only
    when it is long enough for a second collection of the module to be worth it (many tests,
    or seconds of recorded test time), and when ``can_slice`` agrees (no module-scoped fixture
    binds its tests, which would otherwise be set up once per slice). A dynamic test counts as
    the items earlier runs recorded for it (``recorded``, see :func:`recorded_items`): a module
    whose tests are parametrized by code can hold most of a suite. The cuts are placed so
    that the slices' recorded durations (a default for tests without one), plus each test's
    overhead, are as even as can be; the worker moves a cut that falls inside a class a
    class-scoped fixture binds to the nearer end of the class (``tach.worker.slice_items``).
    ``selected`` counts the tests of a unit that ``-k``/``-m``/``--deselect`` keep: every
    slice collects the whole module, so slicing a module whose tests are mostly deselected
    multiplies its collection for nothing.
    """
    if workers < 2:
        return units
    durations = durations or {}
    weights = [unit.weight or estimate_weight(unit, durations, recorded) for unit in units]
    share = sum(weights) / workers
    result: list[Unit] = []
    for unit, weight in zip(units, weights, strict=True):
        if weight <= share:  # the commonest case: no need to list the unit's tests
            result.append(unit)
            continue
        ids = unit_tests(unit, durations, recorded)
        seconds = sum(durations.get(i, 0.0) for i in ids)
        static = len(unit.expected)
        if (
            (len(ids) < SLICE_MIN_TESTS and seconds < SLICE_MIN_SECONDS)
            or (selected is not None and selected(unit) < min(SLICE_MIN_TESTS, static // 2))
            or not can_slice(unit)
        ):
            result.append(unit)
            continue
        count = min(SLICES_PER_WORKER * workers, max(2, int(weight / share * workers)))
        test_weights = [durations.get(i, DEFAULT_TEST_SECONDS) + TEST_OVERHEAD_SECONDS for i in ids]
        bounds = even_cuts(test_weights, count)
        if len(bounds) < 3:  # one test: nothing to cut
            result.append(unit)
            continue
        n = len(bounds) - 1
        for k in range(n):
            lo, hi = bounds[k], bounds[k + 1]
            result.append(
                Unit(
                    f"{unit.id} [{k + 1}/{n}]",
                    unit.args,
                    ids[lo:hi],
                    UNIT_OVERHEAD_SECONDS + sum(test_weights[lo:hi]),
                    slice=UnitSlice(k, bounds, ids),
                )
            )
    return result


def even_cuts(weights: Sequence[float], count: int) -> list[int]:
    """Bounds ``[0, b1, ..., len(weights)]`` of at most ``count`` non-empty runs of
    ``weights`` whose totals are as even as can be."""
    prefix = [0.0]
    for w in weights:
        prefix.append(prefix[-1] + w)
    total = prefix[-1]
    bounds = [0]
    for k in range(1, count):
        # an even share of what the runs so far left
        done = prefix[bounds[-1]]
        target = done + (total - done) / (count - k + 1)
        # the first position whose prefix reaches the target, or the one before it
        at = bisect.bisect_left(prefix, target, bounds[-1] + 1, len(weights))
        if at > bounds[-1] + 1 and target - prefix[at - 1] < prefix[at] - target:
            at -= 1
        if bounds[-1] < at < len(weights):
            bounds.append(at)
    bounds.append(len(weights))
    return bounds
