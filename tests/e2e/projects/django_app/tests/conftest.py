import json
import os

import pytest
from django.db import connections
from django.test import TransactionTestCase

from library.models import Author, Book


@pytest.fixture
def author(db):
    return Author.objects.create(name="Ursula K. Le Guin", born=1929)


@pytest.fixture
def make_book(db):
    def make(title, author=None, pages=100):
        author = author or Author.objects.get_or_create(name="Anonymous")[0]
        return Book.objects.create(title=title, author=author, pages=pages)

    return make


def used_aliases(item):
    """The database aliases a test asks for, as pytest-django reads them."""
    cls = getattr(item, "cls", None)
    if cls is not None and issubclass(cls, TransactionTestCase):
        return sorted(cls.databases)
    marker = item.get_closest_marker("django_db")
    if marker is not None:
        return sorted(marker.kwargs.get("databases") or ["default"])
    if {"db", "transactional_db", "live_server"} & set(item.fixturenames):
        return ["default"]
    return []


@pytest.fixture(autouse=True)
def _record_database_names(request, worker_id):
    """With TACH_TEST_RECORD set, each test that uses a database appends what it saw there:
    the test database names of its aliases, the ``worker_id`` fixture and
    PYTEST_XDIST_WORKER."""
    yield
    path = os.environ.get("TACH_TEST_RECORD")
    aliases = used_aliases(request.node)
    if not path or not aliases:
        return
    record = {
        "test": request.node.nodeid,
        "names": {alias: str(connections[alias].settings_dict["NAME"]) for alias in aliases},
        "worker_id": worker_id,
        "xdist_worker": os.environ.get("PYTEST_XDIST_WORKER"),
        "pid": os.getpid(),
    }
    with open(path, "a") as f:
        f.write(json.dumps(record) + "\n")
