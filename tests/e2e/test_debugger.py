"""Debugging in forked, parallel tests (``docs/debugging.md``): real sessions on a pseudo-terminal.

Each run is ``tach`` in a pseudo-terminal driven by pexpect, between two ``stty -g`` of that
terminal, which must be equal: the terminal is restored on every way a session ends. Prompts are
waited for with ``expect``, never with a sleep.
"""

from __future__ import annotations

import io
import json
import os
import re
import shlex
import sys
from pathlib import Path

import jsonschema
import pexpect
import pytest

from tach.reporter.json import schema
from tests.e2e._run import MODES, outcomes, run_tach
from tests.gauntlet._procs import wait_until

PROMPT = r"\(Pdb\) "
project = pytest.mark.parametrize("project", ["debugger"], indirect=True)


class Terminal:
    """``tach ARGS`` in a pseudo-terminal, with the terminal's mode read before and after."""

    def __init__(self, cwd: Path, *args: str, env: dict[str, str] | None = None) -> None:
        tach = shlex.join([sys.executable, "-m", "tach", *args])
        script = f"stty -g; {tach}; echo tach-exit=$?; stty -g"
        environment = {k: v for k, v in os.environ.items() if k != "PYTHONBREAKPOINT"}
        environment.update({"NO_COLOR": "1", "TERM": "xterm", **(env or {})})
        self.transcript = io.StringIO()
        self.child = pexpect.spawn(
            "bash",
            ["--noprofile", "--norc", "-c", script],
            cwd=str(cwd),
            env=environment,
            encoding="utf-8",
            timeout=60,
            dimensions=(40, 120),
        )
        self.child.logfile_read = self.transcript
        self.child.expect(r"([0-9a-f]+(?::[0-9a-f]+)+)\r\n")
        self.mode_before = self.child.match.group(1)

    def expect(self, pattern: str) -> re.Match[str]:
        try:
            self.child.expect(pattern)
        except (pexpect.TIMEOUT, pexpect.EOF) as exc:
            shown = self.transcript.getvalue()
            raise AssertionError(f"{pattern!r} never came; the terminal showed:\n{shown}") from exc
        return self.child.match

    def expect_each(self, *patterns: str) -> list[re.Match[str]]:
        """Wait until each of ``patterns`` has been shown, in whatever order they come."""
        found: dict[str, re.Match[str]] = {}
        while len(found) < len(patterns):
            waiting = [p for p in patterns if p not in found]
            try:
                index = self.child.expect(waiting)
            except (pexpect.TIMEOUT, pexpect.EOF) as exc:
                shown = self.transcript.getvalue()
                message = f"{waiting!r} never came; the terminal showed:\n{shown}"
                raise AssertionError(message) from exc
            found[waiting[index]] = self.child.match
        return [found[p] for p in patterns]

    def prompt(self, pattern: str = PROMPT) -> None:
        self.expect(pattern)

    def line(self, text: str) -> None:
        self.child.sendline(text)

    def finish(self) -> tuple[int, str]:
        """Wait for tach to exit: its exit code and everything shown; the terminal's mode
        must be what it was before."""
        code = int(self.expect(r"tach-exit=(\d+)\r\n").group(1))
        mode_after = self.expect(r"([0-9a-f]+(?::[0-9a-f]+)+)\r\n").group(1)
        self.child.expect(pexpect.EOF)
        self.child.close()
        assert mode_after == self.mode_before, "the terminal's mode was not restored"
        return code, self.transcript.getvalue()

    def close(self) -> None:
        if self.child.isalive():
            self.child.terminate(force=True)


@pytest.fixture
def terminal(project: Path):
    started: list[Terminal] = []

    def start(*args: str, env: dict[str, str] | None = None) -> Terminal:
        session = Terminal(project, *args, env=env)
        started.append(session)
        return session

    yield start
    for session in started:
        session.close()


