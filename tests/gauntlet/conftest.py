"""The gauntlet: fixture projects under ``projects/`` are data, not part of Tach's own suite."""

from __future__ import annotations

collect_ignore = ["projects", "stress.py", "fuzz_frames.py"]
