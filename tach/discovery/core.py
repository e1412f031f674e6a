"""The discovery run: arguments -> tests, fixtures and errors (see the package docstring).

:func:`discover` is the entry point: it finds the rootdir and config file (:mod:`.ini`), walks
the arguments as pytest would (:mod:`.walk`), summarises each file once (:mod:`.parse`, cached
by :mod:`.cache`), and collects tests and fixtures from the summaries (:mod:`.collect`,
:mod:`.params`). With many test modules to read, forked workers (:mod:`.pool`) summarise and
collect shares of them at the same time. See ``docs/discovery.md``.
"""

from __future__ import annotations

import dataclasses
import gc
import marshal
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from ..heap import gc_paused
from .cache import CacheStats, Inputs, SummaryCache
from .collect import Collector, ModuleCollection, fixtures_of_namespace
from .ini import (
    CollectOptions,
    ProjectConfig,
    addopts_args,
    determine_config,
    split_pytest_args,
)
from .model import DiscoveryError, DiscoveryResult, FixtureDef, ModuleImport, TestDef
from .names import Index, ModuleCtx
from .params import IdOptions
from .plugins import PluginInfo, plugin_fixtures, site_packages_of_current
from .pool import Job, Shares, available_jobs, fork_safe, start
from .walk import (
    DOCTEST_MODULE,
    DOCTEST_TEXT,
    IGNORE_HOOK,
    TEST_MODULE,
    Walker,
    WalkItem,
    dynamic_scopes,
)

#: hooks in conftests that make every test below them dynamic.
_GENERATE_HOOK = "pytest_generate_tests"


@dataclass
class Discovery:
    """A discovery run: the result plus what produced it."""

    result: DiscoveryResult
    config: ProjectConfig
    options: CollectOptions
    stats: CacheStats
    plugins: list[PluginInfo] = field(default_factory=list)
    deselected: int = 0
    #: whether every installed plugin's fixtures could be read statically.
    plugins_complete: bool = True
    #: what discovery read (for the whole-run cache of ``tach list``).
    inputs: Any = None
    #: the directories walked: those pytest recurses into.
    walked_dirs: frozenset[Path] = frozenset()
    #: where the walk started (pytest's collection arguments, as given).
    paths: list[str] = field(default_factory=list)
    #: set by the caller that resolves fixtures (``tach.listing.discover_tests``).
    resolver: Any = None
    #: test id -> its fixture closure (a ``tach.resolver.Resolution``).
    closures: dict[str, Any] = field(default_factory=dict)


def _package_base(path: Path, probe: Any = None) -> Path:
    """The first directory upwards without ``__init__.py`` (pytest's ``prepend`` basedir)."""
    d = path.parent
    while d.parent != d:
        if probe is not None:
            probe(d / "__init__.py")
        if not (d / "__init__.py").is_file():
            break
        d = d.parent
    return d


#: fewest test modules per process for which forking a discovery worker pays off (a fork,
#: and sending the results back, cost a few milliseconds; a module costs about half a
#: millisecond to parse and collect).
PARALLEL_MIN_FILES = 48
#: test modules per share (see ``_Run.collect``): small enough that the process that takes
#: the last share does not keep the others waiting long (a share takes about 10 ms), large
#: enough that taking a share and sending it back cost little next to collecting it.
SHARE_FILES = 32
#: the fewest test modules in a share (the last shares, see :func:`_shares`).
LAST_SHARE_FILES = 4


class _Slice:
    """What collecting a run of test modules yields (in walk order)."""

    __slots__ = ("errors", "fixtures", "imports", "tests")

    def __init__(
        self,
        tests: list[TestDef] | None = None,
        fixtures: list[FixtureDef] | None = None,
        errors: list[DiscoveryError] | None = None,
        imports: dict[str, list[ModuleImport]] | None = None,
    ) -> None:
        self.tests: list[TestDef] = [] if tests is None else tests
        self.fixtures: list[FixtureDef] = [] if fixtures is None else fixtures
        self.errors: list[DiscoveryError] = [] if errors is None else errors
        self.imports: dict[str, list[ModuleImport]] = {} if imports is None else imports


