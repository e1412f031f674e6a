"""Source -> module summary, with ``ast`` only; never imports the code it reads.

A *summary* is a JSON-able description of what one ``.py`` file binds at module level (and in
each class body), in the order the names first appear in the module's ``__dict__``, which is
the order pytest collects them in. It holds no configuration: which names are tests depends on
``python_functions``/``python_classes`` and on other files (base classes, imported functions),
and is decided later by :mod:`tach.discovery.collect`. So a summary can be cached per file,
keyed only by the file's content.

Expressions are encoded as small tagged lists (see :func:`encode`):

=============================  =========================================================
``["s", str]``                 str literal             ``["b", hex]``   bytes literal
``["i", digits]``              int literal             ``["f", repr]``  float literal
``["c", str]``                 complex literal         ``["B", bool]``  bool literal
``["N"]``                      None                    ``["x", why]``   literal without a name
``["t", [..]]``/``["l", [..]]``  tuple / list            ``["r", "a.b"]`` a dotted name
``["call", "a.b", [..], {..}]``  call of a dotted name   ``["add", a, b]`` ``a + b``
``["lambda"]``                 a lambda                ``["?", why]``   anything else
=============================  =========================================================
"""

from __future__ import annotations

import ast
from typing import Any

from . import importtime

#: bump when the summary layout changes (part of every cache key).
SUMMARY_VERSION = 7

_MUTATORS = frozenset(
    {
        "append",
        "extend",
        "insert",
        "remove",
        "pop",
        "clear",
        "sort",
        "reverse",
        "update",
        "add",
        "discard",
        "setdefault",
        "__setitem__",
    }
)

Value = list[Any]

# Node classes bound once: the walkers below dispatch on ``type(node) is X``, which is several
# times cheaper than ``isinstance`` chains on the tens of thousands of nodes of a large suite
# (the node classes the parser makes have no subclasses).
_Attribute = ast.Attribute
_Name = ast.Name
_Constant = ast.Constant
_Call = ast.Call
_Tuple = ast.Tuple
_List = ast.List
_Starred = ast.Starred
_FunctionDef = ast.FunctionDef
_AsyncFunctionDef = ast.AsyncFunctionDef
_ClassDef = ast.ClassDef
_Import = ast.Import
_ImportFrom = ast.ImportFrom
_Assign = ast.Assign
_AnnAssign = ast.AnnAssign
_AugAssign = ast.AugAssign
_Delete = ast.Delete
_Expr = ast.Expr
_If = ast.If
_Try = ast.Try
_TryStar: type | None = getattr(ast, "TryStar", None)
_With = ast.With
_AsyncWith = ast.AsyncWith
_For = ast.For
_AsyncFor = ast.AsyncFor
_While = ast.While
_Match = ast.Match
_Global = ast.Global
_Subscript = ast.Subscript
_Await = ast.Await
_Yield = ast.Yield
_YieldFrom = ast.YieldFrom
_Raise = ast.Raise
_Lambda = ast.Lambda
_FUNCS = (ast.FunctionDef, ast.AsyncFunctionDef)
_DEFS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
#: statements with nested statement lists (``body``/``orelse``/``finalbody``/handlers/cases).
_COMPOUND = frozenset(
    t
    for t in (
        ast.If,
        ast.For,
        ast.AsyncFor,
        ast.While,
        ast.With,
        ast.AsyncWith,
        ast.Try,
        _TryStar,
        ast.Match,
    )
    if t is not None
)
_LOOPS_AND_WITH = frozenset({ast.With, ast.AsyncWith, ast.For, ast.AsyncFor, ast.While})
_TRIES = frozenset(t for t in (ast.Try, _TryStar) if t is not None)


def dotted(node: ast.AST) -> str | None:
    """``a.b.c`` for a Name/Attribute chain, else None."""
    t = type(node)
    if t is _Name:
        return node.id  # type: ignore[attr-defined, no-any-return]
    parts: list[str] = []
    while t is _Attribute:
        parts.append(node.attr)  # type: ignore[attr-defined]
        node = node.value  # type: ignore[attr-defined]
        t = type(node)
    if t is _Name:
        parts.append(node.id)  # type: ignore[attr-defined]
        parts.reverse()
        return ".".join(parts)
    return None


