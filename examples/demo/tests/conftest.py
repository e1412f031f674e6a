"""Fixtures of every scope: a session-wide catalogue, a store per module, a clean cart per test."""

import json

import pytest

from inventory import Store


@pytest.fixture(scope="session")
def catalogue(tmp_path_factory):
    """A catalogue file written once for the whole run (an expensive set-up in real life)."""
    path = tmp_path_factory.mktemp("catalogue") / "catalogue.json"
    path.write_text(json.dumps({"apple": 30, "pear": 45, "plum": 25}))
    return json.loads(path.read_text())


@pytest.fixture(scope="module")
def store(catalogue):
    """One stocked store per test module."""
    s = Store()
    for sku in catalogue:
        s.receive(sku, 20)
    yield s
    s.close()


@pytest.fixture
def cart():
    """An empty cart for every test."""
    return []


@pytest.fixture(autouse=True)
def _no_network(monkeypatch):
    """Tests of this library never reach the network."""
    monkeypatch.setenv("NO_PROXY", "*")
