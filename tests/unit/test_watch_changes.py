"""The change feed's batches, and the call it makes while a single write settles."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tach.watch.changes import ChangeFeed

#: How long the observer may take to see a write (a loaded machine is slow, never this slow).
EVENT_TIMEOUT_S = 30.0


def wait_for_event(feed: ChangeFeed) -> None:
    deadline = time.monotonic() + EVENT_TIMEOUT_S
    while not feed.pending():
        assert time.monotonic() < deadline, "the observer saw no write"
        time.sleep(0.001)


@pytest.fixture
def feed(tmp_path: Path):
    (tmp_path / "tests").mkdir()
    feed = ChangeFeed(tmp_path, debounce=0.3)
    yield feed
    feed.close()


def test_one_write_is_announced_while_it_settles(feed: ChangeFeed, tmp_path: Path) -> None:
    target = tmp_path / "tests/test_a.py"
    target.write_text("def test_a():\n    pass\n")
    wait_for_event(feed)
    settling: list[Path] = []
    assert feed.take(settling.append) == [target]
    assert settling == [target]
    assert feed.settled_quietly


def test_a_write_while_it_settles_is_not_quiet(feed: ChangeFeed, tmp_path: Path) -> None:
    target, other = tmp_path / "tests/test_a.py", tmp_path / "tests/test_b.py"
    target.write_text("def test_a():\n    pass\n")
    wait_for_event(feed)

    def settling(path: Path) -> None:
        other.write_text("def test_b():\n    pass\n")
        wait_for_event(feed)  # the next event is queued before the settle can end

    assert feed.take(settling) == [target, other]
    assert not feed.settled_quietly
