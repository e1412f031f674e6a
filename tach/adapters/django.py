"""pytest-django: every worker sets up the test databases the whole run needs, once, and
its test processes use them through connections of their own.

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

import inspect
import os
import sys
import time
import types
import unittest
import warnings
from collections.abc import Callable, Iterable, Iterator
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

    def run_last(self, plugin: Any, config: pytest.Config, paths: list[str]) -> list[str]:
        """The paths whose modules hold transactional tests.

        pytest-django orders the whole session as Django's runner does: tests in a
        ``TestCase`` transaction first, transactional ones after, because a transactional test
        empties the tables when it ends, and the rows a data migration put there are gone for
        every test after it. In a Tach worker an earlier unit's transactional test would empty
        them for a later unit's ``TestCase``: units with transactional tests are handed out
        after the others (each worker has its own test databases).
        """
        fixtures = sys.modules.get("pytest_django.fixtures")
        if fixtures is None or not django_configured():
            return []
        by_file = _modules_by_file()
        later = []
        try:
            for path in paths:
                modules = run_test_modules([Path(path)], by_file)
                if any(is_transactional(module, fixtures) for module in modules):
                    later.append(path)
        except Exception:  # a module pytest-django cannot read either: nothing to order
            return []
        return later

    def before_workers(self, plugin: Any, config: pytest.Config) -> None:
        """Fill, once in the zygote, the caches Django fills lazily in every process.

        Each is filled on first use, once per process: under pytest once per session, under
        Tach once per test process, so once per module in module mode. On django-allauth's
        suite, in module mode, these were the engine's cost over pytest's (see
        :func:`warm_django`). A cache that fails to fill is left to the test that meets it, as
        under pytest.
        """
        if django_configured():
            warm_django(config)

    def before_fork(self, plugin: Any, config: pytest.Config) -> None:
        """Close the worker's idle database connections: a test process opens its own.

        A connection shared across a fork is one server session for two processes; the first
        that closes it (``TransactionTestCase`` does) ends it for the other, whose next query
        meets a closed socket. A connection inside an atomic block stays: a ``TestCase``
        class's transaction, opened by the worker under ``--isolation test``, is what its
        tests' processes must see. (Closing an in-memory SQLite connection is a no-op.)
        """
        db = sys.modules.get("django.db")
        if db is None or not django_configured():
            return
        try:
            connections = db.connections.all(initialized_only=True)
        except TypeError:  # Django < 4.1
            connections = db.connections.all()
        for connection in connections:
            if getattr(connection, "connection", None) is not None and not getattr(
                connection, "in_atomic_block", False
            ):
                connection.close()

    def prime_also(self, plugin: Any, item: pytest.Item) -> list[str]:
        """``django_db_setup`` for a test that uses a database: pytest-django requests it
        from inside the test, where a test process would create the test databases and drop
        them again when it ends."""
        fixtures = sys.modules.get("pytest_django.fixtures")
        if fixtures is None or not hasattr(item, "_fixtureinfo") or not django_configured():
            return []
        try:
            databases, _ = fixtures._get_databases_for_test(item)
        except Exception:  # Django not configured: pytest-django says so in the test
            return []
        return ["django_db_setup"] if databases else []

    def never_prime(self, plugin: Any, item: pytest.Item) -> set[str]:
        """The live server (``live_server``, a ``LiveServerTestCase`` class) runs in a thread,
        which a fork does not carry: the test process starts it, as pytest's process does."""
        names = set(LIVE_SERVER_FIXTURES)
        cls = getattr(item, "cls", None)
        testcases = sys.modules.get("django.test.testcases")
        live = getattr(testcases, "LiveServerTestCase", None)
        if cls is not None and live is not None and issubclass(cls, live):
            names.add(f"_unittest_setUpClass_fixture_{cls.__qualname__}")
        return names


def django_configured() -> bool:
    """Whether this suite uses Django: pytest-django may be installed, and Django imported by
    something, with no settings at all."""
    conf = sys.modules.get("django.conf")
    return conf is not None and bool(conf.settings.configured)


