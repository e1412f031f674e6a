"""``tach --watch``: runs after edits give what a cold pytest run gives, and the loop survives
what a working session throws at it."""

from __future__ import annotations

import json
import os
import pty
import select
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from tests.e2e._run import edit, marked_processes, outcomes, pytest_outcomes
from tests.gauntlet._procs import children_of, wait_until

#: How long a watch run may take to show up (a machine under load is slow, never this slow).
CYCLE_TIMEOUT_S = 90.0


class Watcher:
    """``python -m tach --watch --format=json`` in a project, read event by event."""

    def __init__(self, project: Path, *args: str) -> None:
        #: Every process of the watch inherits this variable: what is left of it can be found.
        self.mark = uuid.uuid4().hex
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tach", "--watch", "--format=json", *args],
            cwd=project,
            env={**os.environ, "TACH_WATCH_TEST_MARK": self.mark},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self.buffer = b""
        self.events: list[dict] = []

    def run(self, number: int) -> list[dict]:
        """The events of watch run ``number``, once its ``run_finished`` has come."""
        deadline = time.monotonic() + CYCLE_TIMEOUT_S
        while True:
            events = [e for e in self.events if e.get("cycle") == number]
            if any(e["event"] == "run_finished" for e in events):
                start = next(
                    i
                    for i, e in enumerate(self.events)
                    if e["event"] == "run_start" and e["cycle"] == number
                )
                end = next(
                    i
                    for i, e in enumerate(self.events)
                    if e["event"] == "run_finished" and e["cycle"] == number
                )
                return self.events[start : end + 1]
            left = deadline - time.monotonic()
            assert left > 0, f"no run {number}; stderr:\n{self.stderr_so_far()}"
            readable, _, _ = select.select([self.process.stdout], [], [], left)
            if readable:
                data = os.read(self.process.stdout.fileno(), 65536)
                assert data, f"tach --watch ended: {self.finish()}"
                self.buffer += data
                *lines, self.buffer = self.buffer.split(b"\n")
                self.events += [json.loads(line) for line in lines if line.startswith(b"{")]

    def poll(self) -> None:
        """Read what the watch has printed so far, without waiting."""
        while select.select([self.process.stdout], [], [], 0)[0]:
            data = os.read(self.process.stdout.fileno(), 65536)
            if not data:
                return
            self.buffer += data
            *lines, self.buffer = self.buffer.split(b"\n")
            self.events += [json.loads(line) for line in lines if line.startswith(b"{")]

    def stderr_so_far(self) -> str:
        self.process.kill()
        return self.process.communicate(timeout=30)[1].decode()

    def finish(self, signum: int = signal.SIGINT) -> tuple[int, str]:
        """Stop the watch with ``signum``: its exit code and stderr."""
        if self.process.poll() is None:
            self.process.send_signal(signum)
        _, err = self.process.communicate(timeout=60)
        return self.process.returncode, err.decode()

    def leftovers(self) -> list[int]:
        """Processes still running with this watch's mark."""
        return marked_processes("TACH_WATCH_TEST_MARK", self.mark)


def cold(project: Path, ids: dict[str, str]) -> dict[str, str]:
    """A cold pytest run's outcomes now, of the tests a watch run reported (a collection
    error does not stop the rest, as it does not under Tach)."""
    found = pytest_outcomes(project, "--continue-on-collection-errors")
    return {test_id: found.get(test_id, "missing under pytest") for test_id in ids}


@pytest.mark.parametrize("project", ["watch_app"], indirect=True)
@pytest.mark.parametrize("isolation", ["module", "none"])
def test_each_watch_run_agrees_with_a_cold_pytest_run_after_edits(
    project: Path, isolation: str
) -> None:
    # one worker: the order units are handed out in is the order their tests start in
    watcher = Watcher(project, "--isolation", isolation, "-n", "1")
    try:
        first = outcomes(watcher.run(1))
        assert first == pytest_outcomes(project)
        assert len(first) == 7 and set(first.values()) == {"pass"}

        # a test file: that file alone
        edit(project / "tests/test_labels.py", '"#3 EUR"', '"#3 USD"')
        events = watcher.run(2)
        assert events[0]["changed"] == ["tests/test_labels.py"]
        second = outcomes(events)
        assert set(second) == {
            "tests/test_labels.py::test_label",
            "tests/test_labels.py::test_label_number",
        }
        assert second == cold(project, second)
        assert second["tests/test_labels.py::test_label"] == "fail"

        # a project module: the tests whose imports reach it (cart imports prices), and the
        # last run's failure, first
        edit(project / "src/shop/prices.py", "units * 2", "units * 3")
        events = watcher.run(3)
        third = outcomes(events)
        assert {test_id.split("::")[0] for test_id in third} == {
            "tests/test_prices.py",
            "tests/test_cart.py",
            "tests/test_labels.py",
        }
        first_started = next(e for e in events if e["event"] == "test_start")
        assert first_started["id"].startswith("tests/test_labels.py")
        assert third == cold(project, third)
        assert third["tests/test_cart.py::test_total"] == "fail"  # the new code ran

        # a conftest: its directory's tests (and the failures)
        edit(project / "tests/sub/conftest.py", '"hello"', '"hi"')
        fourth = outcomes(watcher.run(4))
        assert "tests/sub/test_sub.py::test_greeting" in fourth
        assert "tests/test_prices.py::test_price_of_none" not in fourth
        assert fourth == cold(project, fourth)

        # a syntax error is that file's collection error; the loop goes on
        (project / "tests/test_prices.py").write_text("def test_broken(:\n    pass\n")
        fifth = outcomes(watcher.run(5))
        assert fifth["tests/test_prices.py"] == "collect_error"
        assert fifth == cold(project, fifth)

        # a conftest that no longer imports, then a new test file once it is mended
        (project / "tests/sub/conftest.py").write_text("raise ImportError('broken on purpose')\n")
        sixth = outcomes(watcher.run(6))
        assert sixth == cold(project, sixth)
        (project / "tests/sub/conftest.py").write_text(
            "import pytest\n\n@pytest.fixture\ndef greeting():\n    return 'hello'\n"
        )
        outcomes(watcher.run(7))
        (project / "tests/test_new.py").write_text("def test_new():\n    assert True\n")
        eighth = outcomes(watcher.run(8))
        assert eighth.get("tests/test_new.py::test_new") == "pass"
        assert eighth == cold(project, eighth)
    finally:
        code, err = watcher.finish()
    assert code in (0, 1, 2), err
    assert watcher.leftovers() == []


