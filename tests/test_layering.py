"""Imports point one way (DESIGN.md "Process model"): each module of tach/ imports only from
layers below its own, and the pytest side never imports the supervisor side or vice versa.

Imports under ``if TYPE_CHECKING:`` do not count. A new module must be given a layer here, and a
new module of ``tach.lifecycle`` its place in that package's own order (``LIFECYCLE``).
"""

from __future__ import annotations

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent / "tach"

#: top-level module or package of tach -> (layer, side). Lower layers never import higher ones;
#: "pytest" and "supervisor" modules of the same layer never import each other.
LAYERS: dict[str, tuple[int, str]] = {
    "__init__": (0, "shared"),
    "_native": (0, "shared"),
    "heap": (1, "shared"),
    "nodeid": (1, "shared"),
    "protocol": (1, "shared"),
    "isolation": (1, "shared"),
    "config": (2, "supervisor"),
    "discovery": (2, "supervisor"),
    "results": (2, "supervisor"),
    "resolver": (3, "supervisor"),
    "scheduler": (3, "supervisor"),
    "shards": (4, "supervisor"),
    "graph": (3, "supervisor"),
    "changed": (4, "supervisor"),
    "adapters": (3, "pytest"),
    "plugin": (4, "pytest"),
    "worker": (5, "pytest"),
    "layers": (5, "pytest"),
    "zygote": (6, "pytest"),
    "base": (7, "pytest"),
    "lifecycle": (4, "supervisor"),
    "reporter": (4, "supervisor"),
    "runner": (5, "supervisor"),
    "watch": (6, "supervisor"),
    "server": (6, "supervisor"),
    "doctor": (6, "supervisor"),
    "debugger": (2, "shared"),
    "listing": (4, "supervisor"),
    "merge": (6, "supervisor"),
    "cli": (7, "supervisor"),
    "__main__": (8, "supervisor"),
    "bench": (9, "supervisor"),
}

#: The modules of the tach.lifecycle package, lowest first: each imports only modules listed
#: before it. (Its mixins call each other's methods through ``self``, never through imports.)
LIFECYCLE = [
    "layers",
    "state",
    "processes",
    "signals",
    "timers",
    "crashes",
    "debugging",
    "rings",
    "zygote_process",
    "supervisor",
    "__init__",
]


def _top(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "tach":
        return None
    return parts[1] if len(parts) > 1 else "__init__"


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _runtime_imports(tree: ast.Module, package: str) -> set[str]:
    type_only = {
        id(inner)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and _is_type_checking(node.test)
        for stmt in node.body
        for inner in ast.walk(stmt)
    }
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in type_only:
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = parts[: len(parts) - node.level + 1]
                found.add(".".join([*base, node.module] if node.module else base))
            else:
                found.add(node.module or "")
    return found


def _modules() -> list[tuple[str, pathlib.Path]]:
    result = []
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT.parent).with_suffix("")
        result.append((".".join(rel.parts), path))
    return result


@pytest.mark.parametrize(("module", "path"), _modules(), ids=[m for m, _ in _modules()])
def test_imports_point_one_way(module, path):
    own = _top(module)
    assert own in LAYERS, f"{module}: give tach.{own} a layer in tests/test_layering.py"
    own_layer, own_side = LAYERS[own]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for imported in _runtime_imports(ast.parse(path.read_text()), package):
        other = _top(imported)
        if other is None or other == own:
            continue
        assert other in LAYERS, f"{module} imports unknown tach.{other}"
        layer, side = LAYERS[other]
        assert layer < own_layer or other == "__init__", (
            f"{module} (layer {own_layer}) imports {imported} (layer {layer}): an upward edge"
        )
        assert {own_side, side} != {"pytest", "supervisor"}, (
            f"{module} ({own_side} side) imports {imported} ({side} side)"
        )


LIFECYCLE_MODULES = sorted((ROOT / "lifecycle").glob("*.py"))


@pytest.mark.parametrize("path", LIFECYCLE_MODULES, ids=[p.stem for p in LIFECYCLE_MODULES])
def test_lifecycle_modules_import_down(path):
    own = path.stem
    assert own in LIFECYCLE, f"give tach.lifecycle.{own} a place in LIFECYCLE"
    for imported in _runtime_imports(ast.parse(path.read_text()), "tach.lifecycle"):
        parts = imported.split(".")
        if parts[:2] != ["tach", "lifecycle"] or len(parts) < 3:
            continue
        assert LIFECYCLE.index(parts[2]) < LIFECYCLE.index(own), (
            f"tach.lifecycle.{own} imports {imported}, which LIFECYCLE puts above it"
        )