def _const(value: object) -> Value:
    if value is None:
        return ["N"]
    t = type(value)
    if t is str:
        return ["s", value]
    if t is bool:
        return ["B", value]
    if t is int:
        return ["i", str(value)]
    if isinstance(value, bool):
        return ["B", value]
    if isinstance(value, str):
        return ["s", value]
    if isinstance(value, bytes):
        return ["b", value.hex()]
    if isinstance(value, int):
        return ["i", str(value)]
    if isinstance(value, float):
        return ["f", repr(value)]
    if isinstance(value, complex):
        return ["c", str(value)]
    if value is Ellipsis:
        return ["x", "Ellipsis"]
    return ["?", type(value).__name__]


def encode(node: ast.AST | None) -> Value:
    """Encode an expression as a tagged list (see the module docstring)."""
    if node is None:
        return ["N"]
    t = type(node)
    if t is _Constant:
        value = node.value  # type: ignore[attr-defined]
        return ["s", value] if type(value) is str else _const(value)
    if t is _Name:
        return ["r", node.id]  # type: ignore[attr-defined]
    if t is _Attribute:
        d = dotted(node)
        return ["r", d] if d else ["?", "attribute of an expression"]
    if t is _Call:
        return _encode_call(node)  # type: ignore[arg-type]
    if t is _Tuple or t is _List:
        items = []
        for elt in node.elts:  # type: ignore[attr-defined]
            te = type(elt)
            if te is _Constant:  # most elements: no call for them
                value = elt.value
                items.append(["s", value] if type(value) is str else _const(value))
            elif te is _Starred:
                return ["?", "starred expression"]
            else:
                items.append(encode(elt))
        return ["t" if t is _Tuple else "l", items]
    if isinstance(node, ast.UnaryOp) and isinstance(node.operand, ast.Constant):
        v = node.operand.value
        if isinstance(v, (int, float, complex)) and not isinstance(v, bool):
            if isinstance(node.op, ast.USub):
                return _const(-v)
            if isinstance(node.op, ast.UAdd):
                return _const(+v)
        if isinstance(node.op, ast.Not):
            return _const(not v)
        return ["?", "unary operation"]
    if isinstance(node, (ast.Dict, ast.Set, ast.DictComp, ast.SetComp)):
        return ["x", "dict" if isinstance(node, (ast.Dict, ast.DictComp)) else "set"]
    if isinstance(node, ast.BinOp):
        if isinstance(node.op, ast.Add):
            left, right = encode(node.left), encode(node.right)
            if left[0] in "ifc" and right[0] in "ifc":
                try:
                    return _const(ast.literal_eval(node))
                except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
                    return ["?", "arithmetic"]
            return ["add", left, right]
        if isinstance(node.op, ast.Sub):
            try:
                return _const(ast.literal_eval(node))
            except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
                return ["?", "arithmetic"]
        return ["?", f"{type(node.op).__name__} expression"]
    if t is _Lambda:
        return ["lambda"]
    if isinstance(node, ast.JoinedStr):
        return ["?", "f-string"]
    return ["?", f"{t.__name__} expression"]


def _encode_call(node: ast.Call) -> Value:
    d = dotted(node.func)
    if d is None:
        if type(node.func) is _Call:
            inner = encode(node.func)
            return ["callcall", inner, [encode(a) for a in node.args]]
        return ["?", "call of an expression"]
    args: list[Value] = []
    for a in node.args:
        if type(a) is _Starred:
            args.append(["?", "starred argument"])
        else:
            args.append(encode(a))
    kw: dict[str, Value] = {}
    for k in node.keywords:
        if k.arg is None:
            kw["**"] = ["?", "**kwargs"]
        else:
            kw[k.arg] = encode(k.value)
    return ["call", d, args, kw]


