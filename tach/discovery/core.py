"""The discovery run: arguments -> tests, fixtures and errors (see the package docstring).

:func:`discover` is the entry point: it finds the rootdir and config file (:mod:`.ini`), walks
the arguments as pytest would (:mod:`.walk`), summarises each file once (:mod:`.parse`, cached
by :mod:`.cache`), and collects tests and fixtures from the summaries (:mod:`.collect`,
:mod:`.params`). See ``docs/discovery.md``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .cache import CacheStats, Inputs, SummaryCache
from .collect import Collector, ModuleCollection, fixtures_of_namespace
from .ini import (
    CollectOptions,
    ProjectConfig,
    addopts_args,
    determine_config,
    split_pytest_args,
)
from .model import DiscoveryError, DiscoveryResult, FixtureDef, ModuleImport, TestDef
from .names import Index, ModuleCtx
from .params import IdOptions
from .plugins import PluginInfo, plugin_fixtures, site_packages_of_current
from .select import select
from .walk import Walker, dynamic_scopes

#: hooks in conftests that make every test below them dynamic.
_GENERATE_HOOK = "pytest_generate_tests"


@dataclass
class Discovery:
    """A discovery run: the result plus what produced it."""

    result: DiscoveryResult
    config: ProjectConfig
    options: CollectOptions
    stats: CacheStats
    plugins: list[PluginInfo] = field(default_factory=list)
    deselected: int = 0
    #: whether every installed plugin's fixtures could be read statically.
    plugins_complete: bool = True
    #: what discovery read (for the whole-run cache of ``tach list``).
    inputs: Any = None
    #: set by the caller that resolves fixtures (``tach.listing.discover_tests``).
    resolver: Any = None
    #: test id -> its fixture closure (a ``tach.resolver.Resolution``).
    closures: dict[str, Any] = field(default_factory=dict)


def _package_base(path: Path, probe: Any = None) -> Path:
    """The first directory upwards without ``__init__.py`` (pytest's ``prepend`` basedir)."""
    d = path.parent
    while d.parent != d:
        if probe is not None:
            probe(d / "__init__.py")
        if not (d / "__init__.py").is_file():
            break
        d = d.parent
    return d


def discover(args: Sequence[str] = (), *, invocation_dir: Path | None = None,
             options: CollectOptions | None = None, use_cache: bool = True,
             site_packages: Sequence[Path] | None = None,
             with_plugins: bool = True) -> Discovery:
    """Discover tests and fixtures for pytest-style ``args`` (paths or node ids).

    Tests whose ids depend on parametrized fixtures are completed by ``tach.resolver``, and
    ``-k``/``-m`` applied by :func:`apply_selection`; ``tach.listing.discover_tests`` does
    both. ``options`` carries ``-k``/``-m``/``-c``/``--rootdir``/... from the command line;
    ``addopts`` (ini, then ``PYTEST_ADDOPTS``) are applied under them, as pytest does.
    ``site_packages`` is where the project's interpreter finds pytest and plugins (default:
    this interpreter's ``sys.path``); ``with_plugins=False`` skips reading pytest's and the
    plugins' fixtures (ids do not depend on them). Raises :class:`ConfigError` for usage errors.
    """
    inv = (invocation_dir or Path.cwd()).absolute()
    cli = options or CollectOptions()
    cli_paths = list(args) + list(cli.paths)
    config = determine_config(cli_paths, inifile=cli.inifile, rootdir=cli.rootdir,
                              invocation_dir=inv, overrides=cli.overrides)
    opts = split_pytest_args(addopts_args(config))
    # command line over addopts
    addopt_paths = opts.paths
    opts.paths = []
    for name in ("keyword", "markexpr", "inifile", "rootdir"):
        if getattr(cli, name) is not None:
            setattr(opts, name, getattr(cli, name))
    opts.ignore += cli.ignore
    opts.ignore_glob += cli.ignore_glob
    opts.deselect += cli.deselect
    opts.disabled_plugins += cli.disabled_plugins
    opts.noconftest |= cli.noconftest
    opts.collect_in_virtualenv |= cli.collect_in_virtualenv
    if opts.overrides:
        for item in opts.overrides:
            key, _, value = item.partition("=")
            config.ini.setdefault(key, value)

    paths = addopt_paths + cli_paths
    if not paths:
        if inv == config.rootdir:
            import glob

            for tp in config.get("testpaths"):
                paths.extend(sorted(glob.iglob(str(config.rootdir / tp), recursive=True)))
        if not paths:
            paths = [str(inv)]

    cache = SummaryCache(config.rootdir / ".tach" if use_cache else None)
    inputs = Inputs()
    cache.inputs = inputs
    if config.inifile is not None and config.inifile.is_file():
        inputs.file(config.inifile, config.inifile.stat())
    for d in (inv, *inv.parents):
        inputs.directory(d)  # a config file appearing here would move the rootdir
        if d == config.rootdir or d.parent == d:
            break
    rootdir = config.rootdir
    pythonpath_base = config.inifile.parent if config.inifile else rootdir
    extra_roots = [Path(os.path.normpath(pythonpath_base / p)) for p in config.get("pythonpath")]
    ctxs: dict[Path, ModuleCtx | None] = {}
    errors: dict[Path, str] = {}
    sp = tuple(Path(p) for p in (site_packages if site_packages is not None
                                 else site_packages_of_current()))

    def rel(path: Path) -> str:
        try:
            return path.relative_to(rootdir).as_posix()
        except ValueError:
            return str(path)

    def load(path: Path) -> ModuleCtx | None:
        if path in ctxs:
            return ctxs[path]
        summary, err = cache.summary(path)
        if summary is None:
            errors[path] = err or "cannot read"
            ctxs[path] = None
            return None
        inside = rootdir in path.parents
        if inside:
            roots = tuple(dict.fromkeys([_package_base(path, inputs.probe), rootdir,
                                         rootdir / "src",
                                         *extra_roots]))
        else:
            roots = (_package_base(path), *sp)
        ctx = ModuleCtx.build(path, rel(path), summary, roots)
        ctxs[path] = ctx
        return ctx

    def load_pair(path: Path) -> tuple[ModuleCtx | None, str | None]:
        ctx = load(path)
        return ctx, errors.get(path)

    index = Index(load, inputs.probe)
    idopts = IdOptions(
        disable_escaping=bool(config.get(
            "disable_test_id_escaping_and_forfeit_all_rights_to_community_support")),
        long_str_strategy=_long_str_strategy(config, sp),
        strict_ids=bool(config.get("strict_parametrization_ids")
                        if config.get("strict_parametrization_ids") is not None
                        else config.get("strict")),
    )
    collector = Collector(
        index, python_classes=config.get("python_classes"),
        python_functions=config.get("python_functions"), id_options=idopts,
        empty_parameter_set_mark=str(config.get("empty_parameter_set_mark")),
        collect_imported_tests=bool(config.get("collect_imported_tests")),
    )
    walker = Walker(config, opts, load_pair, inputs.probe)
    items = walker.walk(paths)

    result = DiscoveryResult(rootdir=str(rootdir),
                             inifile=str(config.inifile) if config.inifile else None)
    for item in items:
        ctx = load(item.path)
        relpath = rel(item.path)
        if ctx is None:
            result.errors.append(DiscoveryError(relpath, 1, errors.get(item.path, "unreadable")))
            continue
        err = ctx.summary.get("error")
        if err is not None:
            result.errors.append(DiscoveryError(relpath, err[0], err[1]))
            continue
        conftests = walker.conftests_for(item.path.parent)
        inherited = None
        for ct in conftests:
            if _GENERATE_HOOK in ct.hooks:
                inherited = (f"{walker.rel(ct.path)}:{ct.hooks[_GENERATE_HOOK]} defines "
                             "pytest_generate_tests")
        mc = ModuleCollection(collector, ctx, relpath, inherited)
        got = mc.run()
        tests = got.tests
        if item.selectors is not None:
            from ..nodeid import matches_selection

            tests = [t for t in tests if any(matches_selection(t.id, s) or (
                t.dynamic and t.covers(s)) for s in item.selectors)]
        result.tests.extend(tests)
        result.fixtures.extend(got.fixtures)
        result.imports[relpath] = _imports(index, ctx)

    # conftests: fixtures, collection hooks, errors
    for ct in walker.used_conftests.values():
        result.conftests.append(walker.rel(ct.path))
        if ct.error:
            result.errors.append(DiscoveryError(walker.rel(ct.path), 1, ct.error))
            continue
        if ct.ctx is None:
            continue
        result.fixtures.extend(fixtures_of_namespace(
            collector, [(n, ct.ctx.ns[n], ct.ctx) for n in ct.ctx.order], "conftest",
            ct.baseid, is_class=False))
        if ct.ignore_dynamic:
            result.warnings.append(DiscoveryError(walker.rel(ct.path), 1, ct.ignore_dynamic,
                                                  "warning"))
        for plugin in ct.pytest_plugins:
            f = index.find_module(plugin, ct.ctx.roots)
            pctx = load(f) if f else None
            if pctx is not None:
                result.fixtures.extend(fixtures_of_namespace(
                    collector, [(n, pctx.ns[n], pctx) for n in pctx.order], "plugin", "",
                    is_class=False))
    for baseid, hook, line, _name in dynamic_scopes(list(walker.used_conftests.values())):
        where = f"{baseid}/conftest.py" if baseid else "conftest.py"
        result.tests.append(TestDef(
            id=f"{baseid}/" if baseid else "", file=where, line=line, name=hook,
            dynamic=f"{where}:{line} defines {hook}: pytest may collect other items here"))

    def fixtures_of(ctx: ModuleCtx, where: str) -> list[FixtureDef]:
        return fixtures_of_namespace(collector, [(n, ctx.ns[n], ctx) for n in ctx.order],
                                     where, "", is_class=False, follow_imports=False)

    plugins: list[PluginInfo] = []
    if with_plugins:
        builtin, plugins = plugin_fixtures(sp, opts.disabled_plugins, fixtures_of, load)
        result.fixtures[:0] = builtin
    for p in plugins:
        interesting = [h for h in p.hooks if h in ("pytest_collect_file",
                                                   "pytest_generate_tests",
                                                   "pytest_collection_modifyitems")]
        if interesting:
            result.warnings.append(DiscoveryError(
                p.file or p.module, 0,
                f"installed plugin {p.name} implements {', '.join(interesting)}", "warning"))

    cache.save()
    return Discovery(result, config, opts, cache.stats, plugins, 0,
                     plugins_complete=with_plugins and all(p.file for p in plugins),
                     inputs=inputs)


def apply_selection(d: Discovery) -> None:
    """Apply ``-k``, ``-m`` and ``--deselect`` (after fixture parametrization expanded ids)."""
    d.result.tests, d.deselected = select(d.result.tests, d.options.keyword,
                                          d.options.markexpr, d.options.deselect)


def _long_str_strategy(config: ProjectConfig, sp: Sequence[Path]) -> str:
    """pytest >= 9.1 shortens long str ids ("short"); older pytest keeps them ("legacy")."""
    from .plugins import find_pytest_package

    pkg = find_pytest_package(sp)
    try:
        text = (pkg / "python.py").read_text(encoding="utf-8") if pkg else ""
    except OSError:
        text = ""
    if "parametrize_long_str_id_strategy" not in text:
        return "legacy"
    return str(config.get("parametrize_long_str_id_strategy"))


def _imports(index: Index, ctx: ModuleCtx) -> list[ModuleImport]:
    out: list[ModuleImport] = []
    seen: set[tuple[str, int]] = set()
    for module, level, names, _line in ctx.summary.get("imports") or []:
        key = (module, level) if names is None else (f"{module}:{','.join(names)}", level)
        if key in seen:
            continue
        seen.add(key)
        target = index.module_of_import(ctx, module, level)
        display = ("." * level) + module
        out.append(ModuleImport(display, _rel(ctx, target) if target else None))
        for n in names or ():
            # ``from pkg import mod`` may name a submodule
            sub = index.module_of_import(ctx, f"{module}.{n}" if module else n, level)
            if sub is not None:
                out.append(ModuleImport(f"{display}.{n}" if module else display + n,
                                        _rel(ctx, sub)))
    return out


def _rel(ctx: ModuleCtx, path: Path) -> str:
    # ctx.rel is relative to the rootdir; rebuild the same for path
    root = ctx.path
    for _ in ctx.rel.split("/"):
        root = root.parent
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)

