"""Which tests a change affects, from the import graph static discovery sees.

Discovery records, for every test module, the modules it imports and which of them are project
files (:attr:`tach.discovery.model.DiscoveryResult.imports`). :class:`ImportGraph` follows the
project files further: it reads each one's ``import`` statements with ``ast`` (no code runs)
and resolves them against the directories the test modules' imports were found in. A change to
a project module affects the test modules whose import closure reaches it, or a conftest's
above them; a conftest, its directory's tests; pytest's or Tach's configuration, every test.
``tach --watch`` (:mod:`tach.watch`) and ``--changed-since`` (:mod:`tach.changed`) select by
it. What the graph cannot see (a module loaded by an entry point, a data file a test reads) is
listed in ``docs/watch.md`` with the ways around it.
"""

from __future__ import annotations

import ast
import fnmatch
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from tach.discovery.model import ModuleImport

#: Files whose change reconfigures pytest or Tach: every test is affected.
CONFIG_FILES = frozenset(
    {"pytest.ini", ".pytest.ini", "pyproject.toml", "tox.ini", "setup.cfg", "conftest.py"}
)


#: Directory names whose contents are no project source (``--watch`` ignores their changes).
IGNORED_DIRS = frozenset(
    {
        ".git",
        ".hg",
        ".svn",
        ".tach",
        "__pycache__",
        ".pytest_cache",
        ".mypy_cache",
        ".ruff_cache",
        ".hypothesis",
        ".tox",
        ".nox",
        ".venv",
        "venv",
        "node_modules",
        "build",
        "dist",
        ".eggs",
    }
)
#: File name patterns of no project source (editor swap files, coverage data, bytecode).
IGNORED_FILES = (
    "*.pyc",
    "*.pyo",
    "*.swp",
    "*.swx",
    "*~",
    ".#*",
    "#*#",
    "4913",
    ".coverage",
    ".coverage.*",
    "*.egg-info",
)


def not_source(path: Path, rootdir: Path) -> bool:
    """A path under a directory nobody edits by hand, or a file name no source has."""
    try:
        parts = path.relative_to(rootdir).parts
    except ValueError:
        return True
    if any(part in IGNORED_DIRS or part.endswith(".egg-info") for part in parts[:-1]):
        return True
    name = parts[-1] if parts else ""
    return any(fnmatch.fnmatch(name, pattern) for pattern in IGNORED_FILES)