def _scan(
    body: list[ast.stmt],
    func: ast.AST | None,
    gens: set[int],
    mutated: set[str],
    imports: list[list[Any]],
) -> None:
    """Generator functions (by node id), mutated names and imports, from statements only.

    Walking statements rather than every expression node keeps parsing cheap; a ``yield``
    or a mutating call buried inside a larger expression is therefore not seen (a test
    function that is a generator is an error in pytest anyway). A plain recursive function
    (not a closure) so that no reference cycle is left for the garbage collector.
    """
    for stmt in body:
        t = type(stmt)
        if t is _FunctionDef or t is _AsyncFunctionDef:
            _scan(stmt.body, stmt, gens, mutated, imports)  # type: ignore[attr-defined]
            continue
        if t is _ClassDef:
            _scan(stmt.body, None, gens, mutated, imports)  # type: ignore[attr-defined]
            continue
        if t is _Expr:
            v = stmt.value  # type: ignore[attr-defined]
            if type(v) is _Call:
                f = v.func
                if type(f) is _Attribute and f.attr in _MUTATORS and type(f.value) is _Name:
                    mutated.add(f.value.id)
        elif t is _Assign or t is _Delete:
            for tg in stmt.targets:  # type: ignore[attr-defined]
                if type(tg) is _Subscript and type(tg.value) is _Name:
                    mutated.add(tg.value.id)
        elif t is _ImportFrom:
            imports.append(
                [
                    stmt.module or "",
                    stmt.level,  # type: ignore[attr-defined]
                    [a.name for a in stmt.names],
                    stmt.lineno,
                ]
            )  # type: ignore[attr-defined]
        elif t is _Import:
            for a in stmt.names:  # type: ignore[attr-defined]
                imports.append([a.name, 0, None, stmt.lineno])
        elif t is _AugAssign:
            tg = stmt.target  # type: ignore[attr-defined]
            if type(tg) is _Subscript and type(tg.value) is _Name:
                mutated.add(tg.value.id)
        elif t is _Global:
            mutated.update(stmt.names)  # type: ignore[attr-defined]
        if func is not None:
            value = getattr(stmt, "value", None)
            if type(value) is _Await:
                value = value.value  # type: ignore[union-attr]
            if type(value) is _Yield or type(value) is _YieldFrom:
                gens.add(id(func))
        if t in _COMPOUND:
            for attr in ("body", "orelse", "finalbody"):
                sub = getattr(stmt, attr, None)
                if sub:
                    _scan(sub, func, gens, mutated, imports)
            for h in getattr(stmt, "handlers", None) or ():
                _scan(h.body, func, gens, mutated, imports)
            for c in getattr(stmt, "cases", None) or ():
                _scan(c.body, func, gens, mutated, imports)


def _func(
    node: ast.FunctionDef | ast.AsyncFunctionDef, cond: int | None, gens: set[int]
) -> dict[str, Any]:
    a = node.args
    posonly = a.posonlyargs
    positional = [*posonly, *a.args] if posonly else a.args
    ndefaults = len(a.defaults)
    npos = len(positional)
    pos_required = positional[: npos - ndefaults] if ndefaults else positional
    # the positional-only names are the first ones: pytest does not pass fixtures to them
    names = [p.arg for p in (pos_required[len(posonly) :] if posonly else pos_required)]
    if a.kwonlyargs:
        names += [p.arg for p, d in zip(a.kwonlyargs, a.kw_defaults, strict=True) if d is None]
    # pytest's getfuncargnames drops the first name for methods: record which name that is
    # so the collector can tell whether it had a default (then nothing is dropped).
    return {
        "k": "func",
        "name": node.name,
        "line": node.lineno,
        "async": type(node) is _AsyncFunctionDef,
        "gen": id(node) in gens,
        "args": names,
        "posonly": bool(posonly),
        "defaults": [p.arg for p in positional[npos - ndefaults :]] if ndefaults else [],
        "decos": [encode(d) for d in node.decorator_list],
        "cond": cond,
    }


class _Namespace:
    """Names bound in a module or class body, in first-binding order."""

    __slots__ = ("items",)

    def __init__(self) -> None:
        # dicts keep insertion order: rebinding a name keeps its first position
        self.items: dict[str, dict[str, Any]] = {}

    def bind(self, name: str, binding: dict[str, Any]) -> None:
        self.items[name] = binding

    def unbind(self, name: str) -> None:
        self.items.pop(name, None)

    def dump(self) -> list[list[Any]]:
        return [[n, b] for n, b in self.items.items()]


