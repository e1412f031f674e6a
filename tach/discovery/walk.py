"""The file walk: which files pytest would collect for the arguments, in its order.

Follows ``_pytest/main.py``: ``Dir.collect``/``Package.collect`` visit the entries of a
directory sorted by name (a package's ``__init__.py`` first), skipping what
``pytest_ignore_collect`` skips (``__pycache__``, ``collect_ignore``/``collect_ignore_glob``
of the nearest conftest that defines them, ``--ignore``/``--ignore-glob``, virtualenvs,
``norecursedirs`` for directories); a ``.py`` file is a test module when it matches
``python_files`` or was named on the command line. Conftests are those of each directory from
the confcutdir (the config file's directory, else the rootdir) down to the file.
"""

from __future__ import annotations

import errno
import fnmatch
import os
import re
import stat
from collections.abc import Callable
from pathlib import Path, PurePath
from typing import Any, NamedTuple

from .ini import CollectOptions, ConfigError, ProjectConfig
from .names import ModuleCtx

#: errors of a path that is not there (anything else means it is there but cannot be read)
_ABSENT = frozenset({errno.ENOENT, errno.ENOTDIR, errno.ENAMETOOLONG, errno.ELOOP})

#: conftest hooks that change what is collected from files/directories.
COLLECTION_HOOKS = (
    "pytest_collect_file",
    "pytest_pycollect_makeitem",
    "pytest_pycollect_makemodule",
    "pytest_ignore_collect",
    "pytest_collect_directory",
    "pytest_make_collect_report",
)


def fnmatch_ex(pattern: str, path: str | os.PathLike[str]) -> bool:
    """pytest's ``_pytest.pathlib.fnmatch_ex``."""
    p = PurePath(path)
    if os.sep not in pattern:
        name = p.name
    else:
        name = str(p)
        if p.is_absolute() and not os.path.isabs(pattern):
            pattern = f"*{os.sep}{pattern}"
    return fnmatch.fnmatch(name, pattern)


# Plain classes, not dataclasses: ``dataclasses`` writes and compiles their methods at import,
# about a millisecond a class, on every start of ``tach list``.


class Conftest:
    """A conftest.py and what discovery needs from it."""

    __slots__ = (
        "baseid",
        "collect_ignore",
        "collect_ignore_glob",
        "ctx",
        "error",
        "hooks",
        "ignore_dynamic",
        "ignore_hook_names",
        "maybe_ignored",
        "path",
        "pytest_plugins",
    )

    def __init__(
        self, path: Path, baseid: str, ctx: ModuleCtx | None, error: str | None = None
    ) -> None:
        self.path = path
        #: node id of its directory ("" for the rootdir).
        self.baseid = baseid
        self.ctx = ctx
        self.error = error
        #: hook name -> line
        self.hooks: dict[str, int] = {}
        self.collect_ignore: list[Path] | None = None
        self.collect_ignore_glob: list[str] | None = None
        #: why collect_ignore* cannot be read statically
        self.ignore_dynamic: str | None = None
        #: with :attr:`ignore_dynamic`: every path pattern (absolute; globs as
        #: ``collect_ignore_glob`` matches them) the run-time lists may hold, or None when some
        #: value is not a literal string (then anything below may be left out).
        self.maybe_ignored: list[str] | None = None
        #: with a ``pytest_ignore_collect`` hook: the strings its body names (:func:`hook_names`),
        #: or None when it names none (then anything below may be left out).
        self.ignore_hook_names: list[str] | None = None
        self.pytest_plugins: list[str] = []


#: :attr:`WalkItem.kind` bits: a test module (``python_files``, or named on the command line),
#: a ``DoctestModule`` (``--doctest-modules``), a ``DoctestTextfile`` (``--doctest-glob``).
TEST_MODULE = 1
DOCTEST_MODULE = 2
DOCTEST_TEXT = 4


IGNORE_HOOK = "pytest_ignore_collect"


