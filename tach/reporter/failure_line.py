"""Where in a test's own file its failure happened, read from pytest's serialised report.

A test that fails in a helper three frames down is still best pointed at from its own file:
that is the file a reviewer has open, and the one a CI annotation should mark. The line is that
of the deepest frame of the failure's traceback that lies in the test's file (pytest's crash
location when the exception was raised there), or ``None`` when the traceback never passes
through that file (a fixture of a conftest that failed, a report that is only text).

The report is the dict ``pytest_report_to_serializable`` gives: ``longrepr`` holds
``reprcrash`` (absolute path, 1-based line) and ``reprtraceback.reprentries``, whose
``reprfileloc`` paths are relative to the test process's working directory (``--tb=native``
entries carry the Python traceback's text instead).
"""

from __future__ import annotations

import os
import re
from pathlib import PurePath
from typing import Any

_NATIVE_FRAME = re.compile(r'File "(?P<path>[^"]+)", line (?P<line>\d+)')


def failure_line(
    report: dict[str, Any] | None, file: str, rootdir: str | None, cwd: str | None = None
) -> int | None:
    """The 1-based line of ``file`` (rootdir-relative) at which the failure of ``report``
    happened: the deepest traceback entry in ``file``, else the crash location if it is in
    ``file``; ``None`` when neither is."""
    if not report or not file:
        return None
    longrepr = report.get("longrepr")
    if not isinstance(longrepr, dict):
        return None
    cwd = cwd if cwd is not None else os.getcwd()
    target = os.path.normpath(os.path.join(rootdir or cwd, file))
    traceback = longrepr.get("reprtraceback")
    entries = traceback.get("reprentries") if isinstance(traceback, dict) else None
    for entry in reversed(entries if isinstance(entries, list) else []):
        for path, line in _entry_locations(entry):
            if _same_file(path, target, file, cwd):
                return line
    crash = longrepr.get("reprcrash")
    if (
        isinstance(crash, dict)
        and isinstance(crash.get("lineno"), int)
        and _same_file(str(crash.get("path") or ""), target, file, cwd)
    ):
        return int(crash["lineno"])
    return None


def _entry_locations(entry: Any) -> list[tuple[str, int]]:
    """The (path, 1-based line) locations of one traceback entry, deepest last."""
    data = entry.get("data") if isinstance(entry, dict) else None
    if not isinstance(data, dict):
        return []
    loc = data.get("reprfileloc")
    if isinstance(loc, dict) and isinstance(loc.get("lineno"), int):
        return [(str(loc.get("path") or ""), int(loc["lineno"]))]
    # --tb=native: one entry holding the whole Python traceback as text
    text = "".join(str(line) for line in data.get("lines") or ())
    return [(m["path"], int(m["line"])) for m in _NATIVE_FRAME.finditer(text)][::-1]


def _same_file(path: str, target: str, file: str, cwd: str) -> bool:
    if not path:
        return False
    if os.path.normpath(os.path.join(cwd, path)) == target:
        return True
    # A test that changed directory (monkeypatch.chdir) had its paths made relative to another
    # directory: the same file still when the path ends with the file's rootdir-relative parts.
    parts = PurePath(os.path.normpath(path)).parts
    wanted = PurePath(file).parts
    return ".." not in parts and len(parts) >= len(wanted) and parts[-len(wanted) :] == wanted
