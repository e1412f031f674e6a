"""Tests without database access: pytest-django blocks it."""

import pytest
from django.conf import settings
from django.urls import reverse

from library.models import Author, Book


def test_database_access_is_blocked():
    with pytest.raises(RuntimeError, match="Database access not allowed"):
        Author.objects.count()


def test_unsaved_instances_need_no_database():
    book = Book(title="Unsaved", pages=500)
    assert book.is_long
    assert book.pk is None


def test_urls_reverse():
    assert reverse("book-list") == "/books/"
    assert reverse("author-detail", args=[7]) == "/authors/7/"


def test_settings_are_the_projects():
    assert settings.ROOT_URLCONF == "djproject.urls"
    assert set(settings.DATABASES) == {"default", "secondary"}


def test_the_settings_fixture_overrides_and_restores(settings):
    settings.ALLOWED_HOSTS = ["example.org"]
    from django.conf import settings as django_settings

    assert django_settings.ALLOWED_HOSTS == ["example.org"]


def test_the_override_did_not_leak():
    assert "example.org" not in settings.ALLOWED_HOSTS
