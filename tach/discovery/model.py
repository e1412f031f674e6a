"""The records static discovery produces: tests, fixtures, per-module facts and errors.

Every record here is plain data that serialises to JSON (``to_json``) and back
(``from_json``), because the cache under ``.tach/`` stores them and the ``list`` command prints
them. Nothing here imports user code or pytest.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: Fixture scopes from narrowest to widest, as pytest orders them.
SCOPES: tuple[str, ...] = ("function", "class", "module", "package", "session")


def scope_rank(scope: str | None) -> int:
    """Position of ``scope`` in :data:`SCOPES` (unknown or dynamic scopes count as function)."""
    try:
        return SCOPES.index(scope) if scope else 0
    except ValueError:
        return 0


@dataclass(slots=True)
class TestDef:
    """One test as pytest would collect it (or, when ``dynamic`` is set, a placeholder).

    A dynamic record stands for every pytest id equal to ``id``, or starting with ``id + "["``
    or ``id + "::"`` (or with ``id`` itself when it ends in ``/``): the source alone does not say
    which ids pytest will make there, and ``dynamic`` says why.
    """

    #: not a test class, whatever pytest's ``python_classes`` says.
    __test__ = False

    #: pytest's node id: rootdir-relative path with "/" separators, then "::" parts.
    id: str
    #: rootdir-relative path of the file the test was collected from.
    file: str
    #: 1-based line of the ``def`` (the def line itself, not its first decorator).
    line: int
    #: the function's name as collected (``originalname`` in pytest: without ``[...]``).
    name: str
    #: enclosing test classes, outermost first.
    classes: tuple[str, ...] = ()
    is_async: bool = False
    #: mark names in pytest's ``iter_markers`` order (function, parameter, class, module).
    marks: list[str] = field(default_factory=list)
    #: fixtures the test requests itself: argnames minus direct parameters, plus usefixtures.
    fixtures: list[str] = field(default_factory=list)
    #: why the source is not enough to name this test exactly; None when it is.
    dynamic: str | None = None
    #: the file that defines the function (differs from ``file`` for imported functions).
    def_file: str | None = None
    #: unittest.TestCase method (pytest passes it no fixtures by argument).
    unittest: bool = False
    #: argnames parametrized directly by ``parametrize`` marks (not fixtures).
    direct_params: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The record in the ``list --format=json`` document shape."""
        return {
            "id": self.id,
            "file": self.file,
            "line": self.line,
            "is_async": self.is_async,
            "marks": self.marks,
            "fixtures": self.fixtures,
            "dynamic": self.dynamic,
        }

    def to_cache(self) -> list[Any]:
        """Compact positional form for the cache."""
        return [
            self.id,
            self.file,
            self.line,
            self.name,
            list(self.classes),
            self.is_async,
            self.marks,
            self.fixtures,
            self.dynamic,
            self.def_file,
            self.unittest,
            self.direct_params,
        ]

    @classmethod
    def from_cache(cls, row: list[Any]) -> TestDef:
        """Inverse of :meth:`to_cache`."""
        test = cls(*row)
        test.classes = tuple(test.classes)  # a list in JSON
        return test

    def covers(self, nodeid: str) -> bool:
        """Whether a dynamic record stands for ``nodeid`` (see the class docstring)."""
        if nodeid == self.id:
            return True
        if not self.id or self.id.endswith("/"):
            return nodeid.startswith(self.id)
        return nodeid.startswith(self.id + "[") or nodeid.startswith(self.id + "::")


@dataclass(slots=True)
class FixtureDef:
    """A fixture function found in source (or a builtin/plugin fixture known by name)."""

    name: str
    #: "function" ... "session"; None when the scope is a callable (dynamic).
    scope: str | None
    autouse: bool
    #: the fixture's own arguments: the fixtures it requests.
    deps: list[str]
    #: path (rootdir-relative for project files, absolute for plugins); "" when unknown.
    file: str
    line: int
    #: "conftest", "module", "class", "plugin" or "builtin".
    where: str
    #: the node id prefix under which the fixture is visible ("" = everywhere):
    #: a directory ("tests/sub"), a module id, or a class id.
    baseid: str
    #: literal params: a list of ids, or None when not parametrized.
    params: list[str] | None = None
    #: why params are not literal, when they are not.
    params_dynamic: str | None = None
    #: the function's name when ``name=`` renamed the fixture.
    funcname: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The record in the ``list --format=json`` document shape."""
        return {
            "name": self.name,
            "scope": self.scope,
            "file": self.file,
            "line": self.line,
            "autouse": self.autouse,
            "deps": self.deps,
            "where": self.where,
            "params": self.params,
        }

    def to_cache(self) -> list[Any]:
        """Compact positional form for the cache."""
        return [
            self.name,
            self.scope,
            self.autouse,
            self.deps,
            self.file,
            self.line,
            self.where,
            self.baseid,
            self.params,
            self.params_dynamic,
            self.funcname,
        ]

    @classmethod
    def from_cache(cls, row: list[Any]) -> FixtureDef:
        """Inverse of :meth:`to_cache`."""
        return cls(*row)


@dataclass(slots=True)
class DiscoveryError:
    """A problem that stops one file (or argument) from being discovered."""

    file: str
    line: int
    message: str
    kind: str = "error"

    def to_json(self) -> dict[str, Any]:
        """JSON form: file, line, message, kind."""
        return {"file": self.file, "line": self.line, "message": self.message, "kind": self.kind}

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}"


@dataclass(slots=True)
class ModuleImport:
    """A module a test module imports, resolved to a project file when it is one."""

    module: str
    file: str | None

    def to_json(self) -> dict[str, Any]:
        """JSON form."""
        return {"module": self.module, "file": self.file}


@dataclass
class DiscoveryResult:
    """Everything static discovery found for one invocation."""

    rootdir: str
    inifile: str | None
    tests: list[TestDef] = field(default_factory=list)
    fixtures: list[FixtureDef] = field(default_factory=list)
    errors: list[DiscoveryError] = field(default_factory=list)
    warnings: list[DiscoveryError] = field(default_factory=list)
    #: rootdir-relative test module path -> the modules it imports.
    imports: dict[str, list[ModuleImport]] = field(default_factory=dict)
    #: conftest files in effect, rootdir-relative.
    conftests: list[str] = field(default_factory=list)
