"""Rootdir and configuration-file detection, as pytest 9 does it (``_pytest/config/findpaths.py``).

Files are tried in pytest's order in each directory from the common ancestor of the arguments
upwards: ``pytest.toml``, ``.pytest.toml``, ``pytest.ini``, ``.pytest.ini``, ``pyproject.toml``
(``[tool.pytest]`` native TOML or ``[tool.pytest.ini_options]``), ``tox.ini`` (``[pytest]``),
``setup.cfg`` (``[tool:pytest]``). ``pytest.ini``/``pytest.toml`` always count, even without a
pytest section; a ``pyproject.toml`` without a pytest table is remembered as a fallback rootdir.
When no file is found, a ``setup.py`` upwards marks the rootdir, else the common ancestor.

Besides the location, this module turns the ini options that shape collection into typed values
(:class:`ProjectConfig`) and splits ``addopts`` into the arguments that matter to discovery.
"""

from __future__ import annotations

import os
import shlex
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class ConfigError(Exception):
    """A configuration or usage problem (exit code 4)."""


#: ini options and pytest's defaults for those discovery reads.
INI_DEFAULTS: dict[str, Any] = {
    "python_files": ["test_*.py", "*_test.py"],
    "python_classes": ["Test"],
    "python_functions": ["test"],
    "norecursedirs": [
        "*.egg",
        ".*",
        "_darcs",
        "build",
        "CVS",
        "dist",
        "node_modules",
        "venv",
        "{arch}",
    ],
    "testpaths": [],
    "usefixtures": [],
    "addopts": [],
    "pythonpath": [],
    "markers": [],
    "collect_imported_tests": True,
    "disable_test_id_escaping_and_forfeit_all_rights_to_community_support": False,
    "empty_parameter_set_mark": "skip",
    "strict_parametrization_ids": None,
    "strict": False,
    "parametrize_long_str_id_strategy": "short",
    "consider_namespace_packages": False,
    "asyncio_mode": "strict",
}

_ARGS_OPTIONS = {
    "python_files",
    "python_classes",
    "python_functions",
    "norecursedirs",
    "testpaths",
    "usefixtures",
    "addopts",
    "pythonpath",
}
_LINELIST_OPTIONS = {"markers"}
_BOOL_OPTIONS = {
    "collect_imported_tests",
    "consider_namespace_packages",
    "strict",
    "strict_parametrization_ids",
    "disable_test_id_escaping_and_forfeit_all_rights_to_community_support",
}


def _ini_section(path: Path, section: str) -> dict[str, str] | None:
    import iniconfig  # pytest's own ini parser (a pytest dependency; imports no user code)

    try:
        cfg = iniconfig.IniConfig(str(path))
    except iniconfig.ParseError as exc:
        raise ConfigError(str(exc)) from exc
    if section in cfg:
        return dict(cfg[section].items())
    return None


def _load_toml(path: Path) -> dict[str, Any]:
    # imported here: most projects are configured in an ini file, and every start counts
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from exc


def _from_tool_pytest(path: Path, doc: dict[str, Any]) -> dict[str, Any] | None:
    tool = doc.get("tool", {})
    tool_pytest = tool.get("pytest", {}) if isinstance(tool, dict) else {}
    native = {k: v for k, v in tool_pytest.items() if k != "ini_options"}
    ini = tool_pytest.get("ini_options")
    if native and ini:
        raise ConfigError(f"{path}: Cannot use both [tool.pytest] and [tool.pytest.ini_options]")
    if native:
        return native
    if ini is not None:
        return {k: (v if isinstance(v, list) else str(v)) for k, v in ini.items()}
    return None


def _load_pytest_toml(path: Path) -> dict[str, Any] | None:
    doc = _load_toml(path)
    return dict(doc.get("pytest", {}))


def _load_pytest_ini(path: Path) -> dict[str, Any] | None:
    return _ini_section(path, "pytest") or {}


def _load_tox_ini(path: Path) -> dict[str, Any] | None:
    return _ini_section(path, "pytest")


