"""Which tests a change affects, from the import graph static discovery sees.

Discovery records, for every test module, the modules it imports and which of them are project
files (:attr:`tach.discovery.model.DiscoveryResult.imports`). :class:`ImportGraph` follows the
project files further: it reads each one's ``import`` statements with ``ast`` (no code runs)
and resolves them against the directories the test modules' imports were found in. A change to
a project module affects the test modules whose import closure reaches it; a conftest, its
directory's tests; pytest's or Tach's configuration, every test. What the graph cannot see
(an ``importlib.import_module`` of a computed name, a data file a test reads) is listed in
``docs/watch.md`` with the ways around it.
"""

from __future__ import annotations

import ast
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from tach.discovery.model import ModuleImport

#: Files whose change reconfigures pytest or Tach: every test is affected.
CONFIG_FILES = frozenset(
    {"pytest.ini", ".pytest.ini", "pyproject.toml", "tox.ini", "setup.cfg", "conftest.py"}
)


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

    def updated(self, imports: Mapping[str, Sequence[ModuleImport]]) -> ImportGraph:
        """The graph of a newer discovery, keeping what was read of unchanged files."""
        graph = ImportGraph(self.rootdir, imports)
        graph._edges = self._edges
        return graph

    def merged(self, imports: Mapping[str, Sequence[ModuleImport]]) -> ImportGraph:
        """This graph with the test modules of a partial discovery read again."""
        graph = ImportGraph(self.rootdir, imports)
        graph.direct = {**self.direct, **graph.direct}
        graph.roots = list(dict.fromkeys([*self.roots, *graph.roots]))
        graph._edges = self._edges
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
        """The project files ``test`` imports, directly or through other project files."""
        seen: set[Path] = set()
        todo = list(self.direct.get(test, ()))
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
        found = set(self._resolve_all(path))
        self._edges[path] = (mtime, found)
        return found

    def _resolve_all(self, path: Path) -> Iterable[Path]:
        try:
            tree = ast.parse(path.read_bytes(), filename=str(path))
        except (OSError, SyntaxError, ValueError):
            return
        package = path.parent
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    yield from self._absolute(alias.name)
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package
                    for _ in range(node.level - 1):
                        base = base.parent
                    parts = node.module.split(".") if node.module else []
                    target = base.joinpath(*parts) if parts else base
                    yield from _module_files(target)
                    for alias in node.names:
                        yield from _module_files(target / alias.name)
                elif node.module:
                    yield from self._absolute(node.module)
                    for alias in node.names:
                        yield from self._absolute(f"{node.module}.{alias.name}", packages=False)

    def _absolute(self, name: str, packages: bool = True) -> Iterable[Path]:
        parts = name.split(".")
        for root in self.roots:
            if not (root / parts[0]).exists() and not (root / f"{parts[0]}.py").exists():
                continue
            # ``import a.b.c`` runs a/__init__.py and a/b/__init__.py too
            start = 1 if packages else len(parts)
            for depth in range(start, len(parts) + 1):
                yield from _module_files(root.joinpath(*parts[:depth]))
            return

    def affected(self, changed: Iterable[Path]) -> tuple[set[Path] | None, list[Path]]:
        """``(tests, unseen)``: the test modules a change to ``changed`` affects (None: all of
        them), and the changed files no test is known to depend on."""
        changed = [Path(os.path.abspath(path)) for path in changed]
        tests: set[Path] = set()
        unseen: list[Path] = []
        project: set[Path] = set()
        known_tests = self.test_modules()
        for path in changed:
            if path.name in CONFIG_FILES and path.name != "conftest.py":
                return None, []
            if path.name == "conftest.py":
                below = {test for test in known_tests if path.parent in test.parents}
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
            reached = set()
            for test in known_tests:
                hit = self.closure(test) & project
                if hit:
                    tests.add(test)
                    reached |= hit
            unseen += sorted(project - reached)
        return tests, unseen


def _module_files(target: Path) -> Iterable[Path]:
    """The file a module at ``target`` (a path without suffix) is: a module or a package."""
    module = target.with_name(target.name + ".py")
    if module.is_file():
        yield module
        return
    init = target / "__init__.py"
    if init.is_file():
        yield init


def _import_root(module: str, path: Path) -> Path | None:
    """The directory ``module`` (imported from the file at ``path``) is found in."""
    if module.startswith("."):
        return None
    parts = module.split(".")
    base = path.parent if path.name == "__init__.py" else path.with_suffix("")
    for _ in parts:
        base = base.parent
    return base
