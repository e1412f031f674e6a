"""pytest-django: every worker sets up the test databases the whole run needs.

pytest-django's ``django_db_setup`` (a session fixture) creates the test databases of the
aliases that the session's tests use, reading them from ``request.session.items``: each test's
``django_db(databases=...)`` mark or its ``TransactionTestCase``'s ``databases``. Under
pytest, and in each pytest-xdist worker, that is every test of the run. A Tach worker collects
one unit at a time, so its ``session.items`` is the unit being run when the fixture is first
set up, and a database alias used only by a later unit would have no test database.

So in a worker the aliases also come from the run's test modules, which the zygote imported
before the fork (:func:`run_test_modules`): the ``TransactionTestCase`` classes in them and
the ``django_db`` marks of their modules, classes and functions. That can name an alias no
selected test uses (under ``-k``, say), which costs the creation of its test database; it
cannot miss one a test's mark or class names. Per-worker database names are pytest-django's
own: ``config.workerinput["workerid"]`` (``gw0``, ``gw1``...) is its suffix.
"""

from __future__ import annotations

import sys
import types
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

#: The paths the zygote imported test modules from (set by the zygote before it forks).
RUN_PATHS = pytest.StashKey[list[str]]()


class DjangoAdapter:
    """Widens pytest-django's database setup to the run's tests (module docstring)."""

    plugin = "django"

    def worker_started(self, plugin: Any, config: pytest.Config) -> None:
        fixtures = sys.modules.get("pytest_django.fixtures")
        original = getattr(fixtures, "_get_databases_for_setup", None)
        if fixtures is None or original is None:
            return
        paths = [Path(p) for p in config.stash.get(RUN_PATHS, [])]

        def databases_for_setup(items: Any) -> tuple[set[str], set[str]]:
            aliases, serialized = original(items)
            try:
                more, more_serialized = run_databases(run_test_modules(paths), fixtures)
            except Exception as exc:  # say so, and set up what pytest-django found itself
                warnings.warn(
                    pytest.PytestWarning(
                        f"Tach could not read which databases the run's tests use ({exc!r}): "
                        "this worker sets up those of its first module's tests only"
                    ),
                    stacklevel=1,
                )
                return aliases, serialized
            return aliases | more, serialized | more_serialized

        fixtures._get_databases_for_setup = databases_for_setup


def run_test_modules(paths: list[Path]) -> list[types.ModuleType]:
    """The imported modules whose file is one of ``paths`` or below one of them."""
    found = []
    for module in list(sys.modules.values()):
        file = getattr(module, "__file__", None)
        if not file:
            continue
        where = Path(file)
        if any(where == path or where.is_relative_to(path) for path in paths):
            found.append(module)
    return found


def run_databases(
    modules: Iterable[types.ModuleType], fixtures: Any
) -> tuple[set[str], set[str]]:
    """The aliases the tests of ``modules`` use, and those needing serialized rollback, by
    pytest-django's own reading of a test (``_get_databases_for_test``'s rules)."""
    from django.db import DEFAULT_DB_ALIAS, connections
    from django.test import TransactionTestCase

    aliases: set[str] = set()
    serialized: set[str] = set()

    def add(databases: Any, serialized_rollback: bool) -> None:
        if databases is None:
            names = {DEFAULT_DB_ALIAS}
        elif databases == "__all__":
            names = set(connections)
        else:
            names = set(databases)
        aliases.update(names)
        if serialized_rollback:
            serialized.update(names)

    for module in modules:
        module_marks = list(_django_db_marks(module))
        for mark in module_marks:
            add(*_mark_databases(mark, fixtures))
        for obj in list(vars(module).values()):
            if isinstance(obj, type) and issubclass(obj, TransactionTestCase):
                add(getattr(obj, "databases", None), getattr(obj, "serialized_rollback", False))
                continue
            for mark in _django_db_marks(obj):
                add(*_mark_databases(mark, fixtures))
            if isinstance(obj, type):
                for member in list(vars(obj).values()):
                    for mark in _django_db_marks(member):
                        add(*_mark_databases(mark, fixtures))
    return aliases, serialized


def _django_db_marks(obj: Any) -> Iterator[pytest.Mark]:
    marks = getattr(obj, "pytestmark", None)
    if isinstance(marks, pytest.Mark):
        marks = [marks]
    if not isinstance(marks, list):
        return
    for mark in marks:
        mark = getattr(mark, "mark", mark)  # a MarkDecorator in a module's pytestmark
        if isinstance(mark, pytest.Mark) and mark.name == "django_db":
            yield mark


def _mark_databases(mark: pytest.Mark, fixtures: Any) -> tuple[Any, bool]:
    try:
        # (transaction, reset_sequences, databases, serialized_rollback[, available_apps]),
        # a plain tuple in older releases
        validated = tuple(fixtures.validate_django_db(mark))
    except Exception:  # a malformed mark: pytest-django reports it on the test itself
        return None, False
    if len(validated) < 4:
        return None, False
    return validated[2], bool(validated[3])