class ImportGraph:
    """Test modules and the project files their imports reach (paths absolute)."""

    def __init__(self, rootdir: Path, imports: Mapping[str, Sequence[ModuleImport]]) -> None:
        self.rootdir = rootdir
        #: test module -> the project files it imports directly.
        self.direct: dict[Path, set[Path]] = {}
        #: Directories the project's absolute imports are resolved from.
        self.roots: list[Path] = []
        roots: dict[Path, None] = {}
        for test, found in imports.items():
            test_path = rootdir / test
            files = self.direct.setdefault(test_path, set())
            for imported in found:
                if imported.file is None:
                    continue
                path = Path(imported.file)
                path = path if path.is_absolute() else rootdir / path
                files.add(path)
                root = _import_root(imported.module, path)
                if root is not None:
                    roots[root] = None
        self.roots = list(roots)
        self._edges: dict[Path, tuple[int, set[Path]]] = {}
        #: file -> module files its imports name that do not exist (:meth:`missing_of`).
        self._missing: dict[Path, set[Path]] = {}

    def updated(self, imports: Mapping[str, Sequence[ModuleImport]]) -> ImportGraph:
        """The graph of a newer discovery, keeping what was read of unchanged files."""
        graph = ImportGraph(self.rootdir, imports)
        graph._edges, graph._missing = self._edges, self._missing
        return graph

    def merged(self, imports: Mapping[str, Sequence[ModuleImport]]) -> ImportGraph:
        """This graph with the test modules of a partial discovery read again."""
        graph = ImportGraph(self.rootdir, imports)
        graph.direct = {**self.direct, **graph.direct}
        graph.roots = list(dict.fromkeys([*self.roots, *graph.roots]))
        graph._edges, graph._missing = self._edges, self._missing
        return graph

    def knows(self, path: Path) -> bool:
        """Whether ``path`` is a test module or a project file the tests were seen to import."""
        return path in self.direct or path in self._edges

    def test_modules(self) -> set[Path]:
        return set(self.direct)

    def prime(self) -> None:
        """Read every project file the tests reach now, so that a file deleted later is still
        known to the modules that imported it."""
        for test in self.direct:
            self.closure(test)

    def closure(self, test: Path) -> set[Path]:
        """The project files ``test`` (a test module, or any project file such as a conftest)
        imports, directly or through other project files."""
        seen: set[Path] = set()
        todo = list(self.direct[test] if test in self.direct else self.imports_of(test))
        while todo:
            path = todo.pop()
            if path in seen:
                continue
            seen.add(path)
            todo.extend(self.imports_of(path) - seen)
        return seen

    def imports_of(self, path: Path) -> set[Path]:
        """The project files the module at ``path`` imports (read again when it changed)."""
        try:
            mtime = path.stat().st_mtime_ns
        except OSError:
            return set()
        cached = self._edges.get(path)
        if cached is not None and cached[0] == mtime:
            return cached[1]
        missing: set[Path] = set()
        found = set(self._resolve_all(path, missing))
        self._edges[path] = (mtime, found)
        self._missing[path] = missing
        return found

    def missing_of(self, path: Path) -> set[Path]:
        """The module files ``path``'s imports name that do not exist (``x.py`` and
        ``x/__init__.py`` for each): a deleted module is found among them."""
        self.imports_of(path)
        return self._missing.get(path, set())

    def _resolve_all(self, path: Path, missing: set[Path]) -> Iterable[Path]:
        try:
            tree = ast.parse(path.read_bytes(), filename=str(path))
        except (OSError, SyntaxError, ValueError):
            return
        package = path.parent
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    yield from self._absolute(alias.name, missing)
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package
                    for _ in range(node.level - 1):
                        base = base.parent
                    parts = node.module.split(".") if node.module else []
                    target = base.joinpath(*parts) if parts else base
                    yield from _module_files(target, missing)
                    for alias in node.names:
                        yield from _module_files(target / alias.name, missing)
                elif node.module:
                    yield from self._absolute(node.module, missing)
                    for alias in node.names:
                        name = f"{node.module}.{alias.name}"
                        yield from self._absolute(name, missing, packages=False)
            elif isinstance(node, ast.Assign | ast.AnnAssign):
                # ``pytest_plugins = ["pkg.fixtures"]``: pytest imports the modules named
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                if any(isinstance(t, ast.Name) and t.id == "pytest_plugins" for t in targets):
                    for name in _plugin_names(node.value):
                        yield from self._absolute(name, missing)
            elif isinstance(node, ast.Call) and _imports_dynamically(node.func) and node.args:
                yield from self._dynamic(node.args[0], package, missing)

    def _dynamic(self, name: ast.expr, package: Path, missing: set[Path]) -> Iterable[Path]:
        """What ``import_module(name)`` or ``__import__(name)`` may import: the module a
        constant names; every module of the package a computed name begins with (``"pkg.sub."
        + name``); else every module of the importer's own package (a plugin registry loading
        its siblings by name: pygments' lexers, formatters and styles)."""
        if (
            isinstance(name, ast.Constant)
            and isinstance(name.value, str)
            and not name.value.startswith(".")
        ):
            yield from self._absolute(name.value, missing)
            return
        prefix = _constant_prefix(name)
        if prefix and not prefix.startswith(".") and "." in prefix:
            parts = prefix.rpartition(".")[0].split(".")
            for root in self.roots:
                target = root.joinpath(*parts)
                if target.is_dir():
                    yield from _package_modules(target)
                    return
        yield from _package_modules(package)

    def _absolute(self, name: str, missing: set[Path], packages: bool = True) -> Iterable[Path]:
        parts = name.split(".")
        for root in self.roots:
            if not (root / parts[0]).exists() and not (root / f"{parts[0]}.py").exists():
                continue
            # ``import a.b.c`` runs a/__init__.py and a/b/__init__.py too
            start = 1 if packages else len(parts)
            for depth in range(start, len(parts) + 1):
                yield from _module_files(root.joinpath(*parts[:depth]), missing)
            return
        # found in no root: a top-level module of the project that was deleted, if not an
        # installed one
        for root in self.roots:
            missing.update(_module_files_named(root / parts[0]))

    def affected(self, changed: Iterable[Path]) -> tuple[set[Path] | None, list[Path]]:
        """``(tests, unseen)``: the test modules a change to ``changed`` affects (None: all of
        them), and the changed files no test is known to depend on.

        A test module is affected by itself, by a project file its imports reach (one that was
        deleted included), and by a conftest of its directory or a directory above (up to the
        rootdir) or a project file that conftest's imports reach.
        """
        changed = [Path(os.path.abspath(path)) for path in changed]
        tests: set[Path] = set()
        unseen: list[Path] = []
        project: set[Path] = set()
        known_tests = self.test_modules()
        for path in changed:
            if path.name in CONFIG_FILES and path.name != "conftest.py":
                return None, []
            if path.name == "conftest.py":
                below = _below(path.parent, known_tests)
                tests |= below
                if not below:
                    unseen.append(path)
            elif path in known_tests:
                tests.add(path)
            elif path.suffix == ".py":
                project.add(path)
            else:
                unseen.append(path)
        if project:
            reached, _ = self.importers(project)
            for found in reached.values():
                tests |= found
            unseen += sorted(project - set(reached))
        return tests, unseen

    def importers(self, project: set[Path]) -> tuple[dict[Path, set[Path]], set[Path]]:
        """``(reached, conftests)``: each file of ``project`` (project modules, some of them
        deleted) that test modules depend on, and those test modules — the ones whose imports
        reach it, and the ones below a conftest whose imports reach it; and those conftests
        (pytest may collect more below them than the test modules the graph knows)."""
        deleted = {path for path in project if not path.exists()}
        known_tests = self.test_modules()
        reached: dict[Path, set[Path]] = {}
        for test in known_tests:
            for path in self.reaches(test, project, deleted):
                reached.setdefault(path, set()).add(test)
        conftests = set()
        for conftest in self.conftests():
            hit = self.reaches(conftest, project, deleted)
            if hit:
                conftests.add(conftest)
                below = _below(conftest.parent, known_tests)
                for path in hit:
                    reached.setdefault(path, set()).update(below)
        return reached, conftests

    def conftests(self) -> set[Path]:
        """The ``conftest.py`` files of the test modules' directories and of the directories
        above them, up to the rootdir."""
        found: set[Path] = set()
        seen: set[Path] = set()
        for test in self.direct:
            for directory in test.parents:
                if directory in seen or not (
                    directory == self.rootdir or self.rootdir in directory.parents
                ):
                    break
                seen.add(directory)
                if (directory / "conftest.py").is_file():
                    found.add(directory / "conftest.py")
        return found

    def reaches(self, start: Path, project: set[Path], deleted: set[Path]) -> set[Path]:
        """The files of ``project`` the imports of ``start`` reach (``deleted``: those of them
        that no longer exist, found by the names the imports give)."""
        files = self.closure(start)
        hit = files & project
        if deleted:
            for path in (start, *files):
                hit |= self.missing_of(path) & deleted
        return hit


