"""A page in a real headless browser (Debian's ``chromium``), driven over the DevTools protocol.

The protocol runs over a pipe (``--remote-debugging-pipe``: the browser reads commands from
its fd 3 and writes answers and events to its fd 4, each a JSON text ended by a NUL), so no
port and no WebSocket client are needed. Every wait has a deadline and ends on the event it
waits for, never on a sleep.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import select
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

DEADLINE = 60.0


class BrowserError(Exception):
    """The browser did not answer in time, or answered with an error."""


class Browser:
    """One headless Chromium with one page, attached in flat mode (a ``sessionId``)."""

    def __init__(self, profile: Path, width: int = 1400, height: int = 1000) -> None:
        chromium = shutil.which("chromium") or shutil.which("chromium-browser")
        assert chromium is not None, "install Debian's chromium package (.ci/run does)"
        commands_read, self._commands = os.pipe()
        self._answers, answers_write = os.pipe()

        def to_fds_3_and_4() -> None:
            # above 4 first, so that neither dup2 closes the other's source
            read = fcntl.fcntl(commands_read, fcntl.F_DUPFD, 10)
            write = fcntl.fcntl(answers_write, fcntl.F_DUPFD, 10)
            os.dup2(read, 3)
            os.dup2(write, 4)

        self.process = subprocess.Popen(
            [
                chromium,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--remote-debugging-pipe",
                f"--user-data-dir={profile}",
                f"--window-size={width},{height}",
                "about:blank",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            pass_fds=(3, 4),
            preexec_fn=to_fds_3_and_4,
        )
        os.close(commands_read)
        os.close(answers_write)
        self._buffer = b""
        self._next_id = 0
        #: Every event the browser sent, in order (method, params, sessionId).
        self.events: list[dict[str, Any]] = []
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.call("Target.attachToTarget", targetId=target, flatten=True)[
            "sessionId"
        ]
        for domain in ("Runtime", "Log", "Page"):
            self.call(f"{domain}.enable", session=self.session)
        self.call(
            "Emulation.setDeviceMetricsOverride",
            session=self.session,
            width=width,
            height=height,
            deviceScaleFactor=1,
            mobile=False,
        )

    # -- the protocol -------------------------------------------------------------------------

    def call(self, method: str, session: str | None = None, **params: Any) -> dict[str, Any]:
        """Send a command and wait for its answer (events that come first are kept)."""
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params}
        if session is not None:
            message["sessionId"] = session
        os.write(self._commands, json.dumps(message).encode() + b"\0")
        answer = self._wait(lambda m: m.get("id") == message["id"], f"the answer to {method}")
        if "error" in answer:
            raise BrowserError(f"{method}: {answer['error']}")
        return answer.get("result", {})

    def wait_event(self, method: str) -> dict[str, Any]:
        """The first event ``method`` of the page (already received, or the next one)."""
        for event in self.events:
            if event.get("method") == method and event.get("sessionId") == self.session:
                return event
        return self._wait(
            lambda m: m.get("method") == method and m.get("sessionId") == self.session,
            f"the event {method}",
        )

    def _wait(self, wanted: Any, what: str) -> dict[str, Any]:
        deadline = time.monotonic() + DEADLINE
        while True:
            while b"\0" in self._buffer:
                raw, self._buffer = self._buffer.split(b"\0", 1)
                message = json.loads(raw)
                if "method" in message:
                    self.events.append(message)
                if wanted(message):
                    return message
            left = deadline - time.monotonic()
            if left <= 0 or self.process.poll() is not None:
                raise BrowserError(f"no {what} within {DEADLINE:.0f} s (browser {self.process})")
            ready, _, _ = select.select([self._answers], [], [], left)
            if ready:
                chunk = os.read(self._answers, 1 << 20)
                if not chunk:
                    raise BrowserError(f"the browser closed its pipe before {what}")
                self._buffer += chunk

    # -- what the tests use -------------------------------------------------------------------

    def open(self, url: str) -> None:
        """Load ``url`` and wait until its load event."""
        self.call("Page.navigate", session=self.session, url=url)
        self.wait_event("Page.loadEventFired")

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (an exception is an error)."""
        result = self.call(
            "Runtime.evaluate",
            session=self.session,
            expression=expression,
            returnByValue=True,
            awaitPromise=True,
        )
        if "exceptionDetails" in result:
            raise BrowserError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def problems(self) -> list[str]:
        """What the page reported as wrong: console errors and warnings, uncaught exceptions,
        log entries of level error (a refused script or style, a failed load), dialogs."""
        found = []
        for event in self.events:
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.consoleAPICalled" and params.get("type") in (
                "error",
                "warning",
                "assert",
            ):
                found.append(f"console.{params['type']}: {params.get('args')}")
            elif method == "Runtime.exceptionThrown":
                found.append(f"exception: {params.get('exceptionDetails')}")
            elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
                found.append(f"log: {params['entry'].get('text')}")
            elif method == "Page.javascriptDialogOpening":
                found.append(f"dialog: {params.get('message')}")
        return found

    def screenshot(self, selector: str, path: Path) -> tuple[int, int]:
        """A PNG of the element ``selector`` written to ``path``; its width and height. The
        element is scrolled into view and captured there (captured beyond the viewport, the
        SVG's text was left out), so it must fit in the window."""
        box = self.evaluate(
            f"(() => {{ const e = document.querySelector({json.dumps(selector)}); "
            "e.scrollIntoView(); const r = e.getBoundingClientRect(); "
            "return {x: r.left + window.scrollX, "
            "y: r.top + window.scrollY, width: r.width, height: r.height}; })()"
        )
        shot = self.call(
            "Page.captureScreenshot",
            session=self.session,
            format="png",
            captureBeyondViewport=False,
            clip={**box, "scale": 1},
        )
        data = base64.b64decode(shot["data"])
        path.write_bytes(data)
        assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
        return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")

    def close(self) -> None:
        with contextlib.suppress(BrowserError):  # it may be gone already
            self.call("Browser.close")
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        os.close(self._commands)
        os.close(self._answers)
