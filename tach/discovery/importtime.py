"""What a module needs at import time that may be missing here: read from its source alone.

A test module that fails to import is a collection error under pytest: none of its tests are
collected, and a static listing that names them lists ids pytest never has. Two causes can be
read from the source, and both are common where a project's tests are run from its source
distribution, which often leaves out helper scripts and test data:

* an ``import`` at module level (not inside ``try``, ``if`` or a function) of a top-level
  module that is nowhere on the import path (``imports``);
* a file read while the module executes (in a decorator such as ``parametrize``, a default
  argument, a module or class attribute) through ``open(PATH)`` or
  ``pathlib.Path(PATH).read_text()``/``read_bytes()``/``open()``, where PATH is a literal,
  relative to the working directory, or built from ``__file__`` (``Path(__file__).parent /
  "data.json"``, ``os.path.join(os.path.dirname(__file__), "data.json")``) (``reads``).

The summary records both (``[module, line]`` and ``[base, path, line]``, base ``"cwd"`` or
``"file"``); whether they are missing is decided at discovery time
(:mod:`tach.discovery.core`), since that depends on the machine, not on the source.
"""

from __future__ import annotations

import ast
import os
from typing import Any

#: Methods of ``pathlib.Path`` that read the file (``open`` only without a writing mode).
_READERS = frozenset({"read_text", "read_bytes", "open"})
_PATH_TYPES = frozenset({"Path", "PosixPath", "PurePath", "PurePosixPath"})
_WRITING = frozenset("wax+")


def may_read_files(source: bytes | str) -> bool:
    """Whether the source can hold a read :func:`reads` recognises (a cheap pre-check)."""
    needles = ("open(", "read_text", "read_bytes")
    if isinstance(source, bytes):
        return any(n.encode() in source for n in needles)
    return any(n in source for n in needles)


def toplevel_imports(tree: ast.Module) -> list[list[Any]]:
    """``[module, line]`` of each absolute import run unconditionally at module level."""
    out: list[list[Any]] = []
    for stmt in tree.body:
        if isinstance(stmt, ast.Import):
            out.extend([alias.name, stmt.lineno] for alias in stmt.names)
        elif isinstance(stmt, ast.ImportFrom) and not stmt.level and stmt.module:
            out.append([stmt.module, stmt.lineno])
    return out


def reads(tree: ast.Module) -> list[list[Any]]:
    """``[base, path, line]`` of each file read by code that runs when the module is imported
    unconditionally (see the module docstring)."""
    out: list[list[Any]] = []
    for expr in _import_time_expressions(tree.body):
        _find_reads(expr, out)
    return out


def _import_time_expressions(body: list[ast.stmt]) -> list[ast.AST]:
    """The expressions of ``body`` evaluated when it runs, straight-line only: a function's
    decorators and defaults but not its body; a class's bases, decorators and body; no branch
    of an ``if``, ``try``, loop or ``with`` (it may not run, or its error may be handled)."""
    out: list[ast.AST] = []
    for stmt in body:
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
            out += stmt.decorator_list
            out += [d for d in (*stmt.args.defaults, *stmt.args.kw_defaults) if d is not None]
        elif isinstance(stmt, ast.ClassDef):
            out += stmt.decorator_list + stmt.bases + [k.value for k in stmt.keywords]
            out += _import_time_expressions(stmt.body)
        elif (
            isinstance(stmt, (ast.Assign, ast.AnnAssign, ast.AugAssign, ast.Expr))
            and stmt.value is not None
        ):
            out.append(stmt.value)
    return out


def _find_reads(node: ast.AST, out: list[list[Any]]) -> None:
    if isinstance(node, (ast.Lambda, ast.GeneratorExp)):
        return  # runs later, if ever
    if isinstance(node, ast.Call):
        found = _read_of(node)
        if found is not None:
            out.append([*found, node.lineno])
    for child in ast.iter_child_nodes(node):
        _find_reads(child, out)


def _read_of(call: ast.Call) -> tuple[str, str] | None:
    """(base, path) when ``call`` reads a file whose path the source settles."""
    func = call.func
    if isinstance(func, ast.Name) and func.id == "open" and call.args:
        if _writes(call, 1):
            return None
        return _path_of(call.args[0], need_path_type=False)
    if isinstance(func, ast.Attribute) and func.attr in _READERS:
        if func.attr == "open" and _writes(call, 0):
            return None
        return _path_of(func.value, need_path_type=True)
    return None


