"""Two databases: ``default`` and ``secondary``."""

import pytest
from django.db import connections
from django.test import TestCase, TransactionTestCase

from library.models import Author, Book


@pytest.mark.django_db(databases=["default", "secondary"])
def test_rows_go_to_the_database_they_are_saved_to():
    Author.objects.using("secondary").create(name="Only Secondary")
    assert Author.objects.using("secondary").count() == 1
    assert Author.objects.using("default").count() == 0


@pytest.mark.django_db(databases=["default", "secondary"])
def test_the_secondary_row_of_the_previous_test_is_gone():
    assert not Author.objects.using("secondary").filter(name="Only Secondary").exists()


@pytest.mark.django_db(databases=["default", "secondary"])
def test_both_are_test_databases():
    names = {alias: connections[alias].settings_dict["NAME"] for alias in ("default", "secondary")}
    assert names["default"] != names["secondary"]
    for name in names.values():
        assert name not in ("library", "library_secondary")


@pytest.mark.django_db
def test_the_secondary_database_is_refused_without_asking():
    with pytest.raises(Exception, match="not allowed"):
        Author.objects.using("secondary").count()


@pytest.mark.django_db(databases=["default", "secondary"], transaction=True)
def test_transactional_on_both():
    Author.objects.using("secondary").create(name="Committed Secondary")
    assert Author.objects.using("secondary").count() == 1


class BothDatabasesTests(TestCase):
    databases = {"default", "secondary"}

    @classmethod
    def setUpTestData(cls):
        Author.objects.using("secondary").create(name="Class Secondary")
        Author.objects.create(name="Class Default")

    def test_class_data_in_both(self):
        self.assertEqual(Author.objects.using("secondary").get().name, "Class Secondary")
        self.assertEqual(Author.objects.get().name, "Class Default")

    def test_a_book_on_secondary(self):
        author = Author.objects.using("secondary").get()
        Book.objects.using("secondary").create(title="Here", author=author)
        self.assertEqual(Book.objects.using("secondary").count(), 1)

    def test_the_book_is_gone(self):
        self.assertEqual(Book.objects.using("secondary").count(), 0)


class BothDatabasesTransactionTests(TransactionTestCase):
    databases = {"default", "secondary"}

    def test_flushed_between_tests(self):
        self.assertEqual(Author.objects.using("secondary").count(), 0)
        Author.objects.using("secondary").create(name="Flushed Later")

    def test_flushed_between_tests_again(self):
        self.assertEqual(Author.objects.using("secondary").count(), 0)
        Author.objects.using("secondary").create(name="Flushed Later")
