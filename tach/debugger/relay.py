"""The supervisor's side of a debugger session: its terminal, lent to one test process.

While a session lasts, :class:`Terminal` has the terminal in raw mode (every key, Ctrl-C and
Ctrl-D included, goes to the test process's pseudo-terminal, whose line discipline and
``readline`` do the editing), and holds back what the supervisor itself writes to its fds 1 and
2 (the reporters' progress, another test's note): it goes to an anonymous memory file and is
written out when the terminal is given back. Giving it back restores the terminal's mode
exactly (``tcgetattr`` before, ``tcsetattr`` after) on every path: the session's end, the test
process's death (its end of the session's stream closes), the supervisor's own exit
(``atexit``, and :meth:`Terminal.take_back` from the run's cleanup).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import sys
import termios
import tty


def interactive(in_fd: int = 0, out_fd: int = 1) -> bool:
    """Whether this process can lend a terminal: its standard input and output are one, and
    it is in the terminal's foreground (``tach ... &`` would be stopped, SIGTTOU/SIGTTIN, as
    soon as it set the terminal's mode or read a key)."""
    if not (os.isatty(in_fd) and os.isatty(out_fd)):
        return False
    try:
        return os.tcgetpgrp(in_fd) == os.getpgrp()
    except OSError:
        return False


class Terminal:
    """The supervisor's terminal (``in_fd``, ``out_fd``), lent to one session at a time."""

    def __init__(self, in_fd: int = 0, out_fd: int = 1, err_fd: int = 2) -> None:
        self.in_fd = in_fd
        self.out_fd = out_fd
        self.err_fd = err_fd
        self.lent = False
        #: Single keys are read during the run (cbreak mode: :meth:`watch_keys`).
        self.keys = False
        self._key_mode: list[object] | None = None
        self._mode: list[object] | None = None
        #: While lent: a copy of the terminal (what the session writes to), the memory file
        #: that holds the supervisor's own output, and the fds it replaced.
        self._terminal = -1
        self._held = -1
        self._saved: list[tuple[int, int]] = []

    def size(self) -> tuple[int, int]:
        """(rows, columns) of the terminal."""
        size = shutil.get_terminal_size((80, 24))
        with contextlib.suppress(OSError):
            size = os.get_terminal_size(self.out_fd)
        return size.lines, size.columns

    def watch_keys(self) -> bool:
        """Read single keys during the run (cbreak mode: no echo, no line editing; Ctrl-C and
        Ctrl-\\ still signal); whether it could."""
        if self.keys or not interactive(self.in_fd, self.out_fd):
            return self.keys
        try:
            self._key_mode = termios.tcgetattr(self.in_fd)
            tty.setcbreak(self.in_fd, termios.TCSADRAIN)
        except termios.error:
            return False
        self.keys = True
        atexit.register(self.unwatch_keys)
        return True

    def unwatch_keys(self) -> None:
        """The terminal's mode from before :meth:`watch_keys`."""
        self.take_back()
        if self._key_mode is not None:
            with contextlib.suppress(termios.error):
                termios.tcsetattr(self.in_fd, termios.TCSADRAIN, self._key_mode)
            self._key_mode = None
        self.keys = False
        atexit.unregister(self.unwatch_keys)

    def lend(self) -> None:
        """Raw mode, and the supervisor's own output held back."""
        if self.lent:
            return
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        self._terminal = os.dup(self.out_fd)
        os.set_inheritable(self._terminal, False)
        self._held = os.memfd_create("tach-held-output", os.MFD_CLOEXEC)
        targets = [self.out_fd]
        if self.err_fd >= 0 and os.isatty(self.err_fd):
            targets.append(self.err_fd)
        for fd in targets:
            saved = os.dup(fd)
            os.set_inheritable(saved, False)
            self._saved.append((fd, saved))
            os.dup2(self._held, fd)
        try:
            self._mode = termios.tcgetattr(self.in_fd)
            tty.setraw(self.in_fd, termios.TCSADRAIN)
        except termios.error:
            self._mode = None
        self.lent = True
        atexit.register(self.take_back)

    def write(self, data: bytes) -> None:
        """Write ``data`` to the terminal itself (also while the rest is held back)."""
        fd = self._terminal if self.lent else self.out_fd
        view = memoryview(data)
        while view:
            try:
                written = os.write(fd, view)
            except InterruptedError:
                continue
            except OSError:
                return  # the terminal went away (a hang-up): nothing left to show it to
            view = view[written:]

    def note(self, text: str) -> None:
        """A line of Tach's own on the terminal, in raw mode or not."""
        self.write(f"\r\n{text}\r\n".encode())

    def take_back(self) -> None:
        """Restore the terminal's mode and write out what was held back."""
        if not self.lent:
            return
        self.lent = False
        atexit.unregister(self.take_back)
        if self._mode is not None:
            with contextlib.suppress(termios.error):
                termios.tcsetattr(self.in_fd, termios.TCSADRAIN, self._mode)
            self._mode = None
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        for fd, saved in self._saved:
            os.dup2(saved, fd)
            os.close(saved)
        self._saved = []
        os.close(self._terminal)
        self._terminal = -1
        held = os.pread(self._held, os.fstat(self._held).st_size, 0)
        os.close(self._held)
        self._held = -1
        if held:
            self.write(held)
