import os
from pathlib import Path

import pytest


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session):
    """Touch ``E2E_SESSION_FINISHED`` once a session has finished, after pytest's own cleanup
    (Tach's workers each finish a session of their own)."""
    finished = os.environ.get("E2E_SESSION_FINISHED")
    if finished:
        Path(finished).touch()