def _targets(target: ast.AST) -> list[str]:
    t = type(target)
    if t is _Name:
        return [target.id]  # type: ignore[attr-defined]
    if t is _Tuple or t is _List:
        out: list[str] = []
        for elt in target.elts:  # type: ignore[attr-defined]
            out.extend(_targets(elt.value if type(elt) is _Starred else elt))
        return out
    return []


def _walk_body(
    body: list[ast.stmt], ns: _Namespace, cond: int | None, in_class: bool, facts: dict[str, Any]
) -> None:
    items = ns.items
    for stmt in body:
        t = type(stmt)
        if t is _FunctionDef or t is _AsyncFunctionDef:
            items[stmt.name] = _func(stmt, cond, facts["gens"])  # type: ignore[attr-defined, arg-type]
        elif t is _Assign or t is _AnnAssign:
            value = stmt.value  # type: ignore[attr-defined]
            if value is None:
                continue
            targets = stmt.targets if t is _Assign else [stmt.target]  # type: ignore[attr-defined]
            enc = encode(value)
            for tg in targets:
                if type(tg) is _Name:
                    if enc[0] == "r":
                        items[tg.id] = {
                            "k": "alias",
                            "target": enc[1],
                            "line": stmt.lineno,
                            "cond": cond,
                        }
                    else:
                        items[tg.id] = {"k": "value", "v": enc, "line": stmt.lineno, "cond": cond}
                elif type(tg) is _Attribute and type(tg.value) is _Name and not in_class:
                    # ``test_x.__test__ = False``, ``test_x.pytestmark = [...]``: what pytest
                    # makes of the object depends on its attributes
                    facts["attrset"].setdefault(tg.value.id, [stmt.lineno, tg.attr])
                else:
                    for n in _targets(tg):
                        items[n] = {"k": "other", "line": stmt.lineno, "cond": cond}
        elif t is _ClassDef:
            items[stmt.name] = _class(stmt, cond, facts)  # type: ignore[attr-defined, arg-type]
        elif t is _ImportFrom:
            for alias in stmt.names:  # type: ignore[attr-defined]
                if alias.name == "*":
                    if not in_class:
                        facts["star"].append(
                            [
                                stmt.module or "",
                                stmt.level,  # type: ignore[attr-defined]
                                stmt.lineno,
                            ]
                        )
                    continue
                items[alias.asname or alias.name] = {
                    "k": "import",
                    "mod": stmt.module or "",  # type: ignore[attr-defined]
                    "level": stmt.level,  # type: ignore[attr-defined]
                    "name": alias.name,
                    "line": stmt.lineno,
                    "cond": cond,
                }
        elif t is _Import:
            for alias in stmt.names:  # type: ignore[attr-defined]
                if alias.asname:
                    items[alias.asname] = {"k": "module", "mod": alias.name, "cond": cond}
                else:
                    top = alias.name.partition(".")[0]
                    items[top] = {"k": "module", "mod": top, "cond": cond}
        elif t is _Expr:
            pass
        elif t is _AugAssign:
            for n in _targets(stmt.target):  # type: ignore[attr-defined]
                facts["mutated"].add(n)
                if n in items:
                    items[n] = {**items[n], "mutated": True}
        elif t is _Delete:
            for tg in stmt.targets:  # type: ignore[attr-defined]
                for n in _targets(tg):
                    ns.unbind(n)
        elif t is _If:
            line = cond if cond is not None else stmt.lineno
            if _is_type_checking(stmt.test):  # type: ignore[attr-defined]
                _walk_body(stmt.body, ns, cond, in_class, facts)  # type: ignore[attr-defined]
                _walk_body(stmt.orelse, ns, line, in_class, facts)  # type: ignore[attr-defined]
            else:
                _walk_body(stmt.body, ns, line, in_class, facts)  # type: ignore[attr-defined]
                _walk_body(stmt.orelse, ns, line, in_class, facts)  # type: ignore[attr-defined]
        elif t in _TRIES:
            line = cond if cond is not None else stmt.lineno
            _walk_body(stmt.body, ns, line, in_class, facts)  # type: ignore[attr-defined]
            for h in stmt.handlers:  # type: ignore[attr-defined]
                _walk_body(h.body, ns, line, in_class, facts)
            _walk_body(stmt.orelse, ns, line, in_class, facts)  # type: ignore[attr-defined]
            _walk_body(stmt.finalbody, ns, line, in_class, facts)  # type: ignore[attr-defined]
        elif t in _LOOPS_AND_WITH:
            line = cond if cond is not None else stmt.lineno
            if t is _For or t is _AsyncFor:
                for n in _targets(stmt.target):  # type: ignore[attr-defined]
                    items[n] = {"k": "other", "line": stmt.lineno, "cond": line}
            if t is _With or t is _AsyncWith:
                for item in stmt.items:  # type: ignore[attr-defined]
                    if item.optional_vars is not None:
                        for n in _targets(item.optional_vars):
                            items[n] = {"k": "other", "line": stmt.lineno, "cond": line}
            _walk_body(stmt.body, ns, line, in_class, facts)  # type: ignore[attr-defined]
            _walk_body(getattr(stmt, "orelse", []), ns, line, in_class, facts)
        elif t is _Match:
            line = cond if cond is not None else stmt.lineno
            for case in stmt.cases:  # type: ignore[attr-defined]
                _walk_body(case.body, ns, line, in_class, facts)


