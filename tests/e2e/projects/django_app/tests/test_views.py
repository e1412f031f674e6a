"""Views through the test client and the request factory."""

import json

import pytest
from django.test import TestCase

from library import views
from library.models import Author, Book


@pytest.mark.django_db
def test_health(client):
    response = client.get("/health/")
    assert response.status_code == 200
    assert response.content == b"ok"


@pytest.mark.django_db
def test_book_list(client, author, make_book):
    make_book("The Lathe of Heaven", author=author, pages=184)
    response = client.get("/books/")
    assert response.json() == {
        "books": [{"title": "The Lathe of Heaven", "author": "Ursula K. Le Guin", "pages": 184}]
    }


@pytest.mark.django_db
def test_missing_author_is_404(client):
    assert client.get("/authors/999999/").status_code == 404


def test_request_factory(rf, db, author):
    response = views.author_detail(rf.get("/"), pk=author.pk)
    assert json.loads(response.content) == {"name": "Ursula K. Le Guin", "pages": 0}


def test_admin_user(admin_user, client):
    client.force_login(admin_user)
    assert admin_user.is_superuser
    assert client.get("/health/").status_code == 200


class AuthorViewTests(TestCase):
    @classmethod
    def setUpTestData(cls):
        cls.author = Author.objects.create(name="N. K. Jemisin")
        Book.objects.create(title="The Fifth Season", author=cls.author, pages=468)

    def test_detail(self):
        response = self.client.get(f"/authors/{self.author.pk}/")
        self.assertEqual(response.json(), {"name": "N. K. Jemisin", "pages": 468})

    def test_list(self):
        self.assertContains(self.client.get("/books/"), "The Fifth Season")


@pytest.mark.django_db
def test_shelf_renders_a_template(client, author, make_book):
    make_book("the dispossessed", author=author, pages=387)
    response = client.get("/shelf/")
    assert [t.name for t in response.templates] == ["library/shelf.html"]
    assert b"The Dispossessed, 387 pages (long)" in response.content


def test_empty_shelf(rf, db):
    response = views.shelf(rf.get("/shelf/"))
    assert b"nothing on the shelf" in response.content