def hook_names(conftest: Path, hook: str) -> list[str] | None:
    """What the body of ``hook`` in ``conftest`` may compare a path with: its string literals
    (a file or directory name, part of a path) and the paths it builds from ``__file__``
    (relative to the conftest's directory, ``Path(__file__).parent / "legacy"``; a path with a
    part that is not a literal stops where that part begins). None when it names none."""
    import ast

    from .importtime import evaluate_path

    try:
        tree = ast.parse(conftest.read_bytes())
    except (OSError, SyntaxError, ValueError):
        return None
    body = next(
        (
            node
            for node in tree.body
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == hook
        ),
        None,
    )
    if body is None:
        return None
    names: list[str] = []
    pending: list[ast.AST] = list(body.body)
    while pending:
        node = pending.pop()
        got = evaluate_path(node)
        if got is not None and got[0] == "file":
            if got[1]:  # the literals it is made of are this path's, not names of their own
                names.append(os.path.normpath(got[1]))
            continue
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            text = node.value.strip("*/.")
            if len(text) >= 2 and "\n" not in text:
                names.append(text)
        pending.extend(ast.iter_child_nodes(node))
    return list(dict.fromkeys(names)) or None


def possible_ignores(conftest: Path) -> list[str] | None:
    """Every value a conftest's ``collect_ignore``/``collect_ignore_glob`` may hold, whatever
    its conditions decide at run time: the string literals assigned, appended, extended or
    added to them anywhere in the file, as absolute patterns (pytest reads both lists relative
    to the conftest's directory). None when any value is not a string literal."""
    import ast

    names = {"collect_ignore", "collect_ignore_glob"}
    try:
        tree = ast.parse(conftest.read_bytes())
    except (OSError, SyntaxError, ValueError):
        return None
    values: list[ast.expr] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign | ast.AugAssign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Name) and t.id in names for t in targets):
                if node.value is None:
                    continue
                if not isinstance(node.value, ast.List | ast.Tuple):
                    return None
                values.extend(node.value.elts)
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id in names
        ):
            if node.func.attr in ("append", "insert") and node.args:
                values.append(node.args[-1])
            elif node.func.attr == "extend" and node.args:
                arg = node.args[0]
                if not isinstance(arg, ast.List | ast.Tuple):
                    return None
                values.extend(arg.elts)
            elif node.func.attr not in ("remove", "pop", "clear", "index", "count"):
                return None
    if not all(isinstance(v, ast.Constant) and isinstance(v.value, str) for v in values):
        return None
    base = conftest.parent
    return [os.path.normpath(base / v.value) for v in values]  # type: ignore[attr-defined]


class WalkItem(NamedTuple):
    """One file to collect, the node-id selectors naming parts of it (None: all), and what
    pytest makes of it (:data:`TEST_MODULE`, :data:`DOCTEST_MODULE`, :data:`DOCTEST_TEXT`)."""

    path: Path
    selectors: list[str] | None
    kind: int = TEST_MODULE


