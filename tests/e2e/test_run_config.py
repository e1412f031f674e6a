"""``[tool.tach]`` through the real CLI: every key reaches the run, the layers above it win,
mistakes are usage errors naming the key, and ``--show-config`` says where values came from."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.parametrize("project", ["configured"], indirect=True)


def tach(cwd: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("TACH_")}
    return subprocess.run(
        [sys.executable, "-m", "tach", *args],
        cwd=cwd,
        env={**environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_every_key_of_the_table_reaches_the_run(project):
    result = tach(project)
    events = [json.loads(line) for line in result.stdout.splitlines()]  # format = "json"
    assert result.returncode == 0, result.stderr
    finished = {
        e["id"].rsplit("::")[-1]: e["status"] for e in events if e["event"] == "test_finished"
    }
    assert finished == {
        "test_env_was_set_before_conftests_loaded": "pass",
        "test_python_path_is_on_sys_path": "pass",
        "test_warm_import_was_imported_by_the_zygote": "pass",
    }
    assert events[0]["workers"] == 1
    assert (project / "reports" / "junit.xml").is_file()  # relative to the rootdir


def test_command_line_and_environment_win_over_the_table(project):
    result = tach(project, "--show-config", env={"TACH_WORKERS": "2"})
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)["settings"]  # format = "json" applies to it too
    assert shown["workers"] == {"value": 2, "source": "environment (TACH_WORKERS)"}
    assert shown["format"]["source"].startswith("[tool.tach] (")
    assert shown["env"]["value"] == {"CONFIGURED_FLAG": "from-pyproject"}
    assert shown["isolation"] == {"value": "module", "source": "default"}
    result = tach(project, "--show-config", "-n", "3", "--format=human")
    lines = [" ".join(line.split()) for line in result.stdout.splitlines()]  # as padded
    assert "workers = 3 # command line (-n/--workers)" in lines
    assert any(
        line.startswith(f'python_path = ["{project / "src"}"] # [tool.tach]') for line in lines
    )


@pytest.mark.parametrize(
    ("line", "named"),
    [
        ("colour = true", "unknown key 'colour'"),
        ('workers = "two"', 'workers must be an integer or "auto"'),
        ("timeout = [1]", "timeout must be a number of seconds"),
    ],
)
def test_mistakes_in_the_table_are_usage_errors(project, line, named):
    pyproject = project / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace("workers = 1", line))
    result = tach(project)
    assert result.returncode == 4
    assert named in result.stderr and str(pyproject) in result.stderr
    assert result.stdout == ""