@pytest.mark.parametrize("project", ["watch_app"], indirect=True)
def test_a_burst_of_saves_is_one_run_and_changes_during_a_run_one_more(project: Path) -> None:
    gate = project.parent / "gate"  # outside the watched tree
    started = project.parent / "started"
    (project / "tests/test_gate.py").write_text(
        "import pathlib, time\n\n"
        "def test_gate():\n"
        f"    started, gate = pathlib.Path({str(started)!r}), pathlib.Path({str(gate)!r})\n"
        "    if not gate.exists():  # the second run waits for the test to open the gate\n"
        "        started.write_text('')\n"
        "        deadline = time.monotonic() + 60\n"
        "        while not gate.exists() and time.monotonic() < deadline:\n"
        "            time.sleep(0.01)\n"
    )
    gate.write_text("")
    watcher = Watcher(project, "--watch-debounce", "300")
    try:
        watcher.run(1)
        gate.unlink()
        target = project / "tests/test_gate.py"
        for count in range(100):  # a burst: one run
            target.write_text(target.read_text() + f"# save {count}\n")
        deadline = time.monotonic() + CYCLE_TIMEOUT_S
        while not started.exists():  # run 2 is under way, its test waiting
            assert time.monotonic() < deadline, watcher.stderr_so_far()
            time.sleep(0.01)
        for count in range(3):  # changes during the run: one more run after it
            path = project / "tests/test_prices.py"
            path.write_text(path.read_text() + f"# during {count}\n")
        time.sleep(1.0)  # past the debounce: the changes are gathered while run 2 waits
        gate.write_text("")
        second = watcher.run(2)
        assert second[0]["changed"] == ["tests/test_gate.py"]
        assert set(outcomes(second)) == {"tests/test_gate.py::test_gate"}
        third = watcher.run(3)
        assert third[0]["changed"] == ["tests/test_prices.py"]
        assert set(outcomes(third)) == {
            "tests/test_prices.py::test_price_of_one",
            "tests/test_prices.py::test_price_of_none",
        }
        time.sleep(1.5)  # long past the debounce: had a fourth run started, it would show
        watcher.poll()
        assert not any(e.get("cycle") == 4 for e in watcher.events)
    finally:
        code, err = watcher.finish(signal.SIGTERM)
    assert code == 2, err
    assert watcher.leftovers() == []


@pytest.mark.parametrize("project", ["watch_app"], indirect=True)
def test_watch_all_runs_every_test_on_a_change(project: Path) -> None:
    watcher = Watcher(project, "--watch-all")
    try:
        everything = set(outcomes(watcher.run(1)))
        edit(project / "tests/test_labels.py", '"#3 EUR"', '"#3 EUR"  ')
        assert set(outcomes(watcher.run(2))) == everything
    finally:
        watcher.finish()
    assert watcher.leftovers() == []


