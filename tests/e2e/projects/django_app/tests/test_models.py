"""Models through pytest-django's ``django_db`` mark and ``db`` fixture."""

import pytest
from django.db import IntegrityError, connection, transaction

from library.models import Author, Book, Genre, Loan

pytestmark = pytest.mark.django_db


def test_an_author_is_created():
    Author.objects.create(name="Left Behind")
    assert Author.objects.filter(name="Left Behind").exists()


def test_the_author_of_the_previous_test_is_gone():
    assert not Author.objects.filter(name="Left Behind").exists()
    assert Author.objects.count() == 0


def test_str_of_each_model(make_book):
    book = make_book("Dune", pages=412)
    assert str(book) == "Dune"
    assert str(book.author) == "Anonymous"
    assert str(Genre(name="Poetry")) == "Poetry"


@pytest.mark.parametrize(("pages", "long"), [(0, False), (399, False), (400, True), (1200, True)])
def test_is_long(make_book, pages, long):
    assert make_book(f"Book of {pages}", pages=pages).is_long is long


def test_page_count_sums_the_books(author, make_book):
    make_book("A Wizard of Earthsea", author=author, pages=183)
    make_book("The Tombs of Atuan", author=author, pages=163)
    assert author.page_count() == 346


def test_page_count_of_an_author_without_books(author):
    assert author.page_count() == 0


def test_unique_title_per_author(author, make_book):
    make_book("The Dispossessed", author=author)
    with pytest.raises(IntegrityError), transaction.atomic():
        make_book("The Dispossessed", author=author)
    assert Book.objects.filter(title="The Dispossessed").count() == 1


def test_deleting_an_author_deletes_the_books_and_loans(author, make_book):
    book = make_book("Lavinia", author=author)
    Loan.objects.create(book=book, borrower="Ged")
    author.delete()
    assert Book.objects.count() == 0
    assert Loan.objects.count() == 0


def test_ordering_by_name():
    for name in ["Zola", "Austen", "Murakami"]:
        Author.objects.create(name=name)
    assert [a.name for a in Author.objects.all()] == ["Austen", "Murakami", "Zola"]


def test_the_test_database_is_in_use():
    assert connection.settings_dict["NAME"] != "library"
