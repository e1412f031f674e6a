"""The hand-over directory: what a worker or a test process leaves for the zygote.

pytest-xdist's workers send their plugins' results to the controller (``config.workeroutput``,
``pytest_testnodedown``); Tach's processes write them into a directory the zygote made before
it forked (``tach.adapters.before_configure``), and the zygote reads them back before its
plugins' session finish (``session_finishing``). A file is one process's hand-over under a
name (the adapter's), pickled.
"""

from __future__ import annotations

import itertools
import os
import pickle
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pytest

#: The hand-over directory in ``config.stash`` (see the module docstring).
HANDOFF_KEY = pytest.StashKey[Path]()
_sequence = itertools.count()
_streams: dict[tuple[str, int], IO[bytes]] = {}


def handoff_directory(config: pytest.Config) -> Path | None:
    """The zygote's hand-over directory, or ``None`` when no adapter needs one."""
    return config.stash.get(HANDOFF_KEY, None)


def hand_over(config: pytest.Config, name: str, data: Any) -> None:
    """Pickle ``data`` into a file of its own under the hand-over directory, for the zygote
    (:func:`taken_over`). The file appears whole or not at all."""
    directory = handoff_directory(config)
    if directory is None:
        return
    path = directory / f"{name}.{os.getpid()}.{next(_sequence)}.pickle"
    partial = path.with_suffix(".partial")
    with open(partial, "wb") as file:
        pickle.dump(data, file, protocol=pickle.HIGHEST_PROTOCOL)
    os.replace(partial, path)


def hand_over_stream(config: pytest.Config, name: str, record: Any) -> None:
    """Append ``record`` to this process's stream ``name`` under the hand-over directory.

    Each record is written and flushed as it comes, so a process that dies later (a crash in
    ``--isolation none`` ends the worker) has already handed over what it recorded before.
    """
    directory = handoff_directory(config)
    if directory is None:
        return
    key = (name, os.getpid())
    file = _streams.get(key)
    if file is None:
        file = _streams[key] = open(directory / f"{name}.{os.getpid()}.stream", "ab")  # noqa: SIM115
    file.write(pickle.dumps(record, protocol=pickle.HIGHEST_PROTOCOL))
    file.flush()


def taken_over(config: pytest.Config, name: str) -> Iterator[Any]:
    """In the zygote: what processes handed over under ``name``, the oldest file first (a
    stream's records in their order; a record cut short by its process's death ends it)."""
    directory = handoff_directory(config)
    if directory is None:
        return
    paths = []
    for path in directory.glob(f"{name}.*"):
        if path.suffix in (".pickle", ".stream"):
            try:
                paths.append((path.stat().st_mtime_ns, path.name, path))
            except OSError:
                continue
    for _, _, path in sorted(paths):
        with open(path, "rb") as file:
            while True:
                try:
                    yield pickle.load(file)
                except Exception:  # the end, or a record its process did not finish
                    break
                if path.suffix == ".pickle":
                    break