def warm_django(config: pytest.Config) -> None:
    """Build what Django builds on first use and keeps for the life of the process.

    * The URL resolver: importing the URL conf and building its resolver (0.4 s for
      django-allauth's).
    * The template engines (``TEMPLATES`` and the form renderer's own): each imports the
      ``templatetags`` package of every installed app when it is made (some 150 imports, most
      of them failing, for django-allauth's providers).
    * The templates those engines find: compiled on first use and kept by the cached loader
      (django-allauth's 229 in 0.17 s), within a time budget.
    * The regular expressions Django's modules compile lazily (``_lazy_re_compile``): template
      syntax, validators, HTML escaping; tens of milliseconds a process.

    An engine takes its ``debug`` from ``DEBUG`` when it is made, and under pytest it is made
    in a test, after pytest-django's test environment set ``DEBUG`` (``django_debug_mode``):
    the engines are built with that value. When it cannot be known, they are left to the tests.
    """
    steps: list[Callable[[], None]] = [_warm_url_resolver, _warm_lazy_regexes]
    debug = debug_in_test_environment(config)
    if debug is not UNKNOWN:
        steps.append(_warm_templates)
    from django.conf import settings

    saved = settings.DEBUG
    if isinstance(debug, bool):
        settings.DEBUG = debug
    try:
        for step in steps:
            try:
                step()
            except Exception:  # the test that needs it meets the error, as under pytest
                continue
    finally:
        if isinstance(debug, bool):
            settings.DEBUG = saved


#: :func:`debug_in_test_environment` could not tell.
UNKNOWN: Any = object()


def debug_in_test_environment(config: pytest.Config) -> bool | Any | None:
    """The ``DEBUG`` pytest-django's ``django_test_environment`` fixture sets for the tests:
    a bool, None for ``keep``, :data:`UNKNOWN` when this pytest-django reads it otherwise."""
    try:
        from pytest_django.plugin import _get_boolean_value

        ini = config.getini("django_debug_mode")
        if ini == "keep":
            return None
        return bool(_get_boolean_value(ini, "django_debug_mode", False))
    except Exception:
        return UNKNOWN


def _warm_url_resolver() -> None:
    from django.urls import get_resolver

    get_resolver()._populate()


#: Seconds the zygote spends at most compiling a project's templates.
TEMPLATE_BUDGET = 2.0


def _warm_templates() -> None:
    """Build the template engines (``TEMPLATES``'s and the form renderer's), then compile the
    templates their cached loaders find, until :data:`TEMPLATE_BUDGET` is spent."""
    from django.forms.renderers import get_default_renderer
    from django.template import engines

    backends = [*engines.all(), getattr(get_default_renderer(), "engine", None)]
    deadline = time.monotonic() + TEMPLATE_BUDGET
    for backend in backends:
        engine = getattr(backend, "engine", None)  # a Django engine: other backends have none
        loaders = getattr(engine, "template_loaders", None) or []
        if not any(hasattr(loader, "get_template_cache") for loader in loaders):
            continue  # no cached loader: what is compiled now would not be kept
        for name in _template_names(loaders):
            if time.monotonic() > deadline:
                return
            try:
                engine.get_template(name)
            except Exception:  # a test that renders it meets the error, as under pytest
                continue


def _template_names(loaders: Iterable[Any]) -> list[str]:
    """The names of the files below the directories of ``loaders`` (and their children)."""
    names: dict[str, None] = {}
    for loader in loaders:
        for inner in getattr(loader, "loaders", None) or [loader]:
            get_dirs = getattr(inner, "get_dirs", None)
            for directory in get_dirs() if get_dirs else ():
                for root, _, files in os.walk(directory):
                    for file in files:
                        names[os.path.relpath(os.path.join(root, file), directory)] = None
    return list(names)


def _warm_lazy_regexes() -> None:
    from django.utils.functional import SimpleLazyObject, empty

    for name, module in list(sys.modules.items()):
        if not name.startswith("django.") or module is None:
            continue
        namespaces = [vars(module)]
        namespaces += [vars(v) for v in vars(module).values() if isinstance(v, type)]
        for namespace in namespaces:
            for value in list(namespace.values()):
                if (
                    type(value) is SimpleLazyObject
                    and value._wrapped is empty
                    and getattr(value._setupfunc, "__qualname__", "").startswith(
                        "_lazy_re_compile."
                    )
                ):
                    value._setup()