def _load_setup_cfg(path: Path) -> dict[str, Any] | None:
    return _ini_section(path, "tool:pytest")


def _load_pyproject(path: Path) -> dict[str, Any] | None:
    return _from_tool_pytest(path, _load_toml(path))


def _load_custom_toml(path: Path) -> dict[str, Any] | None:
    doc = _load_toml(path)
    cfg = _from_tool_pytest(path, doc)
    if cfg is None:
        return dict(doc["pytest"]) if "pytest" in doc else None
    return cfg


LOADERS: dict[str, Callable[[Path], dict[str, Any] | None]] = {
    "pytest.toml": _load_pytest_toml,
    ".pytest.toml": _load_pytest_toml,
    "pytest.ini": _load_pytest_ini,
    ".pytest.ini": _load_pytest_ini,
    "pyproject.toml": _load_pyproject,
    "tox.ini": _load_tox_ini,
    "setup.cfg": _load_setup_cfg,
}
_SUFFIX_LOADERS: dict[str, Callable[[Path], dict[str, Any] | None]] = {
    ".ini": _load_tox_ini,
    ".cfg": _load_setup_cfg,
    ".toml": _load_custom_toml,
}


def _locate(args: Sequence[Path]) -> tuple[Path | None, Path | None, dict[str, Any]]:
    found_pyproject: Path | None = None
    for arg in args:
        for base in (arg, *arg.parents):
            for name, loader in LOADERS.items():
                p = base / name
                if os.path.isfile(p):
                    if name == "pyproject.toml" and found_pyproject is None:
                        found_pyproject = p
                    cfg = loader(p)
                    if cfg is not None:
                        return base, p, cfg
    if found_pyproject is not None:
        return found_pyproject.parent, found_pyproject, {}
    return None, None, {}


def _common_ancestor(invocation_dir: Path, paths: Sequence[Path]) -> Path:
    common: Path | None = None
    for path in paths:
        if not os.path.exists(path):
            continue
        if common is None:
            common = path
        elif common in path.parents or path == common:
            continue
        elif path in common.parents:
            common = path
        else:
            shared = Path(os.path.commonpath([str(path), str(common)]))
            common = shared
    if common is None:
        common = invocation_dir
    elif os.path.isfile(common):
        common = common.parent
    return common


def _abspath(p: str | Path, base: Path) -> Path:
    return Path(os.path.normpath(base / os.path.expanduser(str(p))))


def _dirs_from_args(args: Sequence[str], invocation_dir: Path) -> list[Path]:
    out = []
    for arg in args:
        if arg.startswith("-"):
            continue
        p = _abspath(arg.partition("::")[0], invocation_dir)
        if os.path.exists(p):
            out.append(p if os.path.isdir(p) else p.parent)
    return out


@dataclass
class ProjectConfig:
    """The rootdir, the config file and the ini options that shape collection."""

    rootdir: Path
    inifile: Path | None
    ini: dict[str, Any] = field(default_factory=dict)
    invocation_dir: Path = field(default_factory=Path.cwd)

    def get(self, name: str) -> Any:
        """An ini option converted as pytest's ``getini`` converts it, or pytest's default."""
        if name not in self.ini:
            default = INI_DEFAULTS.get(name)
            return list(default) if isinstance(default, list) else default
        value = self.ini[name]
        if name in _ARGS_OPTIONS:
            return shlex.split(value) if isinstance(value, str) else list(value)
        if name in _LINELIST_OPTIONS:
            if isinstance(value, str):
                return [s for line in value.split("\n") if (s := line.strip())]
            return list(value)
        if name in _BOOL_OPTIONS:
            if isinstance(value, bool):
                return value
            return str(value).strip().lower() in ("y", "yes", "t", "true", "on", "1")
        return value

    def fingerprint(self) -> list[Any]:
        """The values that change what discovery yields for a file (part of cache keys)."""
        return [str(self.rootdir), sorted((k, repr(v)) for k, v in self.ini.items())]