def _is_type_checking(test: ast.expr) -> bool:
    d = dotted(test)
    return d in ("TYPE_CHECKING", "typing.TYPE_CHECKING")


def _class(node: ast.ClassDef, cond: int | None, facts: dict[str, Any]) -> dict[str, Any]:
    ns = _Namespace()
    _walk_body(node.body, ns, None, True, facts)
    bases = [encode(b) for b in node.bases]
    kw = {k.arg: encode(k.value) for k in node.keywords if k.arg}
    return {
        "k": "class",
        "name": node.name,
        "line": node.lineno,
        "bases": bases,
        "kw": kw,
        "decos": [encode(d) for d in node.decorator_list],
        "body": ns.dump(),
        "cond": cond,
    }


def _module_level_calls(body: list[ast.stmt]) -> list[ast.Call]:
    out: list[ast.Call] = []
    stack: list[ast.AST] = list(body)
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
            continue
        if isinstance(node, ast.Call):
            out.append(node)
        stack.extend(ast.iter_child_nodes(node))
    return out


def _may_skip(source: bytes | str) -> bool:
    """Whether the source may hold a module-level skip at all (a cheap pre-check).

    Every form :func:`_module_skip` recognises names ``importorskip``, ``skip`` or
    ``SkipTest`` in the source text; identifiers with non-ASCII characters are normalised by
    the parser, so non-ASCII sources always take the full check.
    """
    if isinstance(source, str):
        return not source.isascii() or "skip" in source or "Skip" in source
    return not source.isascii() or b"skip" in source or b"Skip" in source


def _module_skip(tree: ast.Module) -> list[Any] | None:
    for call in _module_level_calls(tree.body):
        d = dotted(call.func) or ""
        last = d.rpartition(".")[2]
        if last == "importorskip":
            return [call.lineno, f"{d}() at module level"]
        if last == "skip" and any(k.arg == "allow_module_level" for k in call.keywords):
            return [call.lineno, f"{d}(allow_module_level=True) at module level"]
    for stmt in ast.walk(
        ast.Module(body=[s for s in tree.body if not isinstance(s, _DEFS)], type_ignores=[])
    ):
        if isinstance(stmt, _Raise) and stmt.exc is not None:
            d = dotted(stmt.exc.func if isinstance(stmt.exc, ast.Call) else stmt.exc) or ""
            if d.endswith("SkipTest") or d.endswith("skip.Exception"):
                return [stmt.lineno, f"raise {d} at module level"]
    return None