#: pytest-django's fixtures that start the live server.
LIVE_SERVER_FIXTURES = ("live_server", "_live_server_helper")


def run_test_modules(
    paths: list[Path], by_file: dict[Path, types.ModuleType] | None = None
) -> list[types.ModuleType]:
    """The imported modules whose file is one of ``paths`` or below one of them (``by_file``:
    :func:`_modules_by_file`, when the caller asks for many paths)."""
    if by_file is None:
        by_file = _modules_by_file()
    found = []
    for path in paths:
        if path in by_file:
            found.append(by_file[path])
        elif path.suffix != ".py":
            found.extend(m for file, m in by_file.items() if file.is_relative_to(path))
    return found


def _modules_by_file() -> dict[Path, types.ModuleType]:
    found = {}
    for module in list(sys.modules.values()):
        file = getattr(module, "__file__", None)
        if file:
            found[Path(file)] = module
    return found


def _tests_of(module: types.ModuleType) -> Iterator[tuple[Any, list[pytest.Mark]]]:
    """What pytest-django reads of a module's tests, without collecting them: each
    ``TransactionTestCase`` class (with no marks: its attributes decide), and each function and
    method with the ``django_db`` marks of its own, its class and its module."""
    from django.test import TransactionTestCase

    module_marks = list(_django_db_marks(module))
    for obj in list(vars(module).values()):
        if isinstance(obj, type) and issubclass(obj, TransactionTestCase):
            if unittest.TestLoader().getTestCaseNames(obj):  # not a base class imported
                yield obj, []
        elif isinstance(obj, type):
            class_marks = [*module_marks, *_django_db_marks(obj)]
            for member in list(vars(obj).values()):
                if _is_test_function(member):
                    yield member, [*class_marks, *_django_db_marks(member)]
        elif _is_test_function(obj):
            yield obj, [*module_marks, *_django_db_marks(obj)]


def _is_test_function(obj: Any) -> bool:
    """A function named as pytest's default ``python_functions`` names tests."""
    return inspect.isfunction(obj) and obj.__name__.startswith("test")


def run_databases(modules: Iterable[types.ModuleType], fixtures: Any) -> tuple[set[str], set[str]]:
    """The aliases the tests of ``modules`` use, and those needing serialized rollback, by
    pytest-django's own reading of a test (``_get_databases_for_test``'s rules)."""
    from django.db import DEFAULT_DB_ALIAS, connections

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
        for test, marks in _tests_of(module):
            if isinstance(test, type):
                add(getattr(test, "databases", None), getattr(test, "serialized_rollback", False))
            for mark in marks[-1:]:  # the closest mark decides, as get_closest_marker
                validated = _validated(mark, fixtures)
                if validated is not None:
                    add(validated[2], bool(validated[3]))
    return aliases, serialized


def is_transactional(module: types.ModuleType, fixtures: Any) -> bool:
    """Whether some test of ``module`` is one pytest-django runs after the others (its order
    of ``TestCase`` first, transactional tests after: ``pytest_collection_modifyitems``)."""
    from django.test import TestCase

    for test, marks in _tests_of(module):
        if isinstance(test, type):
            if not issubclass(test, TestCase):
                return True
            continue
        validated = _validated(marks[-1], fixtures) if marks else None
        if validated is not None and (validated[0] or validated[1]):
            return True
        try:
            parameters = inspect.signature(test).parameters
        except (TypeError, ValueError):
            continue
        if "transactional_db" in parameters or "live_server" in parameters:
            return True
    return False


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


def _validated(mark: pytest.Mark, fixtures: Any) -> tuple[Any, ...] | None:
    """(transaction, reset_sequences, databases, serialized_rollback[, available_apps]) of a
    ``django_db`` mark (a plain tuple in older releases of pytest-django)."""
    try:
        validated = tuple(fixtures.validate_django_db(mark))
    except Exception:  # a malformed mark: pytest-django reports it on the test itself
        return None
    return validated if len(validated) >= 4 else None