class Walker:
    """Walk arguments into test modules, reading conftests on the way."""

    def __init__(
        self,
        config: ProjectConfig,
        opts: CollectOptions,
        load: Callable[[Path], tuple[ModuleCtx | None, str | None]],
        probe: Callable[[Path], None] | None = None,
    ) -> None:
        self.config = config
        self.probe = probe or (lambda _p: None)
        self.opts = opts
        self.load = load
        self.rootdir = config.rootdir
        self.confcutdir = config.inifile.parent if config.inifile else config.rootdir
        self.python_files = config.get("python_files")
        # patterns without a separator match the file name alone (``fnmatch_ex``)
        self._name_patterns = all(os.sep not in p for p in self.python_files)
        self.norecurse = config.get("norecursedirs")
        self.doctest_modules = opts.doctest_modules
        #: ``_pytest.doctest._is_doctest``: the globs a text file is a doctest file by.
        self.doctest_glob = opts.doctest_glob or ["test*.txt"]
        self._doctest_names = all(os.sep not in p for p in self.doctest_glob)
        # every file of every directory walked is matched: one compiled pattern for all globs
        self._doctest_name_match = (
            re.compile("|".join(f"(?:{fnmatch.translate(g)})" for g in self.doctest_glob)).match
            if self._doctest_names
            else None
        )
        self._conftests: dict[Path, Conftest | None] = {}
        self._for_dir: dict[Path, list[Conftest]] = {}
        self._ignores_for: dict[Path, tuple[frozenset[str], list[str]]] = {}
        self.used_conftests: dict[Path, Conftest] = {}
        inv = config.invocation_dir
        self.ignore_paths = [Path(os.path.normpath(inv / p)) for p in opts.ignore]
        self.ignore_globs = [str(Path(os.path.normpath(inv / p))) for p in opts.ignore_glob]
        self.initpaths: set[Path] = set()
        self._initpath_strs: set[str] = set()
        self.initparents: set[Path] = set()
        #: Every directory walked (pytest recurses into it): the engine splits a directory
        #: where pytest may collect what discovery cannot see into these.
        self.walked: set[Path] = set()
        #: Directories that could not be listed or searched, with why: reported as errors,
        #: and left to pytest, which reports them as collection errors.
        self.unreadable: dict[Path, str] = {}

    def rel(self, path: Path) -> str:
        """Node-id path of ``path`` (rootdir-relative, "/" separators)."""
        try:
            r = path.relative_to(self.rootdir)
        except ValueError:
            return path.as_posix()
        s = r.as_posix()
        return "" if s == "." else s

    # -- conftests ----------------------------------------------------------------------------

    def conftest(self, directory: Path) -> Conftest | None:
        if directory in self._conftests:
            return self._conftests[directory]
        path = directory / "conftest.py"
        self.probe(path)
        ct: Conftest | None = None
        if self.opts.noconftest:
            pass
        elif self._is_file(path, directory):
            ctx, err = self.load(path)
            ct = Conftest(path, self.rel(directory), ctx, err)
            if ctx is not None and ctx.summary.get("error") is None:
                self._read_conftest(ct, ctx)
            elif ctx is not None:
                line, msg = ctx.summary["error"]
                ct.error = f"{msg} (line {line})"
        self._conftests[directory] = ct
        return ct

    def _read_conftest(self, ct: Conftest, ctx: ModuleCtx) -> None:
        for name in ctx.order:
            b = ctx.ns[name]
            if name.startswith("pytest_") and b["k"] == "func":
                ct.hooks[name] = b["line"]
        if IGNORE_HOOK in ct.hooks:
            ct.ignore_hook_names = hook_names(ct.path, IGNORE_HOOK)
        for attr in ("collect_ignore", "collect_ignore_glob"):
            b = ctx.ns.get(attr)
            if b is None:
                continue
            ok = (
                b["k"] == "value"
                and b["v"][0] in ("l", "t")
                and b.get("cond") is None
                and attr not in ctx.mutated
                and all(x[0] == "s" for x in b["v"][1])
            )
            if not ok:
                ct.ignore_dynamic = f"{attr} in {self.rel(ct.path)} is not a literal list"
                ct.maybe_ignored = possible_ignores(ct.path)
                continue
            vals = [x[1] for x in b["v"][1]]
            if attr == "collect_ignore":
                ct.collect_ignore = [Path(os.path.normpath(ct.path.parent / v)) for v in vals]
            else:
                ct.collect_ignore_glob = [
                    str(Path(os.path.normpath(ct.path.parent / v))) for v in vals
                ]
        b = ctx.ns.get("pytest_plugins")
        if b is not None and b["k"] == "value":
            v = b["v"]
            if v[0] == "s":
                ct.pytest_plugins = [v[1]]
            elif v[0] in ("l", "t"):
                ct.pytest_plugins = [x[1] for x in v[1] if x[0] == "s"]

    def conftests_for(self, directory: Path) -> list[Conftest]:
        """Conftests in effect for ``directory``, outermost first."""
        got = self._for_dir.get(directory)
        if got is not None:
            return got
        parent = directory.parent
        if directory == self.confcutdir or parent == directory:
            out = []
        else:
            # the parent's, computed once for all its subdirectories
            out = list(self.conftests_for(parent))
        if directory == self.confcutdir or self.confcutdir in directory.parents:
            ct = self.conftest(directory)
            if ct is not None:
                self.used_conftests[ct.path] = ct
                out.append(ct)
        self._for_dir[directory] = out
        return out

    # -- ignore -------------------------------------------------------------------------------

    def _ignores(self, directory: Path) -> tuple[frozenset[str], list[str]]:
        """``collect_ignore`` paths (as strings: the paths are normalised, so equal strings are
        equal paths, and hash cheaper) and globs (nearest conftest that sets them, then the
        command line's) for the entries of ``directory``."""
        got = self._ignores_for.get(directory)
        if got is None:
            ignore_paths: list[Path] = []
            ignore_globs: list[str] = []
            cts = self.conftests_for(directory)
            for ct in reversed(cts):
                if ct.collect_ignore is not None:
                    ignore_paths = list(ct.collect_ignore)
                    break
            for ct in reversed(cts):
                if ct.collect_ignore_glob is not None:
                    ignore_globs = list(ct.collect_ignore_glob)
                    break
            got = (
                frozenset(map(str, ignore_paths + self.ignore_paths)),
                ignore_globs + self.ignore_globs,
            )
            self._ignores_for[directory] = got
        return got

    def _listed_ignored(self, spath: str, directory: Path) -> bool:
        """Whether ``collect_ignore`` or ``collect_ignore_glob`` (or ``--ignore``,
        ``--ignore-glob``) names the entry ``spath`` of ``directory``."""
        ignore_strs, ignore_globs = self._ignores(directory)
        return spath in ignore_strs or (
            bool(ignore_globs) and any(fnmatch.fnmatch(spath, g) for g in ignore_globs)
        )

    def ignored(self, path: Path, is_dir: bool) -> bool:
        """``pytest_ignore_collect``."""
        if path.name == "__pycache__":
            return True
        if self._listed_ignored(str(path), path.parent):
            return True
        if is_dir:
            self.probe(path / "pyvenv.cfg")
        if (
            not self.opts.collect_in_virtualenv
            and is_dir
            and (
                self._is_file(path / "pyvenv.cfg", path)
                or self._is_file(path / "conda-meta" / "history")
            )
        ):
            return True
        return is_dir and any(fnmatch_ex(p, path) for p in self.norecurse)

    def _is_file(self, path: Path, directory: Path | None = None) -> bool:
        """``path.is_file()``, but False where ``path`` cannot be looked at (a directory that
        cannot be searched), and then ``directory``, if given, is recorded in :attr:`unreadable`."""
        try:
            return stat.S_ISREG(os.stat(path).st_mode)
        except OSError as exc:
            if directory is not None and exc.errno not in _ABSENT:
                self.unreadable.setdefault(directory, exc.strerror or str(exc))
            return False

    # -- walk ---------------------------------------------------------------------------------

    def resolve_args(self, args: list[str]) -> list[tuple[Path, list[str]]]:
        """``resolve_collection_argument`` for each argument: (path, names)."""
        out = []
        for arg in args:
            base, squacket, _rest = arg.partition("[")
            strpath, *parts = base.split("::")
            if squacket and not parts:
                raise ConfigError(f"path cannot contain [] parametrization: {arg}")
            p = Path(os.path.normpath(self.config.invocation_dir / strpath))
            self.probe(p)
            try:
                is_dir = stat.S_ISDIR(os.stat(p).st_mode)
                if is_dir:
                    os.scandir(p).close()
                else:
                    os.close(os.open(p, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0)))
            except OSError as exc:
                if exc.errno in _ABSENT:
                    raise ConfigError(f"file or directory not found: {arg}") from None
                raise ConfigError(f"cannot read {arg}: {exc.strerror or exc}") from None
            if parts and is_dir:
                raise ConfigError(f"directory argument cannot contain :: selection parts: {arg}")
            out.append((p, parts))
        return out

    def walk(self, args: list[str]) -> list[WalkItem]:
        """Test modules for ``args`` in pytest's order, with node-id selectors."""
        resolved = self.resolve_args(args)
        for p, _ in resolved:
            self.initpaths.add(p)
            self.initparents.update(p.parents)
        self._initpath_strs = {str(p) for p in self.initpaths}
        order: list[Path] = []
        # keyed by ``str(path)``: hashing a string is cheaper than hashing a ``Path``
        selectors: dict[str, list[str] | None] = {}
        for (p, parts), arg in zip(resolved, args, strict=True):
            if p.is_dir():
                files = list(self._walk_dir(p))
                sel: list[str] | None = None
            else:
                self.conftests_for(p.parent)
                if p.suffix == ".py":
                    files = [(p, TEST_MODULE | self._doctest_kind(p))]
                elif p.suffix in (".txt", ".rst") or self._is_doctest_text(p.name, str(p)):
                    files = [(p, DOCTEST_TEXT)]
                else:
                    files = []
                if parts:
                    from ..nodeid import NodeId  # only for node-id arguments

                    node = NodeId.parse(arg.replace(os.sep, "/"))
                    sel = [str(NodeId(self.rel(p), node.names, node.params))]
                else:
                    sel = None
            for f, kind in files:
                key = str(f)
                if key not in selectors:
                    order.append((f, kind))
                    selectors[key] = sel
                elif selectors[key] is not None:
                    selectors[key] = None if sel is None else [*selectors[key], *sel]  # type: ignore[misc]
        return [WalkItem(f, selectors[str(f)], kind) for f, kind in order]

    def _doctest_kind(self, path: Path) -> int:
        """:data:`DOCTEST_MODULE` when ``--doctest-modules`` makes ``path`` a doctest module
        (not ``__main__.py``, nor a ``setup.py`` that mentions setuptools or distutils)."""
        if not self.doctest_modules or path.name == "__main__.py":
            return 0
        if path.name == "setup.py":
            try:
                data = path.read_bytes()
            except OSError:
                return DOCTEST_MODULE
            if b"setuptools" in data or b"distutils" in data:
                return 0
        return DOCTEST_MODULE

    def _is_doctest_text(self, name: str, spath: str) -> bool:
        if self._doctest_name_match is not None:
            return self._doctest_name_match(name) is not None
        return any(fnmatch_ex(g, spath) for g in self.doctest_glob)

    def _walk_dir(self, directory: Path):  # type: ignore[no-untyped-def]
        self.walked.add(directory)
        self.conftests_for(directory)
        self.probe(directory / ".")
        try:
            entries = list(os.scandir(directory))
        except OSError as exc:
            if exc.errno not in _ABSENT:
                self.unreadable.setdefault(directory, exc.strerror or str(exc))
            return
        is_pkg = any(e.name == "__init__.py" for e in entries)
        if is_pkg:
            entries.sort(key=lambda e: (e.name != "__init__.py", e.name))
        else:
            entries.sort(key=lambda e: e.name)
        name_patterns = self.python_files if self._name_patterns else None
        for entry in entries:
            try:
                is_dir = entry.is_dir()
                is_file = not is_dir and entry.is_file()
            except OSError:
                continue
            if is_dir:
                path = Path(entry.path)
                if (
                    path not in self.initpaths
                    and path not in self.initparents
                    and self.ignored(path, True)
                ):
                    continue
                yield from self._walk_dir(path)
            elif is_file:
                name = entry.name
                # ``entry.path`` is the file's path as ``str(Path(entry.path))`` spells it (the
                # directory's is normalised), so that strings stand in for paths here
                spath = entry.path
                # ``Path.suffix`` is ".py" for names ending so, except ".py" itself; checked
                # first, since ignoring a file has no side effect worth paying for here
                if not (name.endswith(".py") and len(name) > 3):
                    initpath = spath in self._initpath_strs
                    if (
                        (initpath and name.endswith((".txt", ".rst")))
                        or self._is_doctest_text(name, spath)
                    ) and (initpath or not self._listed_ignored(spath, directory)):
                        yield directory / name, DOCTEST_TEXT
                    continue
                if spath in self._initpath_strs:
                    path = directory / name
                    yield path, TEST_MODULE | self._doctest_kind(path)
                    continue
                if self._listed_ignored(spath, directory):
                    continue
                if name_patterns is not None:
                    is_test = any(fnmatch.fnmatch(name, pat) for pat in name_patterns)
                else:
                    is_test = any(fnmatch_ex(pat, spath) for pat in self.python_files)
                if is_test:
                    path = directory / name
                    yield path, TEST_MODULE | self._doctest_kind(path)
                elif self.doctest_modules:
                    path = directory / name
                    kind = self._doctest_kind(path)
                    if kind:
                        yield path, kind


def dynamic_scopes(conftests: list[Conftest]) -> list[tuple[str, str, int, str]]:
    """(baseid, hook, line, conftest rel) for conftests whose hooks change collection."""
    out = []
    for ct in conftests:
        for hook in COLLECTION_HOOKS:
            if hook in ct.hooks:
                out.append((ct.baseid, hook, ct.hooks[hook], ct.path.name))
    return out


def plugin_names(value: Any) -> list[str]:
    """Literal ``pytest_plugins`` values."""
    return list(value) if isinstance(value, list) else []
