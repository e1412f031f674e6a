"""Fixture resolution: visibility, each test's closure in pytest's order, and problems found
before anything runs.

This mirrors ``_pytest/fixtures.py``:

* **Visibility** (``FixtureManager.getfixturedefs``): a fixture is visible to a test when it is
  registered on one of the test's parent nodes: its classes, its module, the directories of the
  conftests above it, or the session (builtins, installed plugins, ``pytest_plugins``, the
  rootdir's conftest). The visible definitions of a name are ordered least to most specific;
  the last one wins, and a fixture that requests its own name gets the one before it.
* **Closure** (``getfixtureinfo`` + ``getfixtureclosure``): the initial names are the autouse
  fixtures (``usefixtures`` ini option first, then per node from the session down, by name
  within a node), then ``usefixtures`` marks, then the test's arguments; the closure adds each
  fixture's arguments depth first (following override chains), skipping names parametrized
  directly, and is finally sorted by scope, widest first (a stable sort).
* **Fixture parametrization** (``FixtureManager.pytest_generate_tests``): for each closure
  name, the nearest definition with ``params`` parametrizes the test (ids before those of the
  test's own ``parametrize`` marks); when the parameters are not literal the test is dynamic.

Worked example: ``tests/conftest.py`` defines ``db`` (session) and autouse ``env``;
``tests/test_a.py::test_q(db, tmp_path)`` has initial names ``env, db, tmp_path``; ``tmp_path``
requests ``tmp_path_factory`` (session), so the closure is
``db, tmp_path_factory, env, tmp_path, request...`` sorted widest first, and the widest
scope it binds is ``session``.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .discovery.model import SCOPES, scope_rank

if TYPE_CHECKING:  # discovery is a sibling layer: only its types are needed here
    from .discovery.model import FixtureDef, TestDef


#: names pytest provides without a fixture function.
PSEUDO_FIXTURES = frozenset({"request"})


def _level(fx: FixtureDef) -> tuple[int, int]:
    if fx.where in ("builtin", "plugin"):
        return (0, 0)
    if fx.where == "conftest":
        return (1, 0 if not fx.baseid else fx.baseid.count("/") + 1)
    if fx.where == "module":
        return (2, 0)
    return (3, fx.baseid.count("::"))


def visible_to(fx: FixtureDef, nodeid: str) -> bool:
    """Whether ``fx`` is registered on a parent node of ``nodeid``."""
    b = fx.baseid
    if not b:
        return True
    if fx.where == "conftest":
        return nodeid.startswith(b + "/")
    return nodeid.startswith(b + "::")


def _parent_id(nodeid: str) -> str:
    """The node id of the test's parent collector (its class or module)."""
    return nodeid.partition("[")[0].rpartition("::")[0] or nodeid


@dataclass
class Problem:
    """A problem found before running: cycle, scope mismatch or unknown fixture."""

    kind: str  # "cycle", "scope-mismatch", "unknown-fixture"
    severity: str  # "error" or "warning"
    file: str
    line: int
    message: str
    tests: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.severity}: {self.message}"

    def to_json(self) -> dict[str, object]:
        """JSON form (``tests`` truncated to the first 20 ids)."""
        return {
            "kind": self.kind,
            "severity": self.severity,
            "file": self.file,
            "line": self.line,
            "message": self.message,
            "tests": self.tests[:20],
            "count": len(self.tests),
        }


@dataclass
class Resolution:
    """The closure of one test."""

    #: fixture names in pytest's order (``item.fixturenames``).
    closure: list[str]
    #: name -> the definition the test binds (the most specific visible one).
    bound: dict[str, FixtureDef]
    #: widest scope among the fixtures set up for the test, override chains included.
    widest_scope: str


