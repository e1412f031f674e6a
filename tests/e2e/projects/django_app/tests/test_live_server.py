"""A live HTTP server on the loopback interface."""

import json
import urllib.request

import pytest
from django.test import LiveServerTestCase

from library.models import Author, Book


def get(url):
    with urllib.request.urlopen(url, timeout=30) as response:
        return response.status, response.read()


class LiveBookTests(LiveServerTestCase):
    host = "127.0.0.1"

    def test_health(self):
        status, body = get(f"{self.live_server_url}/health/")
        self.assertEqual((status, body), (200, b"ok"))

    def test_the_server_sees_the_tests_rows(self):
        author = Author.objects.create(name="Iain M. Banks")
        Book.objects.create(title="Excession", author=author, pages=451)
        status, body = get(f"{self.live_server_url}/books/")
        self.assertEqual(status, 200)
        self.assertEqual(json.loads(body)["books"][0]["title"], "Excession")

    def test_the_rows_of_the_previous_test_are_gone(self):
        status, body = get(f"{self.live_server_url}/books/")
        self.assertEqual(json.loads(body), {"books": []})


def test_the_live_server_fixture(live_server):
    Author.objects.create(name="Ann Leckie")
    status, body = get(f"{live_server.url}/health/")
    assert (status, body) == (200, b"ok")


def test_the_live_server_fixture_sees_the_tests_rows(live_server):
    author = Author.objects.create(name="Ann Leckie")
    Book.objects.create(title="Ancillary Justice", author=author, pages=386)
    status, body = get(f"{live_server.url}/books/")
    assert [b["title"] for b in json.loads(body)["books"]] == ["Ancillary Justice"]
