"""Tach's per-test outcomes equal pytest's on real mini projects, in every isolation mode."""

from __future__ import annotations

import pytest

from ._run import MODES, outcomes, pytest_outcomes, run_tach


@pytest.mark.parametrize("isolation", MODES)
@pytest.mark.parametrize("project", ["run_features", "run_pitfalls"], indirect=True)
def test_outcomes_equal_pytest(project, isolation):
    expected = pytest_outcomes(project)
    events, result = run_tach(project, "--isolation", isolation, "-n", "2")
    assert result.returncode == 1, result.stderr
    assert outcomes(events) == expected
    finished = [e["id"] for e in events if e["event"] == "test_finished"]
    assert len(finished) == len(set(finished)), "a test was reported twice"
