"""Rootdir and config-file detection against pytest's own ``determine_setup``."""

from __future__ import annotations

from pathlib import Path

import pytest
from _pytest.config.findpaths import determine_setup

from tach.discovery.ini import (
    ConfigError,
    ProjectConfig,
    determine_config,
    split_pytest_args,
)

LAYOUTS: dict[str, dict[str, str]] = {
    "pytest_ini": {"pytest.ini": "[pytest]\n", "pyproject.toml": "[tool.pytest.ini_options]\n"},
    "empty_pytest_ini": {"pytest.ini": "", "tox.ini": "[pytest]\n"},
    "pyproject_ini_options": {"pyproject.toml": "[tool.pytest.ini_options]\nx = 1\n"},
    "pyproject_native": {"pyproject.toml": "[tool.pytest]\ntestpaths = ['t']\n"},
    "pyproject_without_table": {"pyproject.toml": "[project]\nname = 'x'\n",
                                "sub/tox.ini": "[pytest]\n"},
    "tox": {"tox.ini": "[tox]\n", "setup.cfg": "[tool:pytest]\n"},
    "setup_cfg": {"setup.cfg": "[tool:pytest]\ntestpaths = t\n"},
    "pytest_toml": {"pytest.toml": "[pytest]\n", "pytest.ini": "[pytest]\n"},
    "nested": {"pytest.ini": "[pytest]\n", "sub/inner/tox.ini": "[pytest]\n"},
    "setup_py_only": {"setup.py": ""},
    "nothing": {},
}


def _make(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    (root / "sub" / "inner").mkdir(parents=True, exist_ok=True)
    (root / "sub" / "inner" / "test_x.py").write_text("")


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
@pytest.mark.parametrize("args", [[], ["sub"], ["sub/inner/test_x.py"], ["sub", "sub/inner"]])
@pytest.mark.parametrize("cwd", [".", "sub"])
def test_same_rootdir_and_inifile_as_pytest(tmp_path: Path, layout: str, args: list[str],
                                            cwd: str, monkeypatch: pytest.MonkeyPatch) -> None:
    base = tmp_path / "proj"
    base.mkdir()
    _make(base, LAYOUTS[layout])
    inv = (base / cwd).resolve()
    args = [str(Path(a).relative_to(cwd)) if cwd != "." and a.startswith("sub") else a
            for a in args]
    args = [a for a in args if (inv / a).exists()]
    monkeypatch.chdir(inv)  # pytest resolves arguments against the process's cwd
    root, inipath, _cfg, _ignored = determine_setup(
        inifile=None, override_ini=None, args=args, rootdir_cmd_arg=None, invocation_dir=inv)
    ours = determine_config(args, invocation_dir=inv)
    assert ours.rootdir == root
    assert ours.inifile == inipath


def test_explicit_config_file_and_rootdir(tmp_path: Path) -> None:
    (tmp_path / "custom.ini").write_text("[pytest]\npython_files = check_*.py\n")
    (tmp_path / "other").mkdir()
    cfg = determine_config([], inifile="custom.ini", invocation_dir=tmp_path)
    assert cfg.inifile == tmp_path / "custom.ini" and cfg.rootdir == tmp_path
    assert cfg.get("python_files") == ["check_*.py"]
    cfg = determine_config([], inifile="custom.ini", rootdir="other", invocation_dir=tmp_path)
    assert cfg.rootdir == tmp_path / "other"
    with pytest.raises(ConfigError, match=r"nope\.ini"):
        determine_config([], inifile="nope.ini", invocation_dir=tmp_path)
    with pytest.raises(ConfigError, match="missing"):
        determine_config([], rootdir="missing", invocation_dir=tmp_path)


def test_ini_values_typed_like_getini(tmp_path: Path) -> None:
    cfg = ProjectConfig(tmp_path, None, {
        "python_files": "a_*.py  b_*.py", "markers": "slow: x\n  fast: y\n",
        "collect_imported_tests": "false", "usefixtures": ["a", "b"]})
    assert cfg.get("python_files") == ["a_*.py", "b_*.py"]
    assert cfg.get("markers") == ["slow: x", "fast: y"]
    assert cfg.get("collect_imported_tests") is False
    assert cfg.get("usefixtures") == ["a", "b"]
    assert cfg.get("python_classes") == ["Test"]
    assert "venv" in cfg.get("norecursedirs")


def test_split_pytest_args_reads_selection_options() -> None:
    opts = split_pytest_args(["-ra", "--showlocals", "-m", "not slow", "-k", "x", "-p",
                              "no:tmpdir", "--ignore=a", "--deselect", "t.py::x", "-r", "a",
                              "tests", "-W", "error", "-ox=1", "--capture=sys"])
    assert opts.markexpr == "not slow" and opts.keyword == "x"
    assert opts.disabled_plugins == ["tmpdir"]
    assert opts.ignore == ["a"] and opts.deselect == ["t.py::x"]
    assert opts.paths == ["tests"] and opts.overrides == ["x=1"]