class Resolver:
    """Resolves fixtures for tests against a set of fixture definitions."""

    def __init__(
        self,
        fixtures: Iterable[FixtureDef],
        *,
        ini_usefixtures: Iterable[str] = (),
        plugins_complete: bool = True,
    ) -> None:
        self.by_name: dict[str, list[FixtureDef]] = defaultdict(list)
        ordered = sorted(enumerate(fixtures), key=lambda p: (_level(p[1]), p[0]))
        for _, fx in ordered:
            self.by_name[fx.name].append(fx)
        self.autouse = [fx for _, fx in ordered if fx.autouse]
        self.ini_usefixtures = list(ini_usefixtures)
        self.plugins_complete = plugins_complete
        self.problems: list[Problem] = []
        # visibility depends only on the test's parent node: cache per (name, parent)
        self._defs_cache: dict[tuple[str, str], list[FixtureDef]] = {}
        self._autouse_cache: dict[str, list[str]] = {}
        self._problem_index: dict[tuple[str, str, int, str], Problem] = {}

    # -- lookup -------------------------------------------------------------------------------

    def defs(self, name: str, nodeid: str) -> list[FixtureDef]:
        """Visible definitions of ``name`` for ``nodeid``, least specific first."""
        cands = self.by_name.get(name)
        if not cands:
            return []
        if len(cands) == 1:
            return list(cands) if visible_to(cands[0], nodeid) else []
        parent = _parent_id(nodeid)
        key = (name, parent)
        got = self._defs_cache.get(key)
        if got is None:
            got = [fx for fx in cands if visible_to(fx, nodeid)]
            self._defs_cache[key] = got
        return list(got)

    def autouse_names(self, nodeid: str) -> list[str]:
        """``_getautousenames``: ini usefixtures, then autouse fixtures from the session down."""
        parent = _parent_id(nodeid)
        got = self._autouse_cache.get(parent)
        if got is None:
            got = list(self.ini_usefixtures)
            got += [fx.name for fx in self.autouse if visible_to(fx, nodeid)]
            self._autouse_cache[parent] = got
        return list(got)

    # -- closure ------------------------------------------------------------------------------

    def resolve(self, test: TestDef) -> Resolution:
        """The test's fixture closure (and problems recorded on the resolver)."""
        nodeid = test.id
        ignore = set(test.direct_params)
        initial = list(dict.fromkeys(self.autouse_names(nodeid) + list(test.fixtures)))
        arg2defs: dict[str, list[FixtureDef]] = {}

        def getdefs(name: str) -> list[FixtureDef] | None:
            if name in ignore:
                return None
            if name not in arg2defs:
                arg2defs[name] = self.defs(name, nodeid)
            return arg2defs[name] or None

        closure: list[str] = []
        used: list[FixtureDef] = []
        current: dict[str, int] = {}
        stack: list[tuple[str, int]] = []

        def process(name: str, via: FixtureDef | None) -> None:
            index = current.get(name)
            if index == -1:
                # already processed at the most specific level; a request from inside the
                # chain of the same name at -1 is a cycle
                if (name, -1) in stack:
                    self._cycle(stack, name, via, nodeid)
                return
            if index is None:
                closure.append(name)
                current[name] = -1
            defs = getdefs(name)
            if not defs:
                if name not in ignore and name not in PSEUDO_FIXTURES:
                    self._unknown(name, test, via)
                return
            index = current.get(name, -1)
            if -index > len(defs):
                # the override chain is exhausted: requesting the name again from inside its
                # own chain is the recursion pytest reports at setup
                if any(n == name for n, _ in stack):
                    self._cycle(stack, name, via, nodeid)
                return
            fx = defs[index]
            if (name, index) in stack:
                self._cycle(stack, name, via, nodeid)
                return
            stack.append((name, index))
            used.append(fx)
            current[name] = index - 1
            for dep in fx.deps:
                process(dep, fx)
                self._check_scope(fx, dep, getdefs(dep), nodeid)
            current[name] = index
            stack.pop()

        for name in initial:
            process(name, None)

        def rank(name: str) -> int:
            defs = arg2defs.get(name)
            return scope_rank(defs[-1].scope) if defs else 0

        closure.sort(key=rank, reverse=True)
        bound = {n: arg2defs[n][-1] for n in closure if arg2defs.get(n)}
        widest = max((scope_rank(fx.scope) for fx in used), default=0)
        return Resolution(closure, bound, SCOPES[widest])

    def _record(
        self, kind: str, severity: str, file: str, line: int, message: str, nodeid: str
    ) -> None:
        key = (kind, file, line, message)
        p = self._problem_index.get(key)
        if p is None:
            p = Problem(kind, severity, file, line, message)
            self._problem_index[key] = p
            self.problems.append(p)
        if nodeid not in p.tests:
            p.tests.append(nodeid)

    def _unknown(self, name: str, test: TestDef, via: FixtureDef | None) -> None:
        where = (via.file, via.line) if via else (test.def_file or test.file, test.line)
        requester = f"fixture '{via.name}'" if via else f"test {test.id}"
        severity = "error" if self.plugins_complete else "warning"
        extra = (
            ""
            if self.plugins_complete
            else (" (an installed plugin whose source could not be read may provide it)")
        )
        self._record(
            "unknown-fixture",
            severity,
            where[0],
            where[1],
            f"fixture '{name}' not found (requested by {requester}){extra}",
            test.id,
        )

    def _cycle(
        self, stack: list[tuple[str, int]], name: str, via: FixtureDef | None, nodeid: str
    ) -> None:
        names = [n for n, _ in stack]
        start = names.index(name) if name in names else 0
        chain = " -> ".join([*names[start:], name])
        file, line = (via.file, via.line) if via else ("", 0)
        self._record(
            "cycle",
            "error",
            file,
            line,
            f"recursive dependency involving fixture '{name}': {chain}",
            nodeid,
        )

    def _check_scope(
        self, fx: FixtureDef, dep: str, defs: list[FixtureDef] | None, nodeid: str
    ) -> None:
        if not defs or fx.scope is None:
            return
        target = defs[-1] if dep != fx.name else (defs[-2] if len(defs) > 1 else None)
        if target is None or target.scope is None:
            return
        if scope_rank(target.scope) < scope_rank(fx.scope):
            self._record(
                "scope-mismatch",
                "error",
                fx.file,
                fx.line,
                f"fixture '{fx.name}' ({fx.scope} scope) requests '{dep}' ({target.scope} "
                f"scope, {target.file}:{target.line})",
                nodeid,
            )

    # -- parametrized fixtures ----------------------------------------------------------------

    def expand(self, test: TestDef, res: Resolution) -> list[TestDef]:
        """Apply fixture parametrization to ``test`` (pytest's ``pytest_generate_tests``).

        Returns the test itself when no fixture in its closure is parametrized, the expanded
        tests when all parametrizing fixtures have literal params, or the test marked dynamic.
        """
        if test.dynamic or test.unittest:
            return [test]
        id_parts: list[list[str]] = []
        for name in res.closure:
            if name in test.direct_params:
                continue
            defs = self.defs(name, test.id)
            for fx in reversed(defs):
                if fx.params is not None or fx.params_dynamic:
                    if fx.params is None:
                        test.dynamic = (
                            f"requests parametrized fixture '{name}' "
                            f"({fx.file}:{fx.line}): {fx.params_dynamic}"
                        )
                        test.id = test.id.partition("[")[0] if "::" in test.id else test.id
                        return [test]
                    id_parts.append(fx.params)
                    break
                if name not in fx.deps:
                    break
        if not id_parts:
            return [test]
        base, _, own = test.id.partition("[")
        own_ids = own[:-1] if own else None
        combos: list[list[str]] = [[]]
        for ids in id_parts:
            if not ids:  # empty params: pytest makes one NOTSET id
                ids = ["NOTSET"]
            combos = [[*c, i] for c in combos for i in ids]
        out = []
        for c in combos:
            parts = [p for p in c if p != ""] + ([own_ids] if own_ids is not None else [])
            new_id = f"{base}[{'-'.join(parts)}]" if parts else base
            out.append(
                dataclasses.replace(
                    test, id=new_id, marks=list(test.marks), fixtures=list(test.fixtures)
                )
            )
        return out


def resolve_all(
    tests: list[TestDef], resolver: Resolver
) -> tuple[list[TestDef], dict[str, Resolution]]:
    """Resolve every test, expanding fixture parametrization; returns (tests, id -> closure)."""
    out: list[TestDef] = []
    closures: dict[str, Resolution] = {}
    for t in tests:
        if t.dynamic and (not t.id or t.id.endswith("/")):
            out.append(t)
            continue
        res = resolver.resolve(t)
        for x in resolver.expand(t, res):
            if x.dynamic and x.id in closures:
                continue  # variants of one dynamic test collapse into one record
            out.append(x)
            closures[x.id] = res
    return out, closures
