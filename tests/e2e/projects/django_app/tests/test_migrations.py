"""The test databases were made by the migrations, or without them under --no-migrations."""

import pytest
from django.db import connection
from django.db.migrations.recorder import MigrationRecorder

from library.models import Genre


@pytest.fixture
def migrations_disabled(request):
    return request.config.getoption("nomigrations")


@pytest.mark.django_db
def test_migrations_were_applied_unless_disabled(migrations_disabled):
    applied = MigrationRecorder(connection).applied_migrations()
    if migrations_disabled:
        assert ("library", "0001_initial") not in applied
    else:
        assert ("library", "0001_initial") in applied
        assert ("library", "0002_genres") in applied


@pytest.mark.django_db
def test_the_data_migration_filled_the_genres(migrations_disabled):
    names = set(Genre.objects.values_list("name", flat=True))
    assert names == (set() if migrations_disabled else {"Fiction", "History", "Science"})


@pytest.mark.django_db
def test_the_tables_exist_either_way():
    tables = connection.introspection.table_names()
    assert {"library_author", "library_book", "library_genre", "library_loan"} <= set(tables)
