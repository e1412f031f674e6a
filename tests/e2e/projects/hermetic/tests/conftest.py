"""What the e2e test tells the project: the host's server (address and port), where to record."""

import os

import pytest


@pytest.fixture
def host_server():
    """(address, port) of a server the e2e test runs on the host's own non-loopback address."""
    address = os.environ.get("HERMETIC_HOST_ADDR")
    if not address:
        pytest.skip("HERMETIC_HOST_ADDR not set")
    return address, int(os.environ["HERMETIC_HOST_PORT"])
