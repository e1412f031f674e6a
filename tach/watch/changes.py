"""Changed files under the rootdir, as batches: watchdog's events, filtered and debounced.

An editor's save is several events (a temporary file written, renamed over the original, a
backup removed) and a ``git checkout`` is hundreds: events are gathered until none has come for
the debounce time, and the batch is the set of paths that changed. Paths nobody edits by hand
(``.git``, ``.tach``, caches, virtualenvs, build directories) and what ``.gitignore`` ignores
never make a batch.
"""

from __future__ import annotations

import contextlib
import fnmatch
import os
import queue
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from tach.graph import not_source

#: The quiet time after a single file's write ended (see :meth:`ChangeFeed.take`).
SETTLE_S = 0.01


class GitIgnore:
    """What ``.gitignore`` ignores under the rootdir: ``git check-ignore`` when the rootdir is
    in a git work tree, else the rootdir's ``.gitignore`` read for plain patterns."""

    def __init__(self, rootdir: Path) -> None:
        self.rootdir = rootdir
        self.git = shutil.which("git") if _in_git_tree(rootdir) else None
        self.patterns: list[str] = []
        if self.git is None:
            try:
                lines = (rootdir / ".gitignore").read_text(encoding="utf-8").splitlines()
            except (OSError, UnicodeDecodeError):
                lines = []
            self.patterns = [
                line.strip().rstrip("/")
                for line in lines
                if line.strip() and not line.startswith(("#", "!"))
            ]

    def ignored(self, paths: list[Path]) -> set[Path]:
        if not paths:
            return set()
        if self.git is not None:
            try:
                done = subprocess.run(
                    [self.git, "check-ignore", "-z", "--stdin"],
                    input=b"\0".join(os.fsencode(p) for p in paths) + b"\0",
                    cwd=self.rootdir,
                    capture_output=True,
                    timeout=10,
                    check=False,
                )
            except (OSError, subprocess.TimeoutExpired):
                return set()
            return {Path(os.fsdecode(p)) for p in done.stdout.split(b"\0") if p}
        out = set()
        for path in paths:
            try:
                rel = path.relative_to(self.rootdir).as_posix()
            except ValueError:
                continue
            parts = rel.split("/")
            for pattern in self.patterns:
                anchored = pattern.lstrip("/")
                if (
                    fnmatch.fnmatch(rel, anchored)
                    or any(fnmatch.fnmatch(part, anchored) for part in parts)
                    or rel.startswith(anchored + "/")
                ):
                    out.add(path)
                    break
        return out


def _in_git_tree(path: Path) -> bool:
    return any((parent / ".git").exists() for parent in (path, *path.parents))


def _is_virtualenv(directory: Path, rootdir: Path) -> bool:
    for parent in (directory, *directory.parents):
        if parent == rootdir or rootdir not in parent.parents:
            return False
        if (parent / "pyvenv.cfg").exists():
            return True
    return False


class ChangeFeed:
    """Batches of changed paths under ``rootdir``, from a watchdog observer thread.

    :meth:`wake_fd` becomes readable when an event arrives, so the caller can wait for it
    beside the terminal's keys; :meth:`take` then gathers the batch.
    """

    def __init__(self, rootdir: Path, debounce: float) -> None:
        from watchdog.events import FileSystemEventHandler
        from watchdog.observers import Observer

        self.rootdir = rootdir
        self.debounce = debounce
        self.gitignore = GitIgnore(rootdir)
        #: (path, state): "done" when a write to it ended (closed after writing, or renamed
        #: into place), "left" when it was renamed away (an editor's temporary file), else "".
        self.events: queue.SimpleQueue[tuple[str, str]] = queue.SimpleQueue()
        self._read_fd, self._write_fd = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        feed = self

        class Handler(FileSystemEventHandler):
            def on_any_event(self, event) -> None:  # type: ignore[no-untyped-def]
                if event.event_type in ("opened", "closed_no_write") or event.is_directory:
                    return
                moved = event.event_type == "moved"
                src = os.fsdecode(event.src_path)
                # a write has ended: the file was closed, or renamed into place
                feed._put(src, "left" if moved else "done" if event.event_type == "closed" else "")
                if moved and event.dest_path:
                    feed._put(os.fsdecode(event.dest_path), "done")

        #: The last batch got no event after its ``settling`` call (see :meth:`take`).
        self.settled_quietly = False
        self.observer = Observer()
        self.observer.schedule(Handler(), str(rootdir), recursive=True)
        self.observer.daemon = True
        self.observer.start()

    def _put(self, path: str, state: str) -> None:
        if not_source(Path(path), self.rootdir):
            return
        self.events.put((path, state))
        with contextlib.suppress(BlockingIOError):  # a full pipe wakes the reader anyway
            os.write(self._write_fd, b"x")

    def wake_fd(self) -> int:
        return self._read_fd

    def pending(self) -> bool:
        return not self.events.empty()

    def take(self, settling: Callable[[Path], None] | None = None) -> list[Path]:
        """The batch that starts with the events already queued: gathered until the files
        have been quiet for the debounce time, filtered. May be empty (all ignored).

        ``settling`` is called with the file when the batch so far is one file whose write
        ended, before the short settle that follows; :attr:`settled_quietly` then tells
        whether the batch got no event after that call."""
        paths: dict[str, None] = {}
        written: set[str] = set()  # the files whose content changed (not temporary names)
        deadline = time.monotonic() + self.debounce
        self.settled_quietly = False
        called = False
        while True:
            try:
                path, state = self.events.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            paths[path] = None
            if state == "left":
                written.discard(path)
            else:
                written.add(path)
            # One file whose write just ended (an editor's save: closed, or renamed into
            # place) needs only a short settle; several (a checkout) wait the whole time.
            one_write = state == "done" and len(written) == 1
            quiet = SETTLE_S if one_write else self.debounce
            self.settled_quietly = one_write and not called
            deadline = time.monotonic() + min(quiet, self.debounce)
            if self.settled_quietly and settling is not None:
                called = True
                settling(Path(path))  # the settle goes on meanwhile
        self._drain_wakeups()
        found = [Path(path) for path in paths]
        found = [p for p in found if not _is_virtualenv(p.parent, self.rootdir)]
        ignored = self.gitignore.ignored(found)
        return sorted(p for p in found if p not in ignored)

    def _drain_wakeups(self) -> None:
        with contextlib.suppress(BlockingIOError):
            while os.read(self._read_fd, 4096):
                pass

    def close(self) -> None:
        self.observer.stop()
        self.observer.join(timeout=5)
        os.close(self._read_fd)
        os.close(self._write_fd)