@project
@pytest.mark.parametrize("mode", MODES)
def test_print_step_and_continue(terminal, mode):
    tach = terminal("-n", "2", "--isolation", mode, "test_vars.py", "test_plain.py")
    tach.prompt()
    tach.line("p answer")
    tach.expect(r"\r\n42\r\n")
    tach.prompt()
    tach.line("n")
    tach.expect(r"-> assert answer == 43")
    tach.prompt()
    tach.line("p answer")
    tach.expect(r"\r\n43\r\n")
    tach.prompt()
    tach.line("c")
    code, shown = tach.finish()
    assert code == 0, shown
    assert "2 passed" in shown


@project
@pytest.mark.parametrize("mode", MODES)
def test_pdb_on_a_failing_assertion(terminal, mode):
    tach = terminal("-n", "2", "--isolation", mode, "--pdb", "test_failing.py", "test_plain.py")
    tach.expect("printed before the failure")  # the captured output, above the traceback
    tach.expect(r"AssertionError")
    tach.expect("entering PDB")
    tach.prompt()
    tach.line("p word")
    tach.expect(r"'hello'")
    tach.prompt()
    tach.line("c")
    code, shown = tach.finish()
    assert code == 1, shown
    assert "1 failed, 1 passed" in shown
    assert "NOT RUN" not in shown


@project
@pytest.mark.parametrize("mode", MODES)
def test_quit_at_a_post_mortem_stops_the_run(terminal, mode):
    tach = terminal("-n", "2", "--isolation", mode, "--pdb", "test_failing.py")
    tach.prompt()
    tach.line("q")
    code, shown = tach.finish()
    assert code == 2, shown
    assert "Quitting debugger" in shown
    assert "1 failed" in shown  # reported once: failed, as pytest reports it
    assert "NOT RUN test_failing.py" not in shown


@project
@pytest.mark.parametrize("mode", MODES)
def test_trace_stops_at_the_start_of_each_test(terminal, mode):
    tach = terminal("-n", "2", "--isolation", mode, "--trace", "test_failing.py")
    tach.expect(r"-> word = \"hello\"")
    tach.prompt()
    tach.line("n")
    tach.prompt()
    tach.line("p word")
    tach.expect(r"'hello'")
    tach.prompt()
    tach.line("c")
    code, shown = tach.finish()
    assert code == 1, shown
    assert "1 failed" in shown


@project
@pytest.mark.parametrize("mode", MODES)
def test_a_session_in_a_test_that_then_crashes(terminal, mode):
    tach = terminal("-n", "2", "--isolation", mode, "test_crash.py", "test_plain.py")
    tach.prompt()
    tach.line("p where")
    tach.expect(r"'before the crash'")
    tach.prompt()
    tach.line("c")
    code, shown = tach.finish()
    assert code == 1, shown
    assert "killed by signal 9 (SIGKILL)" in shown
    assert "1 failed, 1 passed" in shown


@project
@pytest.mark.parametrize("mode", MODES)
def test_a_test_killed_at_the_prompt(terminal, mode):
    tach = terminal("-n", "2", "--isolation", mode, "test_vars.py", "test_plain.py")
    tach.prompt()
    tach.line("import os, signal; os.kill(os.getpid(), signal.SIGKILL)")
    code, shown = tach.finish()  # the terminal's mode is checked there
    assert code == 1, shown
    assert "killed by signal 9 (SIGKILL)" in shown
    assert "1 failed, 1 passed" in shown


@project
@pytest.mark.parametrize("mode", MODES)
def test_two_workers_stop_at_once(terminal, mode):
    tach = terminal("-n", "2", "--isolation", mode, "test_pair_a.py", "test_pair_b.py")
    # The other worker's test stops too, and waits for its turn with a note naming it (shown
    # before or after the first session's prompt, as the two requests come).
    note, _ = tach.expect_each(
        r"test_pair_(a|b)\.py::test_(?:a|b) stopped in the debugger at test_pair_\w\.py:3; "
        r"it waits until the session of test_pair_(a|b)\.py::test_(?:a|b) ends",
        PROMPT,
    )
    other, first = note.group(1), note.group(2)
    assert {first, other} == {"a", "b"}
    tach.line("p side")
    tach.expect(rf"'side {first}'")
    tach.prompt()
    tach.line("c")
    tach.prompt()
    tach.line("p side")
    tach.expect(rf"'side {other}'")
    tach.prompt()
    tach.line("c")
    code, shown = tach.finish()
    assert code == 0, shown
    assert "2 passed" in shown


