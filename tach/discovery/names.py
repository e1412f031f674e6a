"""Name resolution across the project's modules, from summaries (no imports of user code).

A :class:`ModuleCtx` is one parsed file; :class:`Index` finds the file behind a module name the
way the import system would for project files (``prepend`` import mode: the first directory
upwards without ``__init__.py``, the rootdir, ``src/`` and ini ``pythonpath`` are searched), and
:func:`resolve` follows a dotted name through aliases and ``from ... import`` into other project
files, or reports it as external (``pytest.mark.slow``, ``unittest.TestCase``).
"""

from __future__ import annotations

import builtins
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

_BUILTINS = frozenset(dir(builtins))


# Plain classes, not dataclasses: ``dataclasses`` writes and compiles their methods at import,
# about a millisecond a class, on every start of ``tach list``.


class ModuleCtx:
    """One summarised source file."""

    __slots__ = ("canons", "mutated", "ns", "order", "path", "rel", "resolved", "roots", "summary")

    def __init__(
        self,
        path: Path,
        rel: str,
        summary: dict[str, Any],
        roots: tuple[Path, ...] = (),
        ns: dict[str, dict[str, Any]] | None = None,
        order: list[str] | None = None,
        mutated: frozenset[str] = frozenset(),
    ) -> None:
        self.path = path
        #: rootdir-relative posix path (absolute for files outside the rootdir).
        self.rel = rel
        self.summary = summary
        #: directories searched for absolute imports from this file.
        self.roots = roots
        self.ns: dict[str, dict[str, Any]] = {} if ns is None else ns
        self.order: list[str] = [] if order is None else order
        self.mutated = mutated
        #: name -> :func:`resolve` result: the files behind a run do not change during it,
        #: and the same names (``pytest.mark.parametrize``, ``pytest.fixture``) are resolved
        #: again and again, so each module remembers what its names resolved to.
        self.resolved: dict[str, Any] = {}
        #: name -> :meth:`tach.discovery.collect.Collector.canon` result (same reason).
        self.canons: dict[str, Any] = {}

    def __repr__(self) -> str:
        return f"ModuleCtx({self.rel!r})"

    @classmethod
    def build(
        cls, path: Path, rel: str, summary: dict[str, Any], roots: tuple[Path, ...]
    ) -> ModuleCtx:
        """Index a summary's namespace."""
        ns = dict(summary.get("ns") or ())
        return cls(path, rel, summary, roots, ns, list(ns), frozenset(summary.get("mutated") or ()))


class Ext(NamedTuple):
    """A name outside the project (a library, pytest, or a builtin)."""

    name: str


class Bound(NamedTuple):
    """A project binding: a ``func``/``class``/``value``/``other`` entry of a summary."""

    ctx: ModuleCtx
    binding: dict[str, Any]

    def __hash__(self) -> int:
        return id(self.binding)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Bound) and other.binding is self.binding


class ClassAttr(Bound):
    """A binding found in a class body (``Cls.attr``): enum members and descriptors live here,
    so its value is not what the source of the binding says."""

    __slots__ = ()


class ModRef(NamedTuple):
    """A project module."""

    ctx: ModuleCtx


Ref = Ext | Bound | ModRef | None


class Index:
    """Module name -> project file, and file -> :class:`ModuleCtx` (through a loader)."""

    def __init__(
        self, load: Callable[[Path], ModuleCtx | None], probe: Callable[[Path], None] | None = None
    ) -> None:
        self._load = load
        self._probe = probe or (lambda _p: None)
        # keyed by the identity of the roots tuple (modules of one package share one tuple;
        # hashing a tuple of Paths on every lookup costs more than the lookup), holding the
        # tuple itself so that its id stays unique
        self._files: dict[int, tuple[tuple[Path, ...], dict[str, Path | None]]] = {}
        # the same for what ``import mod`` then ``mod.rest`` refers to (:func:`_resolve`): the
        # same for every module with those roots, and the commonest lookup of all
        # (``pytest.mark.parametrize``, ``pytest.fixture``, ``pytest.param``)
        self._module_refs: dict[int, tuple[tuple[Path, ...], dict[tuple[str, str], Ref]]] = {}

    def release(self) -> None:
        """Forget the loader and the module lookups (see ``core._Run.release``)."""
        self._load = _no_ctx
        self._files.clear()
        self._module_refs.clear()

    def ctx(self, path: Path) -> ModuleCtx | None:
        """The module context of a file (None when unreadable or not Python)."""
        return self._load(path)

    def find_module(self, name: str, roots: tuple[Path, ...]) -> Path | None:
        """The ``.py`` file of module ``name`` in ``roots`` (a package's ``__init__.py``)."""
        entry = self._files.get(id(roots))
        if entry is None:
            entry = self._files[id(roots)] = (roots, {})
        cache = entry[1]
        if name in cache:
            return cache[name]
        found: Path | None = None
        rel = name.replace(".", "/")
        for root in roots:
            for cand in (root / f"{rel}.py", root / rel / "__init__.py"):
                self._probe(cand)
                if cand.is_file():
                    found = cand
                    break
            if found:
                break
        cache[name] = found
        return found

    def relative_module(self, ctx: ModuleCtx, module: str, level: int) -> Path | None:
        """The file of a relative import ``from .{level}module import ...``."""
        base = ctx.path.parent
        for _ in range(level - 1):
            base = base.parent
        if not module:
            cand = base / "__init__.py"
            self._probe(cand)
            return cand if cand.is_file() else None
        rel = module.replace(".", "/")
        for cand in (base / f"{rel}.py", base / rel / "__init__.py"):
            self._probe(cand)
            if cand.is_file():
                return cand
        return None

    def module_ref(self, ctx: ModuleCtx, mod: str, rest: str) -> Ref:
        """What ``mod.rest`` refers to in a module that has run ``import mod`` (its import
        roots alone decide it)."""
        entry = self._module_refs.get(id(ctx.roots))
        if entry is None:
            entry = self._module_refs[id(ctx.roots)] = (ctx.roots, {})
        refs = entry[1]
        key = (mod, rest)
        if key in refs:
            return refs[key]
        ref = refs[key] = _resolve_module_path(self, ctx, mod, rest, 0)
        return ref

    def module_of_import(self, ctx: ModuleCtx, module: str, level: int) -> Path | None:
        """The project file an import statement in ``ctx`` refers to, if any."""
        if level:
            return self.relative_module(ctx, module, level)
        return self.find_module(module, ctx.roots) if module else None


