"""Workers are pytest-xdist's workers by name: ``worker_id``, ``testrun_uid`` and the
``PYTEST_XDIST_*`` variables (``docs/plugins.md``)."""

from __future__ import annotations

import json

import pytest

from tests.e2e._run import MODES
from tests.e2e.plugin_env import plugin_python
from tests.e2e.plugin_runs import pytest_outcomes, tach_outcomes


@pytest.mark.parametrize("isolation", MODES)
@pytest.mark.parametrize("project", ["worker_identity"], indirect=True)
def test_each_worker_is_an_xdist_worker_by_name(project, isolation):
    python = plugin_python()
    log = project / "identity.jsonl"
    expected, _ = pytest_outcomes(python, project, env={"IDENTITY_LOG": str(log)})
    serial = [json.loads(line) for line in log.read_text().splitlines()]
    assert {entry["worker_id"] for entry in serial} == {"master"}  # pytest without -n
    log.unlink()
    found, result = tach_outcomes(
        python, project, "-n", "2", "--isolation", isolation, env={"IDENTITY_LOG": str(log)}
    )
    assert found == expected, result.stderr
    entries = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(entries) == 12
    assert {entry["worker_id"] for entry in entries} <= {"gw0", "gw1"}
    assert len({entry["testrun_uid"] for entry in entries}) == 1
    for entry in entries:
        assert entry["env"] == {
            "PYTEST_XDIST_WORKER": entry["worker_id"],
            "PYTEST_XDIST_WORKER_COUNT": "2",
            "PYTEST_XDIST_TESTRUNUID": entry["testrun_uid"],
        }
    # a second run is another run
    log.unlink()
    tach_outcomes(python, project, "-n", "2", env={"IDENTITY_LOG": str(log)})
    again = {json.loads(line)["testrun_uid"] for line in log.read_text().splitlines()}
    assert again.isdisjoint({entry["testrun_uid"] for entry in entries})


@pytest.mark.parametrize("isolation", MODES)
@pytest.mark.parametrize("project", ["django_aliases"], indirect=True)
def test_a_worker_sets_up_every_database_the_run_uses(project, isolation):
    # pytest-django sets up the aliases of session.items; a worker whose first module uses
    # only 'default' still needs 'secondary' for a later module
    python = plugin_python()
    expected, _ = pytest_outcomes(python, project)
    assert set(expected.values()) == {"pass"} and len(expected) == 13
    found, result = tach_outcomes(python, project, "-n", "1", "--isolation", isolation)
    assert found == expected, result.stderr