class _Run:
    """The state of one discovery: loaded modules, the index, the collector and the walker."""

    def __init__(
        self,
        config: ProjectConfig,
        opts: CollectOptions,
        cache: SummaryCache,
        inputs: Inputs,
        sp: tuple[Path, ...],
    ) -> None:
        self.config = config
        self.cache = cache
        self.inputs = inputs
        self.sp = sp
        self.rootdir = rootdir = config.rootdir
        pythonpath_base = config.inifile.parent if config.inifile else rootdir
        self.extra_roots = [
            Path(os.path.normpath(pythonpath_base / p)) for p in config.get("pythonpath")
        ]
        # Installed distributions inside the project (a ``.venv`` in the rootdir): their
        # modules (pytest's, the plugins') import from the interpreter's path, not the project's.
        self._env_dirs = tuple(
            d for d in sp if rootdir in d.parents and d.name in ("site-packages", "dist-packages")
        )
        # keyed by ``str(path)`` (a ``Path`` caches its string; hashing a ``Path`` costs a
        # tuple of its parts each time)
        self.ctxs: dict[str, ModuleCtx | None] = {}
        self.errors: dict[str, str] = {}
        # directory (str) -> the import roots of its modules: equal tuples are one object, so
        # that ``Index.find_module`` caches its lookups per tuple cheaply
        self._dir_roots: dict[str, tuple[Path, ...]] = {}
        self._roots_interned: dict[tuple[Path, ...], tuple[Path, ...]] = {}
        # directory (str) -> :meth:`_inherited` of its modules
        self._inherited_of: dict[str, str | None] = {}
        # directory (str) -> its rootdir-relative posix path, or None when outside
        self._rel_dirs: dict[str, str | None] = {}
        self.index = Index(self.load, inputs.probe)
        idopts = IdOptions(
            disable_escaping=bool(
                config.get("disable_test_id_escaping_and_forfeit_all_rights_to_community_support")
            ),
            long_str_strategy=_long_str_strategy(config, sp),
            strict_ids=bool(
                config.get("strict_parametrization_ids")
                if config.get("strict_parametrization_ids") is not None
                else config.get("strict")
            ),
        )
        self.collector = Collector(
            self.index,
            python_classes=config.get("python_classes"),
            python_functions=config.get("python_functions"),
            id_options=idopts,
            empty_parameter_set_mark=str(config.get("empty_parameter_set_mark")),
            collect_imported_tests=bool(config.get("collect_imported_tests")),
        )
        self.walker = Walker(config, opts, self.load_pair, inputs.probe)
        self.import_mode = opts.import_mode
        self._installed: dict[tuple[str, str], str | None] = {}
        self._importable_here: dict[tuple[str, str], bool] = {}
        self._importable_everywhere: dict[str, bool] = {}

    def rel(self, path: Path) -> str:
        """Rootdir-relative posix path of a file (its own path when outside the rootdir, or
        installed in an environment inside it)."""
        s = str(path)
        if os.sep != "/":  # pragma: no cover - Tach runs on POSIX
            try:
                return path.relative_to(self.rootdir).as_posix()
            except ValueError:
                return s
        # ``relative_to`` is lexical, part by part: the answer for the directory, computed
        # once, gives the answer for every file in it
        head, _, name = s.rpartition("/")
        try:
            d = self._rel_dirs[head]
        except KeyError:
            hp = Path(head or "/")
            try:
                d = hp.relative_to(self.rootdir).as_posix()
            except ValueError:
                d = None
            if d is not None and any(e == hp or e in hp.parents for e in self._env_dirs):
                d = None  # an installed library, not the project's
            self._rel_dirs[head] = d
        if d is None:
            return s
        return name if d == "." else f"{d}/{name}"

    def _roots(self, path: Path) -> tuple[Path, ...]:
        parent = os.path.dirname(str(path))
        roots = self._dir_roots.get(parent)
        if roots is None:
            rootdir = self.rootdir
            if not self.rel(path).startswith("/"):  # a project file, see :meth:`rel`
                roots = tuple(
                    dict.fromkeys(
                        [
                            _package_base(path, self.inputs.probe),
                            rootdir,
                            rootdir / "src",
                            *self.extra_roots,
                        ]
                    )
                )
            else:
                roots = (_package_base(path), *self.sp)
            roots = self._dir_roots[parent] = self._roots_interned.setdefault(roots, roots)
        return roots

    def load(self, path: Path) -> ModuleCtx | None:
        """The module context of ``path`` (summarised through the cache), None if unreadable."""
        key = str(path)
        got = self.ctxs.get(key, _UNLOADED)
        if got is not _UNLOADED:
            return got  # type: ignore[return-value]
        summary, err = self.cache.summary(path)
        if summary is None:
            self.errors[key] = err or "cannot read"
            self.ctxs[key] = None
            return None
        ctx = ModuleCtx.build(path, self.rel(path), summary, self._roots(path))
        self.ctxs[key] = ctx
        return ctx

    def release(self) -> None:
        """Break the reference cycles of a finished run (the index calls back into the run;
        classes list themselves in their MRO; modules remember names that resolve to their
        own bindings), so that reference counting frees it all at once instead of a pass of
        the cyclic garbage collector over every summary."""
        for node in self.collector.classes():
            node.mro = []
            node.attrs = None
        for ctx in self.ctxs.values():
            if ctx is not None:
                ctx.resolved.clear()
        self.ctxs.clear()
        self.index.release()
        self.walker.load = _no_load

    def load_pair(self, path: Path) -> tuple[ModuleCtx | None, str | None]:
        """:meth:`load` and the error message, for the walker."""
        ctx = self.load(path)
        return ctx, self.errors.get(str(path))

    # -- test modules ---------------------------------------------------------------------------

    def _inherited(self, item: WalkItem) -> str | None:
        """Why every test of ``item`` is dynamic because of a conftest above it, if so."""
        return self._maybe_ignored(item.path) or self._inherited_by_directory(item)

    def _maybe_ignored(self, path: Path) -> str | None:
        """Why ``path`` may be left out by a conftest's ``collect_ignore``/
        ``collect_ignore_glob`` computed at run time (a Python-version condition), or by its
        ``pytest_ignore_collect`` hook, if so."""
        import fnmatch

        for ct in self.walker.conftests_for(path.parent):
            if IGNORE_HOOK in ct.hooks:
                names = ct.ignore_hook_names
                rel = os.path.relpath(path, ct.path.parent)
                named = next((n for n in names if n in rel), None) if names else None
                if names is None or named is not None:
                    where = f"{self.walker.rel(ct.path)}:{ct.hooks[IGNORE_HOOK]}"
                    why = f", whose body names {named!r}" if named else ""
                    return f"may be left out at run time by {IGNORE_HOOK} ({where}{why})"
            if not ct.ignore_dynamic:
                continue
            if ct.maybe_ignored is None:
                return f"may be left out at run time: {ct.ignore_dynamic}"
            candidates = [str(p) for p in (path, *path.parents) if ct.path.parent in p.parents]
            for pattern in ct.maybe_ignored:
                if any(c == pattern or fnmatch.fnmatch(c, pattern) for c in candidates):
                    return f"may be left out at run time: {ct.ignore_dynamic}"
        return None

    def _inherited_by_directory(self, item: WalkItem) -> str | None:
        directory = os.path.dirname(str(item.path))
        if directory in self._inherited_of:
            return self._inherited_of[directory]
        walker = self.walker
        inherited = None
        for ct in walker.conftests_for(item.path.parent):
            if _GENERATE_HOOK in ct.hooks:
                inherited = (
                    f"{walker.rel(ct.path)}:{ct.hooks[_GENERATE_HOOK]} defines "
                    "pytest_generate_tests"
                )
        self._inherited_of[directory] = inherited
        return inherited

    def collect(self, walked: list[WalkItem]) -> _Slice:
        """Collect ``walked``, using worker processes when there are enough of them.

        The modules are cut into contiguous shares, several per process, that this process
        and the workers take one at a time from a queue (:class:`.pool.Shares`): a process
        that the machine's other work slows down takes fewer. The shares are merged in walk
        order; a share that a failed worker took is collected here.
        """
        # settles which conftests are in use before any worker starts (workers do not report
        # conftests back; the walk has normally seen all of them already)
        items = [(item, self._inherited(item)) for item in walked]
        jobs = min(available_jobs(), len(items) // PARALLEL_MIN_FILES)
        if jobs < 2 or not fork_safe():
            return self.collect_slice(items)
        chunks = _shares(items, jobs)
        parts: dict[int, _Slice] = {}
        started: list[Job | None] = []
        with Shares(len(chunks)) as queue:
            try:
                for _ in range(jobs - 1):
                    started.append(start(lambda: self._work(queue, chunks)))
                for i in queue:
                    parts[i] = self.collect_slice(chunks[i])
                    self.cache.seal()
                for job in started:
                    frames = job.result() if job is not None else None
                    if frames is not None:
                        parts.update(self._merge(frames))
            finally:
                for job in started:
                    if job is not None:
                        job.close()
        out = _Slice()
        for i, chunk in enumerate(chunks):
            # a share missing here was taken by a worker that failed (killed, out of memory,
            # an exception): collect it now
            part = parts[i] if i in parts else self.collect_slice(chunk)
            out.tests += part.tests
            out.fixtures += part.fixtures
            out.errors += part.errors
            out.imports.update(part.imports)
        return out

    def collect_slice(self, items: list[tuple[WalkItem, str | None]]) -> _Slice:
        """Collect the test modules ``items`` in this process (each with what
        :meth:`_inherited` says of it)."""
        out = _Slice()
        for item, inherited in items:
            if item.kind == DOCTEST_TEXT:
                tests = self._doctest_text(item.path, out)
                if item.selectors is not None:
                    tests = [t for t in tests if any(t.covers(s) for s in item.selectors)]
                out.tests.extend(tests)
                continue
            ctx = self.load(item.path)
            relpath = ctx.rel if ctx is not None else self.rel(item.path)
            if ctx is None:
                out.errors.append(
                    DiscoveryError(relpath, 1, self.errors.get(str(item.path), "unreadable"))
                )
                continue
            err = ctx.summary.get("error")
            if err is not None:
                out.errors.append(DiscoveryError(relpath, err[0], err[1]))
                continue
            failure = self._import_failure(ctx)
            if failure is not None:
                # pytest collects nothing from it but its collection error: one dynamic entry
                tests = [TestDef(relpath, relpath, failure[0], "", dynamic=failure[1])]
            # pytest's doctest plugin makes its collector before the python plugin does
            elif item.kind & DOCTEST_MODULE:
                tests = self._doctests(ctx, relpath)
            else:
                tests = []
            if failure is None and item.kind & TEST_MODULE:
                got = ModuleCollection(self.collector, ctx, relpath, inherited).run()
                tests = tests + got.tests if tests else got.tests
                out.fixtures.extend(got.fixtures)
            if item.selectors is not None:
                from ..nodeid import matches_selection

                tests = [
                    t
                    for t in tests
                    if any(
                        matches_selection(t.id, s) or (t.dynamic and t.covers(s))
                        for s in item.selectors
                    )
                ]
            out.tests.extend(tests)
            out.imports[relpath] = _imports(self.index, ctx)
        return out

    def _import_failure(self, ctx: ModuleCtx) -> tuple[int, str] | None:
        """(line, reason) when importing the module must fail here: it reads a file that does
        not exist or imports a top-level module found nowhere (:mod:`.importtime`)."""
        for base, path, line in ctx.summary.get("reads") or ():
            where = ctx.path.parent if base == "file" else self.config.invocation_dir
            full = where / path
            self.inputs.probe(full)
            if not os.path.exists(full):
                return line, (
                    f"reads {path} when imported (line {line}), which does not exist here: "
                    "pytest reports a collection error for the module"
                )
        for module, line in ctx.summary.get("toplevel_imports") or ():
            top = module.partition(".")[0]
            if not self._importable(top, ctx):
                return line, (
                    f"imports {module} (line {line}), found neither installed nor in the "
                    "project: pytest reports a collection error for the module, unless a "
                    "conftest puts it on sys.path"
                )
        return None

    def _importable(self, top: str, ctx: ModuleCtx) -> bool:
        """Whether top-level module ``top`` may be importable from ``ctx``'s module. Erring
        towards yes: the module's own import roots, every directory from it up to the rootdir
        (where conftests put theirs), and what all modules share
        (:meth:`_importable_anywhere`)."""
        if top in sys.stdlib_module_names or top in sys.builtin_module_names:
            return True
        if self._importable_anywhere(top):
            return True
        key = (top, str(ctx.path.parent))
        found = self._importable_here.get(key)
        if found is None:
            dirs = list(ctx.roots)
            d = ctx.path.parent
            while d != d.parent and (d == self.rootdir or self.rootdir in d.parents):
                dirs.append(d)
                d = d.parent
            found = self._importable_here[key] = self._module_in(top, dirs)
        return found

    def _importable_anywhere(self, top: str) -> bool:
        """Whether ``top`` is in the invocation directory, a site directory or found by this
        interpreter's own finders (an editable install's, an extension module's)."""
        found = self._importable_everywhere.get(top)
        if found is None:
            found = self._module_in(top, [self.config.invocation_dir, *self.sp])
            if not found:
                import importlib.util

                try:  # looking a top-level name up runs no module code
                    found = importlib.util.find_spec(top) is not None
                except (ImportError, ValueError):
                    found = False
            self._importable_everywhere[top] = found
        return found

    def _module_in(self, top: str, dirs: Sequence[Path]) -> bool:
        """Whether one of ``dirs`` holds ``top.py`` or ``top/`` (each probe recorded)."""
        for d in dirs:
            for candidate in (d / f"{top}.py", d / top):
                self.inputs.probe(candidate)
                if candidate.exists():
                    return True
        return False

    def _doctests(self, ctx: ModuleCtx, relpath: str) -> list[TestDef]:
        """The items of a ``DoctestModule`` (``--doctest-modules``): one per docstring with
        examples, named ``module.Class.method`` after the module's import name (see
        ``parse.doctests``), or one dynamic record for the file when the source does not
        settle them."""
        found = ctx.summary.get("doctests")
        if not found:
            return []
        why = found["why"]
        if not why:
            from .parse import has_examples

            for qual, _line, doc in found["names"]:
                if has_examples(doc) is None:
                    why = f"the docstring of {qual or 'the module'} is not a valid doctest"
                    break
        if not why and ctx.summary.get("skip"):
            line, what = ctx.summary["skip"]
            why = f"module may be skipped at import: {what} (line {line})"
        if not why and self.import_mode not in (None, "prepend", "append"):
            why = f"--import-mode={self.import_mode} names modules differently"
        if why:
            return [
                TestDef(relpath, relpath, 1, "", dynamic=f"doctests (--doctest-modules): {why}")
            ]
        base = _package_base(ctx.path, self.inputs.probe)
        try:
            parts = list(ctx.path.relative_to(base).with_suffix("").parts)
        except ValueError:
            return [TestDef(relpath, relpath, 1, "", dynamic="doctests: module name unknown")]
        if parts[-1] == "__init__":
            parts.pop()
        installed = self._installed_copy(parts[0], base)
        if installed:
            return [
                TestDef(
                    relpath,
                    relpath,
                    1,
                    "",
                    dynamic=f"doctests (--doctest-modules): {parts[0]} is also installed "
                    f"({installed}); pytest imports that copy if something imported it "
                    "first, and then reports an import mismatch",
                )
            ]
        module = ".".join(parts)
        return [
            TestDef(
                f"{relpath}::{module}.{qual}" if qual else f"{relpath}::{module}",
                relpath,
                line,
                f"{module}.{qual}" if qual else module,
                # like a TestCase method, a doctest item takes no fixtures by argument and
                # no parametrization (not even by an autouse fixture with params)
                unittest=True,
            )
            for qual, line, _doc in found["names"]
        ]

    def _installed_copy(self, top: str, base: Path) -> str | None:
        """Where the interpreter's site directories hold another copy of top-level module
        ``top`` (the project's is under ``base``), if they do: a non-editable install of the
        project itself, or a library the project vendors."""
        key = (top, str(base))
        if key in self._installed:
            return self._installed[key]
        found = None
        for d in self.sp:
            if d == base:
                break
            if d.name not in ("site-packages", "dist-packages"):
                continue  # only installed distributions count
            for cand in (d / top / "__init__.py", d / f"{top}.py"):
                if cand.is_file():
                    found = str(cand.parent if cand.name == "__init__.py" else cand)
                    break
            if found:
                break
        self._installed[key] = found
        return found

    def _doctest_text(self, path: Path, out: _Slice) -> list[TestDef]:
        """The item of a ``DoctestTextfile`` (``test*.txt`` or ``--doctest-glob``): the whole
        file is one doctest, named by the file's name, when it holds examples."""
        from .parse import has_examples

        relpath = self.rel(path)
        encoding = str(self.config.ini.get("doctest_encoding") or "utf-8")
        try:
            with open(path, "rb") as f:
                st = os.fstat(f.fileno())
                data = f.read()
            self.inputs.file(path, st)
            text = data.decode(encoding)
        except (OSError, UnicodeDecodeError, LookupError) as exc:
            out.errors.append(DiscoveryError(relpath, 1, f"cannot read: {exc}"))
            return []
        got = has_examples(text)
        if got is None:
            return [TestDef(relpath, relpath, 1, "", dynamic="doctest file the parser rejects")]
        if not got:
            return []
        return [TestDef(f"{relpath}::{path.name}", relpath, 1, path.name, unittest=True)]

    def _work(self, queue: Shares, chunks: list[list[tuple[WalkItem, str | None]]]) -> list[bytes]:
        """In a worker: collect the shares taken from ``queue``; return them, what was read,
        the cache statistics and the new cache entries, as frames (see :meth:`_merge`).

        Everything travels in ``marshal``'s format (the parent reads it back with the same
        interpreter, and this worker is its own child), which decodes faster than JSON; the
        new cache entries are the frames the cache file is made of, written as they are.
        """
        gc.disable()  # the worker is short-lived and makes no reference cycles worth freeing
        self.cache.begin_delta()
        self.inputs.begin_delta()
        # each share is encoded as soon as it is collected, while the other processes still
        # collect, so that little is left to do once the queue is empty
        frames: list[bytes] = []
        entries: list[bytes] = []
        for i in queue:
            part = self.collect_slice(chunks[i])
            frames.append(
                marshal.dumps(
                    (
                        i,
                        [t.to_cache() for t in part.tests],
                        [f.to_cache() for f in part.fixtures],
                        [(e.file, e.line, e.message, e.kind) for e in part.errors],
                        [(k, [(m.module, m.file) for m in v]) for k, v in part.imports.items()],
                    )
                )
            )
            entries.append(self.cache.delta_entries())
        entries.append(self.cache.delta_entries())  # any made after the last share
        entries = [e for e in entries if e]
        keys, stats = self.cache.delta()
        files, dirs = self.inputs.delta()
        return [*frames, *entries, marshal.dumps((keys, stats, files, dirs, len(entries)))]

    def _merge(self, frames: list[memoryview]) -> dict[int, _Slice]:
        """Decode a worker's frames (one per share, then the new cache entries, then the cache
        keys, statistics, inputs and the number of entry frames); fold its cache entries and
        inputs into this run's.

        Empty when they are not whole (the shares it took are then collected here)."""
        try:
            keys, stats, files, dirs, n_entries = marshal.loads(frames[-1])
            shares = len(frames) - 1 - n_entries
            entries = frames[shares:-1]
            if shares < 0 or not all(entries):
                return {}
            parts = {}
            for frame in frames[:shares]:
                i, tests, fixtures, errors, imports = marshal.loads(frame)
                parts[i] = _Slice(
                    [TestDef.from_cache(r) for r in tests],
                    [FixtureDef.from_cache(r) for r in fixtures],
                    [DiscoveryError(*e) for e in errors],
                    {k: [ModuleImport(m, f) for m, f in v] for k, v in imports},
                )
        except (EOFError, IndexError, TypeError, ValueError):
            return {}
        self.cache.merge_delta(keys, entries, stats)
        self.inputs.merge_delta(files, dirs)
        return parts


_UNLOADED = object()
_T = TypeVar("_T")


def _no_load(path: Path) -> tuple[ModuleCtx | None, str | None]:
    return None, "discovery has finished"


def _shares(items: list[_T], jobs: int) -> list[list[_T]]:
    """``items`` cut into contiguous shares for ``jobs`` processes, in order.

    Shares hold :data:`SHARE_FILES` items until the rest is short, then shrink (to an eighth
    of what is left for each process, down to :data:`LAST_SHARE_FILES`): the process that
    takes the last share keeps the others waiting for at most that share, so the last ones are
    small, while most are large enough that taking and returning one costs little.
    """
    out = []
    at, n = 0, len(items)
    # at most about 4,096 shares: the queue's pipe holds 16,384
    most = max(SHARE_FILES, n // 4096)
    while at < n:
        size = max(LAST_SHARE_FILES, min(most, (n - at) // (jobs * 8)))
        out.append(items[at : at + size])
        at += size
    return out


def discover(
    args: Sequence[str] = (),
    *,
    invocation_dir: Path | None = None,
    options: CollectOptions | None = None,
    use_cache: bool = True,
    site_packages: Sequence[Path] | None = None,
    with_plugins: bool = True,
    retain: list[object] | None = None,
) -> Discovery:
    """Discover tests and fixtures for pytest-style ``args`` (paths or node ids).

    Tests whose ids depend on parametrized fixtures are completed by ``tach.resolver``, and
    ``-k``/``-m`` applied by :func:`apply_selection`; ``tach.listing.discover_tests`` does
    both. ``options`` carries ``-k``/``-m``/``-c``/``--rootdir``/... from the command line;
    ``addopts`` (ini, then ``PYTEST_ADDOPTS``) are applied under them, as pytest does.
    ``site_packages`` is where the project's interpreter finds pytest and plugins (default:
    this interpreter's ``sys.path``); ``with_plugins=False`` skips reading pytest's own
    fixtures (ids do not depend on them; the installed plugins' fixtures are read in any
    case, since a plugin fixture with ``params`` parametrizes the tests it is visible to,
    and anyio's makes the coroutine tests marked ``anyio`` request ``anyio_backend``).
    Raises :class:`ConfigError` for usage errors.
    A caller about to end its process passes ``retain``: what the run built (hundreds of
    thousands of objects for a large suite) is appended to it rather than freed, since
    freeing it costs tens of milliseconds that an exiting process need not spend.

    With many test modules to read, forked worker processes (one per available CPU but this
    one; ``TACH_DISCOVERY_JOBS`` overrides the count, see :mod:`.pool`) parse and collect
    contiguous shares of them alongside this process; the result is the same.
    """
    with gc_paused():
        return _discover(
            args, invocation_dir, options, use_cache, site_packages, with_plugins, retain
        )


def _discover(
    args: Sequence[str],
    invocation_dir: Path | None,
    options: CollectOptions | None,
    use_cache: bool,
    site_packages: Sequence[Path] | None,
    with_plugins: bool,
    retain: list[object] | None,
) -> Discovery:
    inv = (invocation_dir or Path.cwd()).absolute()
    cli = options or CollectOptions()
    # pytest options among the arguments (``tach list -- --doctest-modules``)
    in_args = split_pytest_args(args) if any(a.startswith("-") for a in args) else None
    cli_paths = (in_args.paths if in_args else list(args)) + list(cli.paths)
    config = determine_config(
        cli_paths,
        inifile=cli.inifile,
        rootdir=cli.rootdir,
        invocation_dir=inv,
        overrides=cli.overrides,
    )
    if cli.final:  # pytest's own values: nothing to add
        opts, addopt_paths = dataclasses.replace(cli, paths=[]), []
    else:
        opts = split_pytest_args(addopts_args(config))
        # command line over addopts
        addopt_paths = opts.paths
        opts.paths = []
        for name in ("keyword", "markexpr", "inifile", "rootdir"):
            if getattr(cli, name) is not None:
                setattr(opts, name, getattr(cli, name))
        opts.ignore += cli.ignore
        opts.ignore_glob += cli.ignore_glob
        opts.deselect += cli.deselect
        opts.disabled_plugins += cli.disabled_plugins
        opts.noconftest |= cli.noconftest
        opts.collect_in_virtualenv |= cli.collect_in_virtualenv
        for given in (cli, in_args):
            if given is not None:
                opts.doctest_modules |= given.doctest_modules
                opts.doctest_glob += given.doctest_glob
                opts.import_mode = given.import_mode or opts.import_mode
    if opts.overrides:
        for item in opts.overrides:
            key, _, value = item.partition("=")
            config.ini.setdefault(key, value)

    paths = addopt_paths + cli_paths
    if not paths:
        if inv == config.rootdir:
            import glob

            for tp in config.get("testpaths"):
                paths.extend(sorted(glob.iglob(str(config.rootdir / tp), recursive=True)))
        if not paths:
            paths = [str(inv)]

    cache = SummaryCache(config.rootdir / ".tach" if use_cache else None)
    inputs = Inputs()
    cache.inputs = inputs
    if config.inifile is not None and config.inifile.is_file():
        inputs.file(config.inifile, config.inifile.stat())
    for d in (inv, *inv.parents):
        inputs.directory(d)  # a config file appearing here would move the rootdir
        if d == config.rootdir or d.parent == d:
            break
    sp = tuple(
        Path(p)
        for p in (site_packages if site_packages is not None else site_packages_of_current())
    )
    run = _Run(config, opts, cache, inputs, sp)
    try:
        found = _run_discovery(run, paths, with_plugins)
        found.paths = list(paths)
        return found
    finally:
        if retain is None:
            run.release()
        else:
            retain.append(run)


def _run_discovery(run: _Run, paths: list[str], with_plugins: bool) -> Discovery:
    config, cache, inputs, sp = run.config, run.cache, run.inputs, run.sp
    opts = run.walker.opts
    walker = run.walker
    collector = run.collector
    index = run.index
    load = run.load
    items = walker.walk(paths)

    result = DiscoveryResult(
        rootdir=str(run.rootdir), inifile=str(config.inifile) if config.inifile else None
    )
    got = run.collect(items)
    result.tests = got.tests
    result.fixtures = got.fixtures
    result.errors = got.errors
    result.imports = got.imports

    # conftests: fixtures, collection hooks, errors
    for ct in walker.used_conftests.values():
        result.conftests.append(walker.rel(ct.path))
        if ct.error:
            result.errors.append(DiscoveryError(walker.rel(ct.path), 1, ct.error))
            continue
        if ct.ctx is None:
            continue
        result.fixtures.extend(
            fixtures_of_namespace(
                collector,
                [(n, ct.ctx.ns[n], ct.ctx) for n in ct.ctx.order],
                "conftest",
                ct.baseid,
                is_class=False,
            )
        )
        if ct.ignore_dynamic:
            result.warnings.append(
                DiscoveryError(walker.rel(ct.path), 1, ct.ignore_dynamic, "warning")
            )
        for plugin in ct.pytest_plugins:
            # a project module, or an installed one (``pytest_plugins = ["somelib.fixtures"]``)
            f = index.find_module(plugin, ct.ctx.roots) or _installed_module(plugin, sp)
            pctx = load(f) if f else None
            if pctx is not None:
                result.fixtures.extend(
                    fixtures_of_namespace(
                        collector,
                        [(n, pctx.ns[n], pctx) for n in pctx.order],
                        "plugin",
                        "",
                        is_class=False,
                    )
                )
    for plugin in opts.plugins:  # ``-p module``: fixtures visible everywhere
        f = _installed_module(plugin, (*run.extra_roots, run.rootdir, *sp))
        pctx = load(f) if f else None
        if pctx is not None:
            result.fixtures.extend(
                fixtures_of_namespace(
                    collector, [(n, pctx.ns[n], pctx) for n in pctx.order], "plugin", "", False
                )
            )
    for directory, why in walker.unreadable.items():
        # pytest lists the directory and reports its error as a collection error: the engine
        # leaves the directory to pytest, as it does a directory whose items only pytest sees
        rel = walker.rel(directory)
        result.errors.append(DiscoveryError(rel or ".", 0, f"cannot read directory: {why}"))
        result.tests.append(
            TestDef(
                id=f"{rel}/" if rel else "",
                file=rel or ".",
                line=0,
                name="",
                dynamic=f"cannot read directory {rel or '.'}: {why}",
            )
        )
    for baseid, hook, line, _name in dynamic_scopes(list(walker.used_conftests.values())):
        where = f"{baseid}/conftest.py" if baseid else "conftest.py"
        result.tests.append(
            TestDef(
                id=f"{baseid}/" if baseid else "",
                file=where,
                line=line,
                name=hook,
                dynamic=f"{where}:{line} defines {hook}: pytest may collect other items here",
            )
        )

    def fixtures_of(ctx: ModuleCtx, where: str) -> list[FixtureDef]:
        return fixtures_of_namespace(
            collector,
            [(n, ctx.ns[n], ctx) for n in ctx.order],
            where,
            "",
            is_class=False,
            follow_imports=False,
        )

    # The installed plugins are read in any case: a plugin's fixture with ``params`` changes
    # the ids of the tests it is visible to. pytest's own fixtures have none, so they are
    # read only when fixtures are wanted (``with_plugins``).
    builtin, plugins = plugin_fixtures(
        sp, opts.disabled_plugins, fixtures_of, load, builtins=with_plugins
    )
    result.fixtures[:0] = builtin
    _plugin_requests(plugins, result.tests)
    for p in plugins:
        interesting = [
            h
            for h in p.hooks
            if h
            in ("pytest_collect_file", "pytest_generate_tests", "pytest_collection_modifyitems")
        ]
        if interesting:
            result.warnings.append(
                DiscoveryError(
                    p.file or p.module,
                    0,
                    f"installed plugin {p.name} implements {', '.join(interesting)}",
                    "warning",
                )
            )

    cache.save()
    return Discovery(
        result,
        config,
        opts,
        cache.stats,
        plugins,
        0,
        plugins_complete=with_plugins and all(p.file for p in plugins),
        inputs=inputs,
        walked_dirs=frozenset(walker.walked),
    )


#: plugins whose ``pytest_pycollect_makeitem`` adds a fixture to the tests it marks:
#: anyio's adds ``usefixtures("anyio_backend")`` to coroutine tests marked ``anyio`` (so a
#: conftest's ``anyio_backend`` with ``params`` parametrizes them).
_MARK_FIXTURES = {"anyio.pytest_plugin": ("anyio", "anyio_backend")}


def _plugin_requests(plugins: list[PluginInfo], tests: list[TestDef]) -> None:
    """Add the fixtures installed plugins make tests request (see :data:`_MARK_FIXTURES`)."""
    for p in plugins:
        got = _MARK_FIXTURES.get(p.module)
        if got is None:
            continue
        mark, fixture = got
        for t in tests:
            if t.is_async and not t.unittest and mark in t.marks and fixture not in t.fixtures:
                t.fixtures = [fixture, *t.fixtures]


def _installed_module(name: str, paths: Sequence[Path]) -> Path | None:
    """The file of module ``name`` on ``paths`` (a package's ``__init__.py``), if any."""
    from .plugins import module_file

    found = module_file(name, paths)
    return Path(found) if found else None


def apply_selection(d: Discovery) -> None:
    """Apply ``-k``, ``-m`` and ``--deselect`` (after fixture parametrization expanded ids)."""
    from .select import select

    d.result.tests, d.deselected = select(
        d.result.tests, d.options.keyword, d.options.markexpr, d.options.deselect
    )


def _long_str_strategy(config: ProjectConfig, sp: Sequence[Path]) -> str:
    """pytest >= 9.1 shortens long str ids ("short"); older pytest keeps them ("legacy")."""
    from .plugins import find_pytest_package

    pkg = find_pytest_package(sp)
    try:
        text = (pkg / "python.py").read_text(encoding="utf-8") if pkg else ""
    except OSError:
        text = ""
    if "parametrize_long_str_id_strategy" not in text:
        return "legacy"
    return str(config.get("parametrize_long_str_id_strategy"))


def _imports(index: Index, ctx: ModuleCtx) -> list[ModuleImport]:
    out: list[ModuleImport] = []
    seen: set[tuple[str, int]] = set()
    for module, level, names, _line in ctx.summary.get("imports") or []:
        key = (module, level) if names is None else (f"{module}:{','.join(names)}", level)
        if key in seen:
            continue
        seen.add(key)
        target = index.module_of_import(ctx, module, level)
        display = ("." * level) + module
        out.append(ModuleImport(display, _rel(ctx, target) if target else None))
        for n in names or ():
            # ``from pkg import mod`` may name a submodule
            sub = index.module_of_import(ctx, f"{module}.{n}" if module else n, level)
            if sub is not None:
                out.append(
                    ModuleImport(f"{display}.{n}" if module else display + n, _rel(ctx, sub))
                )
    return out


def _rel(ctx: ModuleCtx, path: Path) -> str:
    # ctx.rel is relative to the rootdir; rebuild the same for path
    root = ctx.path
    for _ in ctx.rel.split("/"):
        root = root.parent
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)