def summarize(source: bytes | str, filename: str = "<unknown>") -> dict[str, Any]:
    """Parse ``source`` and return its summary (see the module docstring).

    A syntax error does not raise: the summary then holds ``"error": [line, message]``.
    """
    try:
        tree = ast.parse(source, filename=filename)
    except SyntaxError as exc:
        return {"v": SUMMARY_VERSION, "error": [exc.lineno or 1, f"SyntaxError: {exc.msg}"]}
    except (ValueError, UnicodeDecodeError) as exc:
        return {"v": SUMMARY_VERSION, "error": [1, f"{type(exc).__name__}: {exc}"]}
    gens: set[int] = set()
    mutated: set[str] = set()
    imports: list[list[Any]] = []
    _scan(tree.body, None, gens, mutated, imports)
    facts: dict[str, Any] = {"star": [], "mutated": mutated, "gens": gens, "attrset": {}}
    ns = _Namespace()
    _walk_body(tree.body, ns, None, False, facts)
    return {
        "v": SUMMARY_VERSION,
        "error": None,
        "ns": ns.dump(),
        "imports": imports,
        "star": facts["star"],
        "mutated": sorted(mutated),
        "attrset": facts["attrset"],
        "skip": _module_skip(tree) if _may_skip(source) else None,
        "doctests": doctests(tree) if _may_have_examples(source) else None,
        "toplevel_imports": importtime.toplevel_imports(tree),
        "reads": importtime.reads(tree) if importtime.may_read_files(source) else [],
    }


# -- doctests ---------------------------------------------------------------------------------
#
# Under ``--doctest-modules`` pytest imports each module and lets ``doctest.DocTestFinder``
# find the docstrings that hold examples: the module's, then those of the functions and
# classes its ``__dict__`` binds that were defined in it, recursively through classes
# (methods, static and class methods, properties, nested classes), but not into functions.
# Each becomes an item named by its dotted path (``mod.Class.method``), sorted by name. What
# the source alone settles is written down here; anything else (a decorator that may replace
# the object, a name bound twice, a definition under ``if``/``try``, ``__test__``, an
# assignment to ``__doc__``, a docstring the doctest parser rejects) is the reason the
# module's doctests are dynamic.

#: decorators that return the object they are given (by their spelling in the source).
_SAME_OBJECT = frozenset(
    {
        "abc.abstractmethod",
        "abstractmethod",
        "functools.total_ordering",
        "total_ordering",
        "dataclass",
        "dataclasses.dataclass",
        "typing.final",
        "final",
        "typing.runtime_checkable",
        "runtime_checkable",
        "unittest.skip",
        "unittest.expectedFailure",
    }
)
#: decorators whose result the finder looks through in a class body.
_IN_CLASS = frozenset(
    {"staticmethod", "classmethod", "property", "functools.cached_property", "cached_property"}
)
_EXAMPLE_LINE = None  # compiled on first use (most files have no examples)


def _may_have_examples(source: bytes | str) -> bool:
    return (b">>>" if isinstance(source, bytes) else ">>>") in source  # type: ignore[operator]


def _docstring(node: ast.AST) -> str | None:
    body = getattr(node, "body", None)
    if body and type(body[0]) is _Expr:
        value = body[0].value  # type: ignore[attr-defined]
        if type(value) is _Constant and isinstance(value.value, str):
            return value.value  # type: ignore[no-any-return]
    return None


def looks_like_doctest(doc: str | None) -> bool:
    """Whether ``doc`` has a line starting with the ``>>>`` prompt: the doctest parser finds
    an example there, or rejects the text (see :func:`has_examples`)."""
    global _EXAMPLE_LINE
    if not doc or ">>>" not in doc:
        return False
    if _EXAMPLE_LINE is None:
        import re

        _EXAMPLE_LINE = re.compile(r"^[ \t]*>>>", re.M)  # type: ignore[assignment]
    return _EXAMPLE_LINE.search(doc) is not None  # type: ignore[attr-defined]


def has_examples(doc: str | None) -> bool | None:
    """Whether ``doc`` holds doctest examples (None: the doctest parser rejects it, so pytest
    reports a collection error for its module)."""
    if not looks_like_doctest(doc):
        return False
    # the standard library's parser (its import costs tens of milliseconds): only for texts
    # that look like doctests, and only when doctests are collected
    import doctest

    try:
        return bool(doctest.DocTestParser().get_examples(doc))
    except ValueError:
        return None


def _mentions_examples(node: ast.AST) -> bool:
    """Whether the docstrings the finder would look at under ``node`` mention ``>>>``."""
    doc = _docstring(node)
    if doc and ">>>" in doc:
        return True
    if type(node) is _ClassDef:
        return any(
            _mentions_examples(sub)
            for stmt in node.body  # type: ignore[attr-defined]
            for sub in ast.walk(stmt)
            if isinstance(sub, _DEFS)
        )
    return False


