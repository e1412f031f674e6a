"""Finding the processes a run started, by walking /proc from a pid we started ourselves."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable


def children_of(pid: int) -> list[int]:
    """Direct children of ``pid`` (every thread's ``children`` file)."""
    found: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as file:
                found.extend(int(word) for word in file.read().split())
        except OSError:
            continue
    return found


def descendants(pid: int) -> set[int]:
    """Every process below ``pid`` at this moment."""
    seen: set[int] = set()
    todo = [pid]
    while todo:
        for child in children_of(todo.pop()):
            if child not in seen:
                seen.add(child)
                todo.append(child)
    return seen


def alive(pid: int) -> bool:
    """Whether ``pid`` exists and is not a zombie (a zombie has ended; only its entry is left)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as file:
            stat = file.read()
    except OSError:
        return False
    return stat[stat.rindex(b")") + 2 : stat.rindex(b")") + 3] != b"Z"


def survivors(pids: Iterable[int]) -> set[int]:
    return {pid for pid in pids if alive(pid)}


def wait_until(condition: Callable[[], object], timeout: float) -> object:
    """Poll ``condition`` until it is true or ``timeout`` passes; return its last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(0.01)