def determine_config(
    args: Sequence[str],
    *,
    inifile: str | None = None,
    rootdir: str | None = None,
    invocation_dir: Path | None = None,
    overrides: Sequence[str] = (),
) -> ProjectConfig:
    """Find the rootdir and config file for ``args`` as ``determine_setup`` does.

    ``args`` are the positional (path or node id) arguments; ``inifile`` is ``-c``,
    ``rootdir`` is ``--rootdir``, ``overrides`` the ``-o name=value`` options.
    """
    inv = (invocation_dir or Path.cwd()).absolute()
    dirs = _dirs_from_args(args, inv)
    root: Path | None = None
    inipath: Path | None = None
    cfg: dict[str, Any] = {}
    if inifile:
        p = _abspath(inifile, inv)
        if not os.path.exists(p):
            raise ConfigError(f"Config file '{p}' not found. Check your '-c/--config-file' option.")
        if os.path.isdir(p):
            raise ConfigError(
                f"Config file '{p}' is a directory. Check your '-c/--config-file' option."
            )
        inipath = p
        loader = LOADERS.get(p.name) or _SUFFIX_LOADERS.get(p.suffix)
        if loader is not None:
            cfg = loader(p) or {}
        elif os.path.isfile(p):
            raise ConfigError(
                f"Config file '{p}' has an unsupported format. "
                "Supported extensions are: .cfg, .ini, .toml."
            )
        if rootdir is None:
            if os.path.isfile(p):
                root = p.parent
            else:
                root = _common_ancestor(inv, dirs)
                if str(root) == os.sep:
                    root = inv
    else:
        ancestor = _common_ancestor(inv, dirs)
        root, inipath, cfg = _locate([ancestor])
        if root is None and rootdir is None:
            for candidate in (ancestor, *ancestor.parents):
                if os.path.isfile(candidate / "setup.py"):
                    root = candidate
                    break
            else:
                if dirs != [ancestor]:
                    root, inipath, cfg = _locate(dirs)
                if root is None:
                    root = _common_ancestor(inv, [inv, ancestor])
                    if str(root) == os.sep:
                        root = ancestor
    if rootdir:
        root = _abspath(os.path.expandvars(rootdir), inv)
        if not os.path.isdir(root):
            raise ConfigError(f"Directory '{root}' not found. Check your '--rootdir' option.")
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"-o/--override-ini expects option=value style (got: {item!r}).")
        cfg[key] = value
    assert root is not None
    return ProjectConfig(rootdir=root, inifile=inipath, ini=dict(cfg), invocation_dir=inv)


#: Options of pytest (and common plugins) that take a value as the next argument.
_VALUE_OPTIONS = {
    "-k",
    "-m",
    "-c",
    "-o",
    "-p",
    "-r",
    "-W",
    "-n",
    "--rootdir",
    "--confcutdir",
    "--ignore",
    "--ignore-glob",
    "--deselect",
    "--basetemp",
    "--junitxml",
    "--junit-xml",
    "--durations",
    "--durations-min",
    "--maxfail",
    "--tb",
    "--capture",
    "--color",
    "--code-highlight",
    "--import-mode",
    "--log-level",
    "--log-format",
    "--log-date-format",
    "--log-cli-level",
    "--log-cli-format",
    "--log-cli-date-format",
    "--log-file",
    "--log-file-level",
    "--log-file-format",
    "--log-file-date-format",
    "--log-file-mode",
    "--config-file",
    "--override-ini",
    "--pyargs-dir",
    "--cov-report",
    "--cov-config",
    "--cov-fail-under",
    "--timeout",
    "--timeout-method",
    "--reruns",
    "--reruns-delay",
    "--dist",
    "--tx",
    "--maxprocesses",
    "--report-log",
    "--asyncio-mode",
    "--hypothesis-profile",
    "--hypothesis-seed",
    "--hypothesis-verbosity",
    "--benchmark-columns",
    "--benchmark-sort",
    "--benchmark-group-by",
    "--benchmark-save",
    "--benchmark-json",
    "--benchmark-storage",
    "--benchmark-min-rounds",
    "--benchmark-max-time",
    "--benchmark-min-time",
    "--benchmark-timer",
    "--benchmark-calibration-precision",
    "--benchmark-warmup",
    "--benchmark-warmup-iterations",
    "--benchmark-compare",
    "--benchmark-compare-fail",
    "--benchmark-cprofile",
    "--benchmark-histogram",
    "--benchmark-name",
    "-x-unused",
    "--strict-parametrization-ids-unused",
    "--runxfail-unused",
    "--debug-unused",
    "--verbosity",
    "--doctest-glob",
    "--doctest-report",
    "--lf-unused",
    "--last-failed-no-failures",
}