def _writes(call: ast.Call, position: int) -> bool:
    """Whether the mode of an ``open`` call (positional at ``position`` or ``mode=``) may
    write, or cannot be read."""
    mode: ast.AST | None = call.args[position] if len(call.args) > position else None
    for keyword in call.keywords:
        if keyword.arg == "mode":
            mode = keyword.value
        elif keyword.arg is None:
            return True  # **kwargs: the mode is not known
    if mode is None:
        return False
    if isinstance(mode, ast.Constant) and isinstance(mode.value, str):
        return bool(_WRITING & set(mode.value))
    return True


def evaluate_path(node: ast.AST) -> tuple[str, str] | None:
    """(base, path) of a path expression the source settles (see :func:`_path_of`), pathlib
    or not."""
    return _path_of(node, need_path_type=False)


def _path_of(node: ast.AST, need_path_type: bool) -> tuple[str, str] | None:
    """(base, path) of a path expression, if the source settles it: base ``"cwd"`` (relative
    to the working directory, or absolute) or ``"file"`` (relative to the module's
    directory). With ``need_path_type`` only a ``pathlib`` path qualifies (a method named
    ``open`` on anything else is not a file read)."""
    got = _evaluate(node)
    if got is None:
        return None
    base, path, is_path_type = got
    if base == "module_file" or (need_path_type and not is_path_type):
        return None
    return base, path


def _evaluate(node: ast.AST) -> tuple[str, str, bool] | None:
    """(base, path, is a pathlib path) of ``node``; base ``"module_file"`` for ``__file__``."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return ("cwd", node.value, False) if node.value else None
    if isinstance(node, ast.Name) and node.id == "__file__":
        return "module_file", "", False
    if isinstance(node, ast.Call):
        name = _dotted(node.func)
        if name is None or node.keywords:
            return None
        last = name.rpartition(".")[2]
        if last in _PATH_TYPES and name in (last, f"pathlib.{last}") and node.args:
            return _join(node.args, is_path_type=True)
        if name == "os.path.join" and node.args:
            return _join(node.args, is_path_type=False)
        if name in ("os.path.dirname",) and len(node.args) == 1:
            return _parent(_evaluate(node.args[0]))
        if name in ("os.path.abspath", "os.path.realpath") and len(node.args) == 1:
            return _evaluate(node.args[0])
        if (
            isinstance(node.func, ast.Attribute)
            and not node.args
            and node.func.attr in ("resolve", "absolute")
        ):
            return _evaluate(node.func.value)
        return None
    if isinstance(node, ast.Attribute) and node.attr == "parent":
        inner = _evaluate(node.value)
        return _parent(inner) if inner is not None and inner[2] else None
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
        left, right = _evaluate(node.left), _evaluate(node.right)
        if left is None or right is None or not left[2] or right[0] != "cwd":
            return None
        return _joined(left, right[1])
    return None


def _join(args: list[ast.expr], is_path_type: bool) -> tuple[str, str, bool] | None:
    first = _evaluate(args[0])
    if first is None:
        return None
    got: tuple[str, str, bool] | None = (first[0], first[1], is_path_type)
    for arg in args[1:]:
        part = _evaluate(arg)
        if got is None or part is None or part[0] != "cwd":
            return None
        got = _joined(got, part[1])
    return got


def _joined(left: tuple[str, str, bool], right: str) -> tuple[str, str, bool] | None:
    base, path, is_path_type = left
    if right.startswith("/"):
        return "cwd", right, is_path_type
    if base == "module_file":
        return None  # a path below a file is no file
    return base, os.path.join(path, right) if path else right, is_path_type


def _parent(got: tuple[str, str, bool] | None) -> tuple[str, str, bool] | None:
    if got is None:
        return None
    base, path, is_path_type = got
    if base == "module_file":
        return "file", "", is_path_type
    if not path or path in (".", "/"):
        return None
    return base, os.path.dirname(path), is_path_type


def _dotted(node: ast.AST) -> str | None:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(node.id)
    return ".".join(reversed(parts))