@pytest.mark.parametrize("project", ["watch_app"], indirect=True)
def test_keys_at_a_terminal_run_all_run_failed_and_quit(project: Path) -> None:
    edit(project / "tests/test_cart.py", "== 6", "== 7")
    pid, fd = pty.fork()
    if pid == 0:  # the child: tach at a terminal
        os.chdir(project)
        os.execv(sys.executable, [sys.executable, "-m", "tach", "-w", "--color=no"])
    output = b""

    def read_until(text: bytes, timeout: float = CYCLE_TIMEOUT_S) -> None:
        nonlocal output
        deadline = time.monotonic() + timeout
        while text not in output:
            left = deadline - time.monotonic()
            assert left > 0, output.decode(errors="replace")
            readable, _, _ = select.select([fd], [], [], left)
            if readable:
                try:
                    output += os.read(fd, 65536)
                except OSError:  # the terminal closed: the process ended
                    assert text in output, output.decode(errors="replace")

    try:
        read_until(b"Enter: run all, f: run failed, q: quit")
        assert b"1 failed, 6 passed" in output
        mark = len(output)
        os.write(fd, b"f")
        read_until(b"run 2: the failed tests")
        read_until(b"1 failed in", timeout=CYCLE_TIMEOUT_S)
        assert b"passed" not in output[mark:].split(b"run 2")[1].split(b"waiting")[0]
        os.write(fd, b"\r")
        read_until(b"run 3: all tests")
        read_until(b"1 failed, 6 passed", timeout=CYCLE_TIMEOUT_S)
        os.write(fd, b"q")
        _, status = os.waitpid(pid, 0)
        pid = 0
        assert os.waitstatus_to_exitcode(status) == 1  # the last run's exit code
    finally:
        if pid:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        os.close(fd)


@pytest.mark.parametrize("project", ["watch_app"], indirect=True)
def test_the_next_runs_zygote_waits_forked_and_runs_the_change(project: Path) -> None:
    lineage = project.parent / "lineage"
    test_file = project / "tests/test_lineage.py"
    test_file.write_text(
        "import os, pathlib\n\n"
        "def test_lineage():  # module isolation: test process <- worker <- run zygote\n"
        "    with open(f'/proc/{os.getppid()}/stat') as file:\n"
        "        zygote = file.read().rpartition(')')[2].split()[1]\n"
        f"    pathlib.Path({str(lineage)!r}).write_text(zygote)\n"
    )
    watcher = Watcher(project, "-n", "2")
    try:
        watcher.run(1)
        first = int(lineage.read_text())  # the first run's zygote, perhaps still exiting
        # the watch's layers: base <- session layer <- the next run's zygote, forked ahead

        def forked_ahead() -> list[int]:
            bases = children_of(watcher.process.pid)
            sessions = [pid for base in bases for pid in children_of(base)]
            return [pid for session in sessions for pid in children_of(session) if pid != first]

        ahead = wait_until(forked_ahead, CYCLE_TIMEOUT_S)
        assert ahead, "no run zygote was forked ahead"
        edit(test_file, "test process", "test's process")
        events = watcher.run(2)
        assert set(outcomes(events)) == {"tests/test_lineage.py::test_lineage"}
        assert int(lineage.read_text()) == ahead[0]
        assert events[0]["workers"] == 1  # one file: one worker of the two slots

        # a new directory with a conftest: the zygote forked ahead checks the conftests of
        # the run's plan, and finds its session layer has not loaded this one
        (project / "tests/extra").mkdir()
        (project / "tests/extra/conftest.py").write_text(
            "import pytest\n\n@pytest.fixture\ndef extra():\n    return 5\n"
        )
        (project / "tests/extra/test_extra.py").write_text(
            "def test_extra(extra):\n    assert extra == 5\n"
        )
        third = {}
        for number in (3, 4):  # the two files may come as one change or as two
            third.update(outcomes(watcher.run(number)))
            if "tests/extra/test_extra.py::test_extra" in third:
                break
        assert third["tests/extra/test_extra.py::test_extra"] == "pass"
        assert third == cold(project, third)
    finally:
        code, err = watcher.finish()
    assert code == 2, err
    assert watcher.leftovers() == []


@pytest.mark.parametrize("project", ["watch_app"], indirect=True)
def test_ctrl_c_while_a_reported_runs_zygote_still_exits_ends_the_watch(project: Path) -> None:
    # The run is reported once the run zygote's pytest session ended; its unconfigure hooks
    # and its exit come after. Here they wait for the test, which interrupts the watch then.
    exiting, gate = project.parent / "exiting", project.parent / "gate"
    with (project / "tests/conftest.py").open("a") as conftest:
        conftest.write(
            "\n\ndef pytest_unconfigure(config):\n"
            "    import os, pathlib, time\n"
            "    if os.environ.get('PYTEST_XDIST_WORKER'):\n"
            "        return  # the run zygote's alone\n"
            f"    pathlib.Path({str(exiting)!r}).write_text('')\n"
            "    deadline = time.monotonic() + 60\n"
            f"    while not pathlib.Path({str(gate)!r}).exists() and time.monotonic() < deadline:\n"
            "        time.sleep(0.01)\n"
        )
    watcher = Watcher(project)
    try:
        watcher.run(1)
        assert wait_until(exiting.exists, CYCLE_TIMEOUT_S), watcher.stderr_so_far()
        watcher.process.send_signal(signal.SIGINT)
        gate.write_text("")
        watcher.process.wait(timeout=30)  # not waiting for changes
    finally:
        code, err = watcher.finish()
    assert code == 2, err
    assert watcher.leftovers() == []