@project
@pytest.mark.parametrize("mode", MODES)
def test_ctrl_c_at_the_prompt(terminal, mode):
    tach = terminal("-n", "2", "--isolation", mode, "test_vars.py")
    tach.prompt()
    tach.child.send("p answ")
    tach.child.sendintr()
    tach.expect("--KeyboardInterrupt--")  # as pdb under pytest: the prompt again
    tach.prompt()
    tach.line("p answer")
    tach.expect(r"\r\n42\r\n")
    tach.prompt()
    tach.line("c")
    code, shown = tach.finish()
    assert code == 0, shown
    assert "1 passed" in shown


@project
def test_capture_is_suspended_and_resumed(terminal):
    tach = terminal("-n", "1", "test_capture.py")
    for _ in range(3):
        tach.prompt()
        tach.line("print('shown at the prompt')")
        tach.expect(r"\r\nshown at the prompt\r\n")
        tach.prompt()
        tach.line("c")
    code, shown = tach.finish()
    assert code == 0, shown
    assert "3 passed" in shown


@project
@pytest.mark.parametrize("mode", MODES)
def test_the_timeout_stands_still_at_the_prompt(terminal, mode):
    # The module's three tests stop one after the other, in one process but with
    # --isolation test: the next session's request can come before the last one's end was
    # read, and must neither wait for it nor start its timer again.
    tach = terminal("-n", "1", "--isolation", mode, "test_capture.py")
    for _ in range(2):
        tach.prompt()
        tach.line("c")
    tach.expect(r"test_timeout_stands_still\(\)")
    tach.prompt()
    # longer at the prompt than the test's timeout of 1 s
    tach.line("import time; time.sleep(1.5); print('still here')")
    tach.expect("still here")
    tach.prompt()
    tach.line("c")
    code, shown = tach.finish()
    assert code == 0, shown
    assert "3 passed" in shown


@project
def test_line_editing_and_history(terminal):
    tach = terminal("-n", "1", "test_vars.py")
    tach.prompt()
    tach.line("p answer + 1")
    tach.expect(r"\r\n43\r\n")
    tach.prompt()
    tach.child.send("\x1b[A")  # up: the last command, from readline's history
    tach.child.send("\x7f5\r")  # edited: "p answer + 5"
    tach.expect(r"\r\n47\r\n")
    tach.prompt()
    tach.line("c")
    code, shown = tach.finish()
    assert code == 0, shown


@project
def test_pdbcls(terminal):
    tach = terminal("-n", "1", "--pdbcls=mypdb:MyPdb", "test_vars.py")
    tach.prompt(r"\(MyPdb\) ")
    tach.line("p answer")
    tach.expect(r"\r\n42\r\n")
    tach.prompt(r"\(MyPdb\) ")
    tach.line("c")
    code, shown = tach.finish()
    assert code == 0, shown


@project
def test_pythonbreakpoint_0_passes_over_breakpoints(terminal):
    tach = terminal("-n", "1", "test_vars.py", env={"PYTHONBREAKPOINT": "0"})
    code, shown = tach.finish()
    assert code == 0, shown
    assert "Pdb" not in shown


@project
def test_debug_events_in_the_event_stream(terminal):
    tach = terminal("-n", "1", "--format=json", "test_vars.py")
    tach.prompt()
    tach.line("c")
    code, shown = tach.finish()
    assert code == 0, shown
    events = [
        json.loads(line)
        for line in shown.replace("\r\n", "\n").splitlines()
        if line.startswith('{"event":"debug_')
    ]
    assert [e["event"] for e in events] == ["debug_start", "debug_end"]
    start, end = events
    assert start["id"] == end["id"] == "test_vars.py::test_breakpoint"
    assert start["where"] == "test_vars.py:3"
    assert start["how"] == "breakpoint"
    assert end["duration_ms"] >= 0
    validator = jsonschema.Draft202012Validator(schema())
    for event in events:
        validator.validate(event)


