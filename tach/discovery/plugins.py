"""Fixtures of pytest itself and of installed plugins, read statically from their source.

Builtin fixtures are found by parsing the modules of the ``_pytest`` package that the project's
interpreter would import (``-p no:NAME`` removes ``_pytest/NAME.py``); plugins are the
``pytest11`` entry points of the installed distributions, whose modules are parsed the same way.
A few fixtures are not module-level functions (``request`` is built into ``FixtureRequest``;
``legacypath`` registers ``tmpdir``/``testdir`` from a class); they are known by name.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .model import FixtureDef
from .names import ModuleCtx

#: fixtures pytest provides that are not module-level fixture functions, by plugin.
BY_NAME: dict[str, list[tuple[str, str]]] = {
    "fixtures": [("request", "function")],
    "legacypath": [("tmpdir", "function"), ("tmpdir_factory", "session"), ("testdir", "function")],
}


@dataclass
class PluginInfo:
    """An installed plugin: its entry-point name, module and (when found) source file."""

    name: str
    module: str
    file: str | None
    dist: str = ""
    #: hooks it implements that change collection.
    hooks: list[str] = field(default_factory=list)


def site_packages_of_current() -> list[Path]:
    """The import path entries of this interpreter that hold installed distributions."""
    return [Path(p) for p in sys.path if p and Path(p).is_dir()]


def find_pytest_package(paths: Sequence[Path]) -> Path | None:
    """The ``_pytest`` package directory on ``paths``."""
    for p in paths:
        cand = p / "_pytest"
        if (cand / "__init__.py").is_file():
            return cand
    return None


def entry_point_plugins(paths: Sequence[Path]) -> list[PluginInfo]:
    """``pytest11`` entry points of the distributions on ``paths``.

    Read from each ``*.dist-info``/``*.egg-info`` directory's ``entry_points.txt`` directly,
    as ``importlib.metadata`` finds them (path order, the first plugin of a name wins), but
    without importing ``importlib.metadata`` and reading every distribution's metadata: that
    took 60-110 ms, and ``tach list -q`` reads the plugins too (their fixtures' ``params``
    change test ids).
    """
    out: list[PluginInfo] = []
    seen: set[str] = set()
    for base in paths:
        try:
            entries = os.listdir(base)
        except OSError:
            continue
        for entry in entries:
            if not entry.endswith((".dist-info", ".egg-info")):
                continue
            try:
                with open(os.path.join(base, entry, "entry_points.txt"), encoding="utf-8") as f:
                    text = f.read()
            except (OSError, UnicodeDecodeError):
                continue
            if "pytest11" not in text:
                continue
            dist = entry.rpartition(".")[0].partition("-")[0]
            for name, value in _pytest11(text):
                if name in seen:
                    continue
                seen.add(name)
                module = value.partition(":")[0].strip()
                out.append(PluginInfo(name, module, module_file(module, paths), dist))
    return out


def _pytest11(text: str) -> list[tuple[str, str]]:
    """The ``name = value`` lines of the ``[pytest11]`` section of an ``entry_points.txt``."""
    out: list[tuple[str, str]] = []
    section = ""
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1].strip()
            continue
        if section == "pytest11" and "=" in line:
            name, _, value = line.partition("=")
            out.append((name.strip(), value.strip()))
    return out


def module_file(module: str, paths: Sequence[Path]) -> str | None:
    """The source file of module ``module`` on ``paths``, if any."""
    rel = module.replace(".", "/")
    for p in paths:
        for cand in (p / f"{rel}.py", p / rel / "__init__.py"):
            if cand.is_file():
                return str(cand)
    return None


def default_plugin_names(pkg: Path) -> set[str] | None:
    """``essential_plugins + default_plugins`` from ``_pytest/config/__init__.py``, statically."""
    import ast

    try:
        tree = ast.parse((pkg / "config" / "__init__.py").read_bytes())
    except (OSError, SyntaxError):
        return None
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id in ("essential_plugins", "default_plugins")
            for t in node.targets
        ):
            for sub in ast.walk(node.value):
                if isinstance(sub, ast.Constant) and isinstance(sub.value, str):
                    names.add(sub.value)
    return names or None


def builtin_modules(pkg: Path, disabled: Sequence[str]) -> list[Path]:
    """The ``_pytest`` modules registered by default (minus ``-p no:NAME``)."""
    default = default_plugin_names(pkg)
    out = []
    for f in sorted(pkg.glob("*.py")):
        if f.stem in disabled or f.stem.startswith("__"):
            continue
        if default is not None and f.stem not in default:
            continue
        if default is None and f.stem == "pytester":
            continue
        out.append(f)
    return out


def plugin_fixtures(
    paths: Sequence[Path],
    disabled: Sequence[str],
    fixtures_of: Callable[[ModuleCtx, str], list[FixtureDef]],
    load: Callable[[Path], ModuleCtx | None],
    builtins: bool = True,
) -> tuple[list[FixtureDef], list[PluginInfo]]:
    """Builtin and plugin fixtures (visible everywhere), and the plugins found.

    ``builtins=False`` reads the installed plugins only: pytest's own fixtures have no
    ``params``, so test ids do not depend on them."""
    fixtures: list[FixtureDef] = []
    pkg = find_pytest_package(paths) if builtins else None
    if pkg is not None:
        for f in builtin_modules(pkg, disabled):
            ctx = load(f)
            if ctx is not None:
                fixtures.extend(fixtures_of(ctx, "builtin"))
    for plugin, names in BY_NAME.items():
        if plugin in disabled or not builtins:
            continue
        for name, scope in names:
            fixtures.append(
                FixtureDef(
                    name=name,
                    scope=scope,
                    autouse=False,
                    deps=[],
                    file="",
                    line=0,
                    where="builtin",
                    baseid="",
                )
            )
    plugins = [p for p in entry_point_plugins(paths) if p.name not in disabled]
    for p in plugins:
        if p.file is None:
            continue
        ctx = load(Path(p.file))
        if ctx is None:
            continue
        fixtures.extend(fixtures_of(ctx, "plugin"))
        p.hooks = [n for n in ctx.order if n.startswith("pytest_")]
    return fixtures, plugins
