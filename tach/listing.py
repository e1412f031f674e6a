"""The ``list`` command: discover tests statically and print them for people or tools.

``tach list`` prints a tree (directories, modules, classes, tests; dynamic records flagged with
their reason), ``tach list -q`` one node id per line as ``pytest --collect-only -q`` does, and
``tach --format=json list`` the discovery document::

    {"tests": [{"id", "file", "line", "is_async", "marks", "fixtures", "dynamic"}],
     "fixtures": [{"name", "scope", "file", "line", "autouse", "deps", ...}],
     "errors": [{"file", "line", "message", "kind"}], ...}

``tach list --collect`` also runs ``python -m pytest --collect-only -q`` with the same
arguments in a child process and reports where the two disagree (docs/discovery.md).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from .discovery.ini import CollectOptions, ConfigError

if TYPE_CHECKING:
    from .discovery import Discovery
    from .discovery.model import FixtureDef, TestDef
    from .resolver import Resolver

# The discovery machinery is imported only when the whole-run cache misses, so that a warm
# ``tach list`` starts in a few tens of milliseconds.


def discover_tests(
    args: Sequence[str] = (),
    *,
    invocation_dir: Path | None = None,
    options: CollectOptions | None = None,
    use_cache: bool = True,
    site_packages: Sequence[Path] | None = None,
    with_plugins: bool = True,
    select: bool = True,
    closures: bool = True,
    retain: list[object] | None = None,
) -> Discovery:
    """Static discovery, then fixture resolution (which completes ids that parametrized
    fixtures extend), then ``-k``/``-m``/``--deselect``: what ``tach list`` shows.

    ``closures=False`` is for callers that need the tests but not their fixture closures
    (``tach list``, ``tach list -q``): only the tests whose ids a parametrized fixture can
    change are resolved, so ``d.closures`` is empty and ``d.resolver`` is None when no test
    needed it (else ``d.resolver.problems`` is not complete); the tests are the same.
    ``retain`` is for a caller about to end its process (see ``discover``).
    """
    from .discovery import apply_selection, discover

    d = discover(
        args,
        invocation_dir=invocation_dir,
        options=options,
        use_cache=use_cache,
        site_packages=site_packages,
        with_plugins=with_plugins,
        retain=retain,
    )
    if closures:
        from .resolver import resolve_all

        d.resolver = _resolver(d)
        d.result.tests, d.closures = resolve_all(d.result.tests, d.resolver)
    else:
        d.result.tests = _expand_ids(d)
    if select:
        apply_selection(d)
    return d


def _resolver(d: Discovery) -> Resolver:
    from .resolver import Resolver

    return Resolver(
        d.result.fixtures,
        ini_usefixtures=d.config.get("usefixtures"),
        plugins_complete=d.plugins_complete,
    )


def _expand_ids(d: Discovery) -> list[TestDef]:
    """The tests ``resolve_all`` returns, resolving only those a parametrized fixture can
    change (and setting ``d.resolver`` when there are any).

    A fixture parametrizes a test only from the test's closure; the closure grows from the
    test's initial names (autouse fixtures, ``usefixtures``, arguments) along fixtures'
    arguments. So a test none of whose initial names can reach a fixture with ``params``,
    through the arguments of any definition of any name, keeps its id and needs no closure.
    """
    tests, fixtures = d.result.tests, d.result.fixtures
    sensitive = _param_sensitive(fixtures)
    everything = any(n in sensitive for n in d.config.get("usefixtures")) or any(
        fx.autouse and fx.name in sensitive for fx in fixtures
    )
    resolver = d.resolver = _resolver(d) if sensitive else None
    if resolver is None and not any(t.dynamic for t in tests):
        return tests  # nothing to expand, and no dynamic records to collapse
    out: list[TestDef] = []
    seen: set[str] = set()  # the ids resolve_all keeps closures for
    for t in tests:
        if t.dynamic and (not t.id or t.id.endswith("/")):
            out.append(t)
            continue
        if resolver is not None and (
            everything
            or (not t.dynamic and not t.unittest and any(n in sensitive for n in t.fixtures))
        ):
            variants = resolver.expand(t, resolver.resolve(t))
        else:
            variants = [t]
        for x in variants:
            if x.dynamic and x.id in seen:
                continue  # variants of one dynamic test collapse into one record
            out.append(x)
            seen.add(x.id)
    return out


def _param_sensitive(fixtures: Sequence[FixtureDef]) -> set[str]:
    """Fixture names whose closure may hold a parametrized fixture (any definition counts)."""
    users: dict[str, set[str]] = {}
    start: list[str] = []
    for fx in fixtures:
        if fx.params is not None or fx.params_dynamic:
            start.append(fx.name)
        for dep in fx.deps:
            users.setdefault(dep, set()).add(fx.name)
    found = set(start)
    while start:
        for user in users.get(start.pop(), ()):
            if user not in found:
                found.add(user)
                start.append(user)
    return found


@dataclass
class ListRequest:
    """Arguments of the ``list`` command."""

    args: list[str] = field(default_factory=list)
    keyword: str | None = None
    markexpr: str | None = None
    quiet: bool = False
    fmt: str = "human"
    inifile: str | None = None
    rootdir: str | None = None
    overrides: list[str] = field(default_factory=list)
    ignore: list[str] = field(default_factory=list)
    deselect: list[str] = field(default_factory=list)
    collect: bool = False
    python: str | None = None
    no_cache: bool = False
    problems: bool = False


def interpreter_paths(python: str) -> list[Path]:
    """The import path of interpreter ``python``: where its pytest and plugins are installed.

    Raises :class:`ConfigError` when it cannot be run.
    """
    import subprocess

    import orjson

    code = "import json, sys; print(json.dumps([p for p in sys.path if p]))"
    try:
        proc = subprocess.run(
            [python, "-I", "-c", code], capture_output=True, text=True, timeout=60, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ConfigError(f"--python {python}: cannot run it ({exc})") from exc
    if proc.returncode != 0:
        raise ConfigError(
            f"--python {python}: exited with status {proc.returncode}: {proc.stderr.strip()[-500:]}"
        )
    try:
        paths = orjson.loads(proc.stdout.strip().splitlines()[-1])
    except (IndexError, orjson.JSONDecodeError) as exc:
        raise ConfigError(f"--python {python}: did not report its import path") from exc
    return [Path(p) for p in paths if Path(p).is_dir()]


def _run_key(
    req: ListRequest,
    invocation_dir: Path,
    config_ini: dict[str, Any],
    rootdir: Path,
    inifile: Path | None,
    with_plugins: bool,
    site_packages: Sequence[Path] | None = None,
) -> str:
    from . import __version__

    parts: list[Any] = [
        __version__,
        req.args,
        req.keyword,
        req.markexpr,
        req.inifile,
        req.rootdir,
        req.overrides,
        req.ignore,
        req.deselect,
        str(invocation_dir),
        str(rootdir),
        str(inifile),
        sorted((k, repr(v)) for k, v in config_ini.items()),
        os.environ.get("PYTEST_ADDOPTS"),
        with_plugins,
    ]
    # installing or removing a distribution changes its site directory (plugins are read
    # for every listing: their fixtures' params change test ids)
    paths = [str(p) for p in site_packages] if site_packages is not None else sys.path
    # the invocation directory (``python -m tach`` puts it on the path) and the rootdir
    # change whenever ``.tach/`` does: their listings are inputs of the run already
    own = {str(invocation_dir), str(rootdir)}
    parts.append(req.python)
    parts.append(
        [(p, os.stat(p).st_mtime_ns) for p in paths if p and p not in own and os.path.isdir(p)]
    )
    return repr(parts)


def run_list(
    req: ListRequest,
    out: TextIO,
    err: TextIO,
    invocation_dir: Path | None = None,
    *,
    retain: list[object] | None = None,
) -> int:
    """Run the ``list`` command; returns the exit code (4 for usage errors).

    With the cache on, the whole result is kept in ``.tach/list-<key>.cache`` together with
    what discovery read; when none of it changed, the result is printed without discovery.
    A caller about to end its process passes ``retain``, a list that keeps what the command
    built instead of freeing it (see ``tach.discovery.discover``).
    """
    if req.fmt == "json" or req.problems:
        return _run_list(req, out, err, invocation_dir, retain)
    from .heap import gc_paused

    # The tree and ``-q`` make hundreds of thousands of long-lived objects and no reference
    # cycles worth a collection (the full fixture resolution behind ``--format=json`` and
    # ``--problems`` does make them: it runs with the collector on).
    with gc_paused(freeze=retain is not None):
        return _run_list(req, out, err, invocation_dir, retain)


def _run_list(
    req: ListRequest,
    out: TextIO,
    err: TextIO,
    invocation_dir: Path | None,
    retain: list[object] | None,
) -> int:
    from .discovery.cache import inputs_unchanged, read_document, short_hash
    from .discovery.ini import determine_config

    inv = (invocation_dir or Path.cwd()).absolute()
    opts = CollectOptions(
        keyword=req.keyword,
        markexpr=req.markexpr,
        inifile=req.inifile,
        rootdir=req.rootdir,
        overrides=list(req.overrides),
        ignore=list(req.ignore),
        deselect=list(req.deselect),
    )
    want_fixtures = req.fmt == "json" or req.problems
    site_packages: list[Path] | None = None
    run_doc: dict[str, Any] | None = None
    cache_path: Path | None = None
    key = ""
    try:
        if req.python:
            site_packages = interpreter_paths(req.python)
        if not req.no_cache:
            cfg = determine_config(
                list(req.args),
                inifile=req.inifile,
                rootdir=req.rootdir,
                invocation_dir=inv,
                overrides=req.overrides,
            )
            key = _run_key(
                req, inv, cfg.ini, cfg.rootdir, cfg.inifile, want_fixtures, site_packages
            )
            digest = short_hash(key.encode())
            cache_path = cfg.rootdir / ".tach" / f"list-{digest}.cache"
            cached = read_document(cache_path, "tach-list")
            if (
                cached is not None
                and cached.get("key") == key
                and inputs_unchanged(cached.get("inputs"))
            ):
                run_doc = cached
        if run_doc is None:
            run_doc = _fresh_document(
                req,
                inv,
                opts,
                key,
                cache_path,
                full=want_fixtures,
                site_packages=site_packages,
                retain=retain,
            )
    except ConfigError as exc:
        err.write(f"ERROR: {exc}\n")
        return 4
    if retain is not None:
        retain.append(run_doc)
    doc = run_doc["document"]
    if req.fmt == "json":
        import orjson

        out.write(orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode() + "\n")
    elif req.quiet:
        out.write("".join(f"{t['id']}\n" for t in doc["tests"]))
    else:
        write_tree(doc, out)
    if req.fmt != "json":
        for e in doc["errors"]:
            where = f"{e['file']}:{e['line']}" if e["line"] else e["file"]
            err.write(f"ERROR: {where}: {e['message']}\n")
        if req.problems:
            for p in run_doc["problems_text"]:
                err.write(f"{p}\n")
    rc = 0
    if req.collect:
        rc = compare_with_pytest(doc, req, out, err, inv)
    if doc["errors"] and rc == 0:
        rc = 2 if not doc["tests"] else 1
    if not doc["tests"] and rc == 0:
        rc = 5
    return rc


def _fresh_document(
    req: ListRequest,
    inv: Path,
    opts: CollectOptions,
    key: str,
    cache_path: Path | None,
    *,
    full: bool,
    site_packages: Sequence[Path] | None = None,
    retain: list[object] | None = None,
) -> dict[str, Any]:
    """Discover, and keep the result in the whole-run cache (when there is one)."""
    from .discovery.cache import write_document

    # ids do not depend on pytest's own fixtures nor on closures: the tree and ``-q`` need
    # neither (``--format=json`` and ``--problems`` do); the plugins' fixtures are read
    # either way (see ``tach.discovery.discover``)
    d = discover_tests(
        req.args,
        invocation_dir=inv,
        options=opts,
        use_cache=not req.no_cache,
        site_packages=site_packages,
        with_plugins=full,
        closures=full,
        retain=retain,
    )
    if retain is not None:
        retain.append(d)
    run_doc: dict[str, Any] = {
        "schema": "tach-list",
        "key": key,
        "document": document(d, full=full),
        "problems_text": [str(p) for p in d.resolver.problems] if full else [],
    }
    if cache_path is not None:
        run_doc["inputs"] = d.inputs.snapshot()
        write_document(cache_path, run_doc)
    return run_doc


def document(d: Discovery, *, full: bool = True) -> dict[str, Any]:
    """The ``--format=json list`` document.

    ``full=False`` keeps only what the tree and ``-q`` print and ``--collect`` compares
    (each test's ``id``, ``file``, ``line`` and ``dynamic``; errors; warnings): the document
    that the whole-run cache keeps for them, smaller to write and to read back.
    """
    res = d.result
    if not full:
        return {
            "rootdir": res.rootdir,
            "inifile": res.inifile,
            "tests": [
                {"id": t.id, "file": t.file, "line": t.line, "dynamic": t.dynamic}
                for t in res.tests
            ],
            "fixtures": [],
            "errors": [e.to_json() for e in res.errors],
            "warnings": [w.to_json() for w in res.warnings],
            "problems": [],
            "imports": {},
            "deselected": d.deselected,
        }
    doc: dict[str, Any] = {
        "rootdir": res.rootdir,
        "inifile": res.inifile,
        "tests": [t.to_json() for t in res.tests],
        "fixtures": [f.to_json() for f in res.fixtures],
        "errors": [e.to_json() for e in res.errors],
        "warnings": [w.to_json() for w in res.warnings],
        "problems": [p.to_json() for p in (d.resolver.problems if d.resolver else [])],
        "imports": {k: [i.to_json() for i in v] for k, v in res.imports.items()},
        "deselected": d.deselected,
    }
    for t in doc["tests"]:
        c = d.closures.get(t["id"])
        t["closure"] = c.closure if c else []
        t["widest_scope"] = c.widest_scope if c else "function"
    return doc


def write_tree(doc: dict[str, Any], out: TextIO) -> None:
    """An indented tree of the document's tests: directories, modules, classes, tests."""
    printed: list[str] = []
    dynamic = 0
    for t in doc["tests"]:
        parts = t["id"].split("::")
        path_parts = parts[0].split("/")
        chain = [f"{'/'.join(path_parts[: i + 1])}" for i in range(len(path_parts))]
        labels = [(c, p) for c, p in zip(chain, path_parts, strict=True)]
        labels += [("::".join(parts[: i + 1]), parts[i]) for i in range(1, len(parts))]
        for depth, (key, label) in enumerate(labels):
            if depth < len(printed) and printed[depth] == key:
                continue
            del printed[depth:]
            printed.append(key)
            line = "  " * depth + label
            if depth == len(labels) - 1 and t["dynamic"]:
                line += f"  [dynamic: {t['dynamic']}]"
                dynamic += 1
            out.write(line + "\n")
    n = len(doc["tests"])
    out.write(f"\n{n - dynamic} tests, {dynamic} dynamic")
    if doc["deselected"]:
        out.write(f", {doc['deselected']} deselected")
    out.write(f" (rootdir: {doc['rootdir']})\n")


def pytest_collect_ids(python: str, args: Sequence[str], cwd: Path) -> tuple[list[str], str]:
    """Run ``python -m pytest --collect-only -q ARGS`` and return its node ids and stderr."""
    import subprocess

    proc = subprocess.run(
        [python, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
    )
    ids = []
    for line in proc.stdout.splitlines():
        if not line.strip():
            break
        if "::" in line or line.endswith(".py"):
            ids.append(line.strip())
    return ids, proc.stderr


def compare_with_pytest(
    doc: dict[str, Any], req: ListRequest, out: TextIO, err: TextIO, invocation_dir: Path | None
) -> int:
    """``list --collect``: show where static and pytest-collected ids differ."""
    cwd = invocation_dir or Path.cwd()
    args = list(req.args)
    if req.keyword:
        args += ["-k", req.keyword]
    if req.markexpr:
        args += ["-m", req.markexpr]
    if req.inifile:
        args += ["-c", req.inifile]
    if req.rootdir:
        args += ["--rootdir", req.rootdir]
    for o in req.overrides:
        args += ["-o", o]
    ids, _stderr = pytest_collect_ids(req.python or sys.executable, args, cwd)
    from .discovery.model import TestDef

    exact = {t["id"] for t in doc["tests"] if not t["dynamic"]}
    dyn = [
        TestDef(t["id"], t["file"], t["line"], "", dynamic=t["dynamic"])
        for t in doc["tests"]
        if t["dynamic"]
    ]
    missing = []
    covered = 0
    for i in ids:
        if i in exact:
            continue
        if any(t.covers(i) for t in dyn):
            covered += 1
            continue
        missing.append(i)
    extra = sorted(exact - set(ids))
    out.write(
        f"\npytest collected {len(ids)}; static equal {len(ids) - covered - len(missing)}, "
        f"dynamic {covered}, missing {len(missing)}, extra {len(extra)}\n"
    )
    for i in missing:
        out.write(f"- {i}  (pytest only)\n")
    for i in extra:
        out.write(f"+ {i}  (static only)\n")
    return 0 if not missing and not extra else 1
