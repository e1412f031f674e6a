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

#: bump when the summary layout changes (part of every cache key).
SUMMARY_VERSION = 3

_MUTATORS = frozenset({"append", "extend", "insert", "remove", "pop", "clear", "sort",
                       "reverse", "update", "add", "discard", "setdefault", "__setitem__"})

Value = list[Any]


def dotted(node: ast.AST) -> str | None:
    """``a.b.c`` for a Name/Attribute chain, else None."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return None


def _const(value: object) -> Value:
    if value is None:
        return ["N"]
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
    if isinstance(node, ast.Constant):
        return _const(node.value)
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
    if isinstance(node, (ast.Tuple, ast.List)):
        tag = "t" if isinstance(node, ast.Tuple) else "l"
        items = []
        for elt in node.elts:
            if isinstance(elt, ast.Starred):
                return ["?", "starred expression"]
            items.append(encode(elt))
        return [tag, items]
    if isinstance(node, (ast.Dict, ast.Set, ast.DictComp, ast.SetComp)):
        return ["x", "dict" if isinstance(node, (ast.Dict, ast.DictComp)) else "set"]
    if isinstance(node, (ast.Name, ast.Attribute)):
        d = dotted(node)
        return ["r", d] if d else ["?", "attribute of an expression"]
    if isinstance(node, ast.Call):
        d = dotted(node.func)
        if d is None:
            if isinstance(node.func, ast.Call):
                inner = encode(node.func)
                return ["callcall", inner, [encode(a) for a in node.args]]
            return ["?", "call of an expression"]
        args: list[Value] = []
        for a in node.args:
            if isinstance(a, ast.Starred):
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
    if isinstance(node, ast.Lambda):
        return ["lambda"]
    if isinstance(node, ast.JoinedStr):
        return ["?", "f-string"]
    return ["?", f"{type(node).__name__} expression"]


_GENERATORS: set[int] = set()


_YIELDS = (ast.Yield, ast.YieldFrom)


def _stmt_yields(stmt: ast.stmt) -> bool:
    value = getattr(stmt, "value", None)
    if isinstance(value, ast.Await):
        value = value.value
    return isinstance(value, _YIELDS)


def _find_generators(tree: ast.Module) -> tuple[set[int], set[str], list[list[Any]]]:
    """Generator functions (by node id), mutated names and imports, from statements only.

    Walking statements rather than every expression node keeps parsing cheap; a ``yield``
    or a mutating call buried inside a larger expression is therefore not seen (a test
    function that is a generator is an error in pytest anyway).
    """
    gens: set[int] = set()
    mutated: set[str] = set()
    imports: list[list[Any]] = []
    def visit(body: list[ast.stmt], func: ast.AST | None) -> None:
        for stmt in body:
            t = type(stmt)
            if t is ast.FunctionDef or t is ast.AsyncFunctionDef:
                visit(stmt.body, stmt)  # type: ignore[attr-defined]
                continue
            if t is ast.ClassDef:
                visit(stmt.body, None)  # type: ignore[attr-defined]
                continue
            if t is ast.ImportFrom:
                imports.append([stmt.module or "", stmt.level,  # type: ignore[attr-defined]
                                [a.name for a in stmt.names], stmt.lineno])  # type: ignore[attr-defined]
            elif t is ast.Import:
                for a in stmt.names:  # type: ignore[attr-defined]
                    imports.append([a.name, 0, None, stmt.lineno])
            elif t is ast.Expr:
                v = stmt.value  # type: ignore[attr-defined]
                if type(v) is ast.Call:
                    f = v.func
                    if type(f) is ast.Attribute and f.attr in _MUTATORS and \
                            type(f.value) is ast.Name:
                        mutated.add(f.value.id)
            elif t is ast.Assign or t is ast.Delete:
                for tg in stmt.targets:  # type: ignore[attr-defined]
                    if type(tg) is ast.Subscript and type(tg.value) is ast.Name:
                        mutated.add(tg.value.id)
            elif t is ast.AugAssign:
                tg = stmt.target  # type: ignore[attr-defined]
                if type(tg) is ast.Subscript and type(tg.value) is ast.Name:
                    mutated.add(tg.value.id)
            elif t is ast.Global:
                mutated.update(stmt.names)  # type: ignore[attr-defined]
            if func is not None and _stmt_yields(stmt):
                gens.add(id(func))
            for attr in ("body", "orelse", "finalbody"):
                sub = getattr(stmt, attr, None)
                if sub and t is not ast.ClassDef:
                    visit(sub, func)
            for h in getattr(stmt, "handlers", None) or ():
                visit(h.body, func)
            for c in getattr(stmt, "cases", None) or ():
                visit(c.body, func)

    visit(tree.body, None)
    return gens, mutated, imports


def _func(node: ast.FunctionDef | ast.AsyncFunctionDef, cond: int | None) -> dict[str, Any]:
    a = node.args
    positional = [*a.posonlyargs, *a.args]
    ndefaults = len(a.defaults)
    pos_required = positional[: len(positional) - ndefaults] if ndefaults else positional
    names = [p.arg for p in pos_required if p not in a.posonlyargs]
    names += [p.arg for p, d in zip(a.kwonlyargs, a.kw_defaults, strict=True) if d is None]
    # pytest's getfuncargnames drops the first name for methods: record which name that is
    # so the collector can tell whether it had a default (then nothing is dropped).
    return {
        "k": "func",
        "name": node.name,
        "line": node.lineno,
        "async": isinstance(node, ast.AsyncFunctionDef),
        "gen": id(node) in _GENERATORS,
        "args": names,
        "posonly": bool(a.posonlyargs),
        "defaults": [p.arg for p in positional[len(positional) - ndefaults:]] if ndefaults
        else [],
        "decos": [encode(d) for d in node.decorator_list],
        "cond": cond,
    }


class _Namespace:
    """Names bound in a module or class body, in first-binding order."""

    def __init__(self) -> None:
        self.order: list[str] = []
        self.items: dict[str, dict[str, Any]] = {}

    def bind(self, name: str, binding: dict[str, Any]) -> None:
        if name not in self.items:
            self.order.append(name)
        self.items[name] = binding

    def unbind(self, name: str) -> None:
        if name in self.items:
            del self.items[name]
            self.order.remove(name)

    def dump(self) -> list[list[Any]]:
        return [[n, self.items[n]] for n in self.order]


def _targets(target: ast.AST) -> list[str]:
    if isinstance(target, ast.Name):
        return [target.id]
    if isinstance(target, (ast.Tuple, ast.List)):
        out: list[str] = []
        for elt in target.elts:
            out.extend(_targets(elt.value if isinstance(elt, ast.Starred) else elt))
        return out
    return []


def _walk_body(body: list[ast.stmt], ns: _Namespace, cond: int | None, in_class: bool,
               facts: dict[str, Any]) -> None:
    for stmt in body:
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
            ns.bind(stmt.name, _func(stmt, cond))
        elif isinstance(stmt, ast.ClassDef):
            ns.bind(stmt.name, _class(stmt, cond, facts))
        elif isinstance(stmt, ast.ImportFrom):
            for alias in stmt.names:
                if alias.name == "*":
                    if not in_class:
                        facts["star"].append([stmt.module or "", stmt.level, stmt.lineno])
                    continue
                ns.bind(alias.asname or alias.name, {
                    "k": "import", "mod": stmt.module or "", "level": stmt.level,
                    "name": alias.name, "line": stmt.lineno, "cond": cond})
        elif isinstance(stmt, ast.Import):
            for alias in stmt.names:
                if alias.asname:
                    ns.bind(alias.asname, {"k": "module", "mod": alias.name, "cond": cond})
                else:
                    top = alias.name.partition(".")[0]
                    ns.bind(top, {"k": "module", "mod": top, "cond": cond})
        elif isinstance(stmt, (ast.Assign, ast.AnnAssign)):
            value = stmt.value
            if value is None:
                continue
            targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
            enc = encode(value)
            for t in targets:
                names = _targets(t)
                if len(names) == 1 and isinstance(t, ast.Name):
                    if enc[0] == "r":
                        ns.bind(names[0], {"k": "alias", "target": enc[1], "line": stmt.lineno,
                                           "cond": cond})
                    else:
                        ns.bind(names[0], {"k": "value", "v": enc, "line": stmt.lineno,
                                           "cond": cond})
                else:
                    for n in names:
                        ns.bind(n, {"k": "other", "line": stmt.lineno, "cond": cond})
        elif isinstance(stmt, ast.AugAssign):
            for n in _targets(stmt.target):
                facts["mutated"].add(n)
                if n in ns.items:
                    ns.items[n] = {**ns.items[n], "mutated": True}
        elif isinstance(stmt, ast.Delete):
            for t in stmt.targets:
                for n in _targets(t):
                    ns.unbind(n)
        elif isinstance(stmt, ast.If):
            line = cond if cond is not None else stmt.lineno
            if _is_type_checking(stmt.test):
                _walk_body(stmt.body, ns, cond, in_class, facts)
                _walk_body(stmt.orelse, ns, line, in_class, facts)
            else:
                _walk_body(stmt.body, ns, line, in_class, facts)
                _walk_body(stmt.orelse, ns, line, in_class, facts)
        elif isinstance(stmt, ast.Try) or type(stmt).__name__ == "TryStar":
            line = cond if cond is not None else stmt.lineno
            _walk_body(stmt.body, ns, line, in_class, facts)
            for h in stmt.handlers:  # type: ignore[attr-defined]
                _walk_body(h.body, ns, line, in_class, facts)
            _walk_body(stmt.orelse, ns, line, in_class, facts)  # type: ignore[attr-defined]
            _walk_body(stmt.finalbody, ns, line, in_class, facts)  # type: ignore[attr-defined]
        elif isinstance(stmt, (ast.With, ast.AsyncWith, ast.For, ast.AsyncFor, ast.While)):
            line = cond if cond is not None else stmt.lineno
            if isinstance(stmt, (ast.For, ast.AsyncFor)):
                for n in _targets(stmt.target):
                    ns.bind(n, {"k": "other", "line": stmt.lineno, "cond": line})
            if isinstance(stmt, (ast.With, ast.AsyncWith)):
                for item in stmt.items:
                    if item.optional_vars is not None:
                        for n in _targets(item.optional_vars):
                            ns.bind(n, {"k": "other", "line": stmt.lineno, "cond": line})
            _walk_body(stmt.body, ns, line, in_class, facts)
            _walk_body(getattr(stmt, "orelse", []), ns, line, in_class, facts)
        elif isinstance(stmt, ast.Expr) and not in_class:
            pass
        elif isinstance(stmt, ast.Match):
            line = cond if cond is not None else stmt.lineno
            for case in stmt.cases:
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
    gens, mutated, imports = _find_generators(tree)
    _GENERATORS.clear()
    _GENERATORS.update(gens)
    facts: dict[str, Any] = {"star": [], "mutated": mutated}
    ns = _Namespace()
    _walk_body(tree.body, ns, None, False, facts)
    _GENERATORS.clear()

    skip = None
    for call in _module_level_calls(tree.body):
        d = dotted(call.func) or ""
        last = d.rpartition(".")[2]
        if last == "importorskip":
            skip = [call.lineno, f"{d}() at module level"]
            break
        if last == "skip" and any(k.arg == "allow_module_level" for k in call.keywords):
            skip = [call.lineno, f"{d}(allow_module_level=True) at module level"]
            break
    if skip is None:
        for stmt in ast.walk(ast.Module(body=[s for s in tree.body if not isinstance(
                s, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))], type_ignores=[])):
            if isinstance(stmt, ast.Raise) and stmt.exc is not None:
                d = dotted(stmt.exc.func if isinstance(stmt.exc, ast.Call) else stmt.exc) or ""
                if d.endswith("SkipTest") or d.endswith("skip.Exception"):
                    skip = [stmt.lineno, f"raise {d} at module level"]
                    break

    return {
        "v": SUMMARY_VERSION,
        "error": None,
        "ns": ns.dump(),
        "imports": imports,
        "star": facts["star"],
        "mutated": sorted(facts["mutated"]),
        "skip": skip,
    }