def _binds(stmt: ast.stmt) -> list[str]:
    """The names a module- or class-level statement binds (its nested blocks' too)."""
    out: list[str] = []
    for node in ast.walk(stmt) if not isinstance(stmt, _DEFS) else [stmt]:
        t = type(node)
        if t is _FunctionDef or t is _AsyncFunctionDef or t is _ClassDef:
            out.append(node.name)  # type: ignore[attr-defined]
            if node is not stmt:
                continue
        elif t is _Assign:
            for tg in node.targets:  # type: ignore[attr-defined]
                out.extend(_targets(tg))
        elif t is _AnnAssign or t is _AugAssign:
            out.extend(_targets(node.target))  # type: ignore[attr-defined]
        elif t is _Import or t is _ImportFrom:
            out.extend(
                (a.asname or a.name).partition(".")[0]
                for a in node.names  # type: ignore[attr-defined]
            )
    return out


def doctests(tree: ast.Module) -> dict[str, Any]:
    """``{"names": [[path, line, docstring], ...], "why": reason or None}``: the dotted paths
    (relative to the module; "" for the module itself) of the objects whose docstrings look
    like doctests, sorted, with the lines of their definitions and the docstrings, or why the
    source does not settle them."""
    names: list[list[Any]] = []
    why: list[str] = []

    def add(qual: str, node: ast.AST) -> None:
        doc = _docstring(node)
        if looks_like_doctest(doc):
            # checked with the doctest parser when doctests are collected (``has_examples``)
            names.append([qual, getattr(node, "lineno", 1), doc])

    def namespace(body: list[ast.stmt], prefix: str, in_class: bool) -> None:
        defined: dict[str, bool] = {}  # name -> whether any of its definitions has examples
        bound: set[str] = set()  # the names bound by the statements before this one
        last: list[str] = []
        for stmt in body:
            bound.update(last)
            last = _binds(stmt)
            t = type(stmt)
            if t is _FunctionDef or t is _AsyncFunctionDef or t is _ClassDef:
                name = stmt.name  # type: ignore[attr-defined]
                mentions = _mentions_examples(stmt)
                if name in defined and (mentions or defined[name]):
                    why.append(f"{prefix}{name} is defined twice (line {stmt.lineno})")
                defined[name] = defined.get(name, False) or mentions
                if not mentions:
                    continue
                for d in stmt.decorator_list:  # type: ignore[attr-defined]
                    spelled = dotted(d.func if type(d) is _Call else d) or ""
                    if not (
                        spelled in _SAME_OBJECT
                        or (in_class and spelled in _IN_CLASS)
                        or spelled.startswith(("pytest.mark.", "mark."))
                    ):
                        why.append(
                            f"{prefix}{name} is decorated by {spelled or 'an expression'} "
                            f"(line {d.lineno})"
                        )
                add(prefix + name, stmt)
                if t is _ClassDef:
                    namespace(stmt.body, f"{prefix}{name}.", True)  # type: ignore[attr-defined]
            elif t is _Assign or t is _AnnAssign or t is _AugAssign:
                targets = stmt.targets if t is _Assign else [stmt.target]  # type: ignore[attr-defined]
                value = stmt.value  # type: ignore[attr-defined]
                for tg in targets:
                    for n in _targets(tg):
                        if n in ("__doc__", "__test__") or defined.get(n):
                            why.append(f"{prefix}{n} is assigned (line {stmt.lineno})")
                if type(value) is _Name and defined.get(value.id):
                    # the finder meets each object once, under the name that comes first in
                    # ``__dict__`` order: an alias bound for the first time after the
                    # definition comes after it
                    for tg in targets:
                        for n in _targets(tg):
                            if n in bound:
                                why.append(
                                    f"{prefix}{value.id} is bound to {n}, a name bound before "
                                    f"it (line {stmt.lineno})"
                                )
            elif t is not _Expr and any(
                isinstance(sub, _DEFS) and _mentions_examples(sub) for sub in ast.walk(stmt)
            ):
                why.append(f"a docstring with examples under the statement of line {stmt.lineno}")

    add("", tree)
    namespace(tree.body, "", False)
    return {"names": sorted(names), "why": why[0] if why else None}