def _below(directory: Path, tests: Iterable[Path]) -> set[Path]:
    return {test for test in tests if directory in test.parents}


def _module_files(target: Path, missing: set[Path] | None = None) -> Iterable[Path]:
    """The file a module at ``target`` (a path without suffix) is: a module or a package
    (neither: both names go to ``missing``)."""
    module, init = _module_files_named(target)
    if module.is_file():
        yield module
        return
    if init.is_file():
        yield init
        return
    if missing is not None:
        missing.update((module, init))


def _imports_dynamically(func: ast.expr) -> bool:
    """``importlib.import_module``, ``import_module``, ``__import__``."""
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
    return name in ("import_module", "__import__")


def _constant_prefix(node: ast.expr) -> str | None:
    """The constant beginning of a string built at run time: ``"a.b." + name`` and
    ``f"a.b.{name}"`` begin with ``a.b.``."""
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left = node.left
        if isinstance(left, ast.Constant) and isinstance(left.value, str):
            return left.value
        return _constant_prefix(left)
    if isinstance(node, ast.JoinedStr) and node.values:
        first = node.values[0]
        if isinstance(first, ast.Constant) and isinstance(first.value, str):
            return first.value
    return None


def _package_modules(directory: Path) -> list[Path]:
    """The Python modules in ``directory`` and below."""
    try:
        return sorted(directory.rglob("*.py"))
    except OSError:
        return []


def _module_files_named(target: Path) -> tuple[Path, Path]:
    return target.with_name(target.name + ".py"), target / "__init__.py"


def _plugin_names(value: ast.expr | None) -> list[str]:
    """The module names of a ``pytest_plugins`` value: a string, or a list or tuple of them."""
    if isinstance(value, ast.Constant) and isinstance(value.value, str):
        return [value.value]
    if isinstance(value, ast.List | ast.Tuple):
        return [
            item.value
            for item in value.elts
            if isinstance(item, ast.Constant) and isinstance(item.value, str)
        ]
    return []


def _import_root(module: str, path: Path) -> Path | None:
    """The directory ``module`` (imported from the file at ``path``) is found in."""
    if module.startswith("."):
        return None
    parts = module.split(".")
    base = path.parent if path.name == "__init__.py" else path.with_suffix("")
    for _ in parts:
        base = base.parent
    return base
