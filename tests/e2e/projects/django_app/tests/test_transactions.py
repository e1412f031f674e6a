"""Transactional tests: TransactionTestCase and django_db(transaction=True)."""

import pytest
from django.db import connection, transaction
from django.test import TransactionTestCase

from library.models import Author, Book, Loan


class LoanTransactionTests(TransactionTestCase):
    def setUp(self):
        self.author = Author.objects.create(name="Terry Pratchett")
        self.book = Book.objects.create(title="Mort", author=self.author, pages=272)

    def test_a_committed_loan(self):
        with transaction.atomic():
            Loan.objects.create(book=self.book, borrower="Rincewind")
        self.assertEqual(Loan.objects.count(), 1)

    def test_a_rolled_back_loan(self):
        with self.assertRaises(ZeroDivisionError), transaction.atomic():
            Loan.objects.create(book=self.book, borrower="Vimes")
            1 / 0  # noqa: B018
        self.assertEqual(Loan.objects.count(), 0)

    def test_the_previous_tests_were_flushed(self):
        self.assertEqual(Author.objects.count(), 1)
        self.assertEqual(Loan.objects.count(), 0)

    def test_autocommit_is_on(self):
        self.assertTrue(connection.get_autocommit())


@pytest.mark.django_db(transaction=True)
def test_on_commit_runs_after_the_commit():
    done = []
    with transaction.atomic():
        Author.objects.create(name="Committed")
        transaction.on_commit(lambda: done.append("committed"))
        assert done == []
    assert done == ["committed"]


@pytest.mark.django_db(transaction=True)
def test_a_committed_row_of_this_test():
    Author.objects.create(name="Committed Elsewhere")
    assert Author.objects.filter(name="Committed Elsewhere").exists()


@pytest.mark.django_db(transaction=True)
def test_the_committed_row_of_the_previous_test_is_gone():
    assert not Author.objects.filter(name="Committed Elsewhere").exists()


def test_the_transactional_db_fixture(transactional_db):
    assert connection.get_autocommit()
    Author.objects.create(name="Autocommitted")
    assert Author.objects.count() == 1


@pytest.mark.django_db(transaction=True, reset_sequences=True)
def test_sequences_are_reset():
    assert Author.objects.create(name="First").pk == 1


def test_on_commit_callbacks_are_captured(db, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        transaction.on_commit(lambda: None)
    assert len(callbacks) == 1
