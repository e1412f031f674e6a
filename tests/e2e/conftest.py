"""E2E helpers: the mini projects under ``projects/`` are data, not part of Tach's own suite."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

collect_ignore = ["projects"]

PROJECTS = Path(__file__).parent / "projects"


@pytest.fixture
def project(tmp_path: Path, request: pytest.FixtureRequest) -> Path:
    """A fresh copy of the project named by the test's ``project_name`` parameter."""
    name = request.param
    dest = tmp_path / name
    shutil.copytree(PROJECTS / name, dest)
    return dest
