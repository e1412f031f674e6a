import os

import pytest


def pytest_collectstart(collector):
    # The worker dies while collecting a module: no test to blame, every time.
    if isinstance(collector, pytest.Module):
        os._exit(9)