def _no_ctx(path: Path) -> ModuleCtx | None:
    return None


def resolve(index: Index, ctx: ModuleCtx, name: str, depth: int = 0) -> Ref:
    """Follow ``name`` (dotted) as seen from module ``ctx``."""
    if depth:
        return _resolve(index, ctx, name, depth)
    memo = ctx.resolved
    if name in memo:
        return memo[name]  # type: ignore[no-any-return]
    ref = memo[name] = _resolve(index, ctx, name, 0)
    return ref


def _resolve(index: Index, ctx: ModuleCtx, name: str, depth: int) -> Ref:
    if depth > 20:
        return None
    first, _, rest = name.partition(".")
    b = ctx.ns.get(first)
    if b is None:
        if first in _BUILTINS:
            return Ext(f"builtins.{name}")
        return None
    kind = b["k"]
    if kind == "module":
        if depth == 0:
            return index.module_ref(ctx, b["mod"], rest)
        return _resolve_module_path(index, ctx, b["mod"], rest, depth)
    if kind == "import":
        target = index.module_of_import(ctx, b["mod"], b["level"])
        if target is not None:
            tctx = index.ctx(target)
            if tctx is not None:
                if b["name"] in tctx.ns:
                    return resolve(
                        index, tctx, f"{b['name']}.{rest}" if rest else b["name"], depth + 1
                    )
                sub = (
                    index.relative_module(tctx, b["name"], 1)
                    if target.name == "__init__.py"
                    else None
                )
                if sub is not None:
                    sctx = index.ctx(sub)
                    if sctx is not None:
                        return _attr(index, ModRef(sctx), rest, depth)
                return None
        if b["level"]:
            return None
        full = f"{b['mod']}.{b['name']}"
        return Ext(f"{full}.{rest}" if rest else full)
    if kind == "alias":
        return resolve(index, ctx, f"{b['target']}.{rest}" if rest else b["target"], depth + 1)
    if not rest:
        return Bound(ctx, b)
    if kind == "class":
        for n, sub in b["body"]:
            if n == rest.partition(".")[0] and "." not in rest:
                return ClassAttr(ctx, sub)
    return None


def _resolve_module_path(index: Index, ctx: ModuleCtx, mod: str, rest: str, depth: int) -> Ref:
    parts = mod.split(".")
    path = index.find_module(parts[0], ctx.roots)
    if path is None:
        return Ext(f"{mod}.{rest}" if rest else mod)
    full = f"{mod}.{rest}" if rest else mod
    # walk down submodules as long as they exist as files
    pieces = full.split(".")
    for i in range(len(pieces), 0, -1):
        p = index.find_module(".".join(pieces[:i]), ctx.roots)
        if p is not None:
            c = index.ctx(p)
            if c is None:
                return None
            return _attr(index, ModRef(c), ".".join(pieces[i:]), depth)
    return None


def _attr(index: Index, ref: ModRef, rest: str, depth: int) -> Ref:
    if not rest:
        return ref
    return resolve(index, ref.ctx, rest, depth + 1)


def canonical(index: Index, ctx: ModuleCtx, name: str) -> str | None:
    """The external dotted name ``name`` refers to, or None for project objects/unknowns."""
    ref = resolve(index, ctx, name)
    return ref.name if isinstance(ref, Ext) else None