@project
def test_without_a_terminal_a_breakpoint_fails_its_test(project):
    events, result = run_tach(project, "-n", "2", "test_vars.py", "test_plain.py")
    assert result.returncode == 1, result.stderr
    assert outcomes(events) == {
        "test_vars.py::test_breakpoint": "fail",
        "test_plain.py::test_plain": "pass",
    }
    failed = next(e for e in events if e["event"] == "test_finished" and e["status"] == "fail")
    assert "reached at test_vars.py:3" in failed["message"]
    assert "no terminal to debug on" in failed["message"]
    assert "BdbQuit" not in result.stdout + result.stderr


@project
@pytest.mark.parametrize("option", ["--pdb", "--trace"])
def test_without_a_terminal_pdb_is_a_usage_error(project, option):
    events, result = run_tach(project, option, "test_vars.py")
    assert result.returncode == 4
    assert f"{option} needs a terminal to debug on" in result.stderr
    assert not any(e["event"] == "test_finished" for e in events)


@project
@pytest.mark.parametrize("how", ["key", "SIGQUIT"])
def test_what_each_worker_runs_now(terminal, project, how):
    release, started = project / "release", project / "started"
    tach = terminal(
        "-n",
        "2",
        "--format=json",
        "test_stuck.py",
        "test_plain.py",
        env={"STUCK_RELEASE": str(release), "STUCK_STARTED": str(started)},
    )
    # The supervisor knows the test runs (the event stream, on the terminal too, says so),
    # and the test is where its stack is to show it.
    tach.expect(r'"event":"test_start","id":"test_stuck\.py::test_stuck"')
    assert wait_until(started.exists, 60), "the stuck test never started waiting"
    if how == "key":
        tach.child.send("s")
    else:
        tach.child.sendcontrol("\\")  # the terminal sends SIGQUIT
    tach.expect("what each worker runs now")
    tach.expect(r"worker \d \(pid \d+\): test_stuck\.py::test_stuck \(for [\d.]+ s\)")
    tach.expect(r'test_stuck\.py", line 9 in wait_for')
    tach.expect(r'test_stuck\.py", line 13 in test_stuck')
    release.touch()  # the run goes on: the test ends by itself
    code, shown = tach.finish()
    assert code == 0, shown
    assert "2 passed" in shown


@project
def test_ctrl_c_during_the_run_restores_the_terminal(terminal, tmp_path):
    # A run on a terminal reads single keys (cbreak mode) while it lasts; an interrupt ends it
    # with the terminal as it was.
    tach = terminal(
        "-n",
        "2",
        "--format=json",
        "test_stuck.py",
        env={"STUCK_RELEASE": "/nonexistent", "STUCK_STARTED": str(tmp_path / "started")},
    )
    tach.expect(r'"event":"test_start","id":"test_stuck\.py::test_stuck"')
    tach.child.sendintr()
    code, shown = tach.finish()
    assert code == 2, shown
    assert "KeyboardInterrupt" in shown


@project
def test_in_the_background_a_breakpoint_fails_its_test(project):
    # ``tach ... &`` from an interactive shell: its terminal is not its to take (setting the
    # terminal's mode would stop it with SIGTTOU), so it debugs as a run without a terminal.
    environment = {k: v for k, v in os.environ.items() if k != "PYTHONBREAKPOINT"}
    environment.update({"NO_COLOR": "1", "TERM": "xterm", "PS1": "shell> "})
    shell = pexpect.spawn(
        "bash",
        ["--noprofile", "--norc", "-i"],
        cwd=str(project),
        env=environment,
        encoding="utf-8",
        timeout=60,
    )
    transcript = io.StringIO()
    shell.logfile_read = transcript
    try:
        shell.expect("shell> ")
        tach = shlex.join([sys.executable, "-m", "tach", "-n", "2", "test_vars.py"])
        shell.sendline(f"{tach} & wait $!; echo bg-exit=$?")
        shell.expect(r"bg-exit=(\d+)")
        assert shell.match.group(1) == "1", transcript.getvalue()
        assert "no terminal to debug on" in transcript.getvalue()
    finally:
        shell.terminate(force=True)
