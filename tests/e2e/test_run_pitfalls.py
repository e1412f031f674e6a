"""The pitfalls of running pytest's items in forked children, each observed end to end.

``projects/run_pitfalls`` writes a line per fixture set-up/teardown and per hook call (with the
pid) to the file named by TACH_E2E_LOG; these tests read it after a real ``python -m tach`` run.
"""

from __future__ import annotations

import collections
import shutil
from pathlib import Path

import pytest

from ._run import MODES, run_tach

WORKERS = 2
#: Tests in projects/run_pitfalls, and how many of them fail on purpose.
TESTS, FAILING = 26, 10


@pytest.fixture(params=MODES)
def run(request, tmp_path: Path):
    """Run the pitfalls project in one isolation mode; return (events, log lines)."""
    project = tmp_path / "project"
    shutil.copytree(Path(__file__).parent / "projects" / "run_pitfalls", project)
    log = tmp_path / "events.log"
    events, result = run_tach(
        project, "--isolation", request.param, "-n", str(WORKERS), env={"TACH_E2E_LOG": str(log)}
    )
    assert result.returncode == 1, result.stderr  # the noisy tests fail on purpose
    lines = [line.split() for line in log.read_text().splitlines()]
    return request.param, events, lines


def count(lines, *words):
    return sum(1 for line in lines if line[: len(words)] == list(words))


def finished(events):
    return {e["id"]: e for e in events if e["event"] == "test_finished"}


def test_plugin_wrappers_of_the_protocol_run_for_every_test(run):
    _, events, lines = run
    wrapped = {line[1] for line in lines if line[0] == "protocol-wrapper"}
    assert wrapped == set(finished(events))


def test_session_fixture_once_per_worker_and_always_torn_down(run):
    _, _, lines = run
    setups, teardowns = count(lines, "session-setup"), count(lines, "session-teardown")
    assert 1 <= setups <= WORKERS
    assert teardowns == setups


def test_module_fixture_once_per_module(run):
    _, _, lines = run
    for module in ("test_dynamic_a", "test_dynamic_b", "test_dynamic_c"):
        assert count(lines, "module-setup", module) == 1, module
        assert count(lines, "module-teardown", module) == 1, module


def test_narrowed_fixture_is_set_up_per_test_with_its_own_parameter(run):
    _, events, lines = run
    for value in ("x", "y", "z", "default"):
        assert count(lines, "narrowed-setup", value) == 1, value
        assert count(lines, "narrowed-teardown", value) == 1, value
    results = finished(events)
    assert all(
        results[f"tests/test_indirect.py::test_narrowed[{v}]"]["status"] == "pass" for v in "xyz"
    )


def test_dynamically_requested_wide_fixture_is_not_set_up_per_test(run):
    mode, _, lines = run
    setups, teardowns = count(lines, "lazy-setup"), count(lines, "lazy-teardown")
    # Six tests ask for it. The first process of a worker that meets it sets it up (and tears
    # it down); from then on the worker primes it like any other wide fixture.
    assert teardowns == setups, "a dynamically requested fixture was left without teardown"
    assert 1 <= setups <= 2 * WORKERS, f"{setups} set-ups in {mode} mode"


def test_concurrent_test_processes_never_share_capture(run):
    _, events, _ = run
    noisy = {i: e for i, e in finished(events).items() if "test_noisy_failure" in i}
    assert len(noisy) == 10
    for test_id, event in noisy.items():
        own, other = ("left", "right") if "capture_left" in test_id else ("right", "left")
        n = test_id.rsplit("[", 1)[1].rstrip("]")
        lines = event["stdout"].splitlines()
        assert lines == [f"{own} {n} {line}" for line in range(200)], test_id
        assert other not in event["stdout"]


def test_children_are_reseeded(run):
    _, _, lines = run
    values = [line[1] for line in lines if line[0] == "random"]
    assert len(values) == 2 and values[0] != values[1]


def test_a_test_that_forks_and_returns_does_not_run_a_second_session(run):
    _, events, lines = run
    results = finished(events)
    assert results["tests/test_fork.py::test_forks_and_returns"]["status"] == "pass"
    forked = [line[-1] for line in lines if line[0] == "forked-child-returns"]
    assert len(forked) == 1
    assert not [line for line in lines if line[0] == "protocol-wrapper" and line[-1] == forked[0]]
    ids = [e["id"] for e in events if e["event"] == "test_finished"]
    assert len(ids) == len(set(ids)) == TESTS


def test_warnings_recorded_in_test_processes_reach_the_report(run):
    _, events, _ = run
    warnings = [e for e in events if e["event"] == "warning"]
    assert [(w["message"], w["nodeid"], w["category"]) for w in warnings] == [
        ("mind the gap", "tests/test_warning.py::test_warns", "UserWarning")
    ]


def test_every_test_has_exactly_one_outcome(run):
    _, events, _ = run
    counts = collections.Counter(e["status"] for e in finished(events).values())
    assert counts == {"pass": TESTS - FAILING, "fail": FAILING}
    summary = next(e for e in events if e["event"] == "run_finished")
    assert (summary["passed"], summary["failed"]) == (TESTS - FAILING, FAILING)