@dataclass
class CollectOptions:
    """The pytest command-line options that change which tests are collected or selected."""

    paths: list[str] = field(default_factory=list)
    keyword: str | None = None
    markexpr: str | None = None
    ignore: list[str] = field(default_factory=list)
    ignore_glob: list[str] = field(default_factory=list)
    deselect: list[str] = field(default_factory=list)
    disabled_plugins: list[str] = field(default_factory=list)
    plugins: list[str] = field(default_factory=list)
    overrides: list[str] = field(default_factory=list)
    inifile: str | None = None
    rootdir: str | None = None
    noconftest: bool = False
    collect_in_virtualenv: bool = False
    #: ``--doctest-modules``: every ``.py`` file walked is also a ``DoctestModule``.
    doctest_modules: bool = False
    #: ``--doctest-glob`` patterns (pytest's default, ``test*.txt``, when empty).
    doctest_glob: list[str] = field(default_factory=list)
    #: ``--import-mode`` (None: pytest's default, ``prepend``).
    import_mode: str | None = None
    #: These are pytest's own final values (``addopts`` and ``PYTEST_ADDOPTS`` applied, the
    #: paths those of ``config.args``): discovery applies nothing on top of them.
    final: bool = False


def split_pytest_args(argv: Sequence[str], into: CollectOptions | None = None) -> CollectOptions:
    """Read pytest-style arguments (``addopts``, ``PYTEST_ADDOPTS``) into :class:`CollectOptions`.

    Options that do not matter to collection are skipped, together with their value when they
    take one. Later ``-k``/``-m`` win, as with argparse.
    """
    opts = into if into is not None else CollectOptions()
    it = iter(list(argv))
    for arg in it:
        if arg == "--":
            opts.paths.extend(it)
            break
        if not arg.startswith("-") or arg == "-":
            opts.paths.append(arg)
            continue
        if (
            not arg.startswith("--")
            and len(arg) > 2
            and arg[:2] in ("-k", "-m", "-c", "-o", "-p", "-r", "-W", "-n")
        ):
            name, value, eq = arg[:2], arg[2:], "="
        else:
            name, eq, value = arg.partition("=")
        if not eq and name in _VALUE_OPTIONS:
            value = next(it, "")
        if name == "-k":
            opts.keyword = value
        elif name == "-m":
            opts.markexpr = value
        elif name == "--ignore":
            opts.ignore.append(value)
        elif name == "--ignore-glob":
            opts.ignore_glob.append(value)
        elif name == "--deselect":
            opts.deselect.append(value)
        elif name == "-p":
            if value.startswith("no:"):
                opts.disabled_plugins.append(value[3:])
            else:
                opts.plugins.append(value)
        elif name in ("-o", "--override-ini"):
            opts.overrides.append(value)
        elif name in ("-c", "--config-file"):
            opts.inifile = value
        elif name == "--rootdir":
            opts.rootdir = value
        elif name == "--noconftest":
            opts.noconftest = True
        elif name == "--collect-in-virtualenv":
            opts.collect_in_virtualenv = True
        elif name == "--doctest-modules":
            opts.doctest_modules = True
        elif name == "--doctest-glob":
            opts.doctest_glob.append(value)
        elif name == "--import-mode":
            opts.import_mode = value
    return opts


def addopts_args(config: ProjectConfig) -> list[str]:
    """``addopts`` from the config file followed by ``PYTEST_ADDOPTS``, as pytest prepends them."""
    out = list(config.get("addopts"))
    env = os.environ.get("PYTEST_ADDOPTS")
    if env:
        out = out + shlex.split(env)
    return out
