"""Django's own TestCase classes, run by pytest-django."""

from django.db import connection
from django.db.migrations.recorder import MigrationRecorder
from django.test import SimpleTestCase, TestCase

from library.models import Author, Book, Genre


class AuthorTests(TestCase):
    @classmethod
    def setUpTestData(cls):
        cls.author = Author.objects.create(name="Octavia E. Butler", born=1947)
        Book.objects.create(title="Kindred", author=cls.author, pages=264)
        Book.objects.create(title="Dawn", author=cls.author, pages=248)

    def test_class_data_is_there(self):
        self.assertEqual(Book.objects.count(), 2)
        self.assertEqual(self.author.page_count(), 512)

    def test_a_change_to_class_data(self):
        Book.objects.filter(title="Dawn").delete()
        self.author.name = "Changed"
        self.author.save()
        self.assertEqual(Book.objects.count(), 1)

    def test_the_change_was_rolled_back(self):
        self.assertEqual(Book.objects.count(), 2)
        self.assertEqual(Author.objects.get().name, "Octavia E. Butler")
        self.assertEqual(self.author.name, "Octavia E. Butler")

    def test_a_row_of_this_test(self):
        Author.objects.create(name="Only Here")
        self.assertEqual(Author.objects.count(), 2)

    def test_the_row_of_the_previous_test_is_gone(self):
        self.assertFalse(Author.objects.filter(name="Only Here").exists())

    def test_queries_are_counted(self):
        with self.assertNumQueries(1):
            list(Book.objects.all())

    def test_test_database(self):
        self.assertNotEqual(connection.settings_dict["NAME"], "library")


class GenreTests(TestCase):
    """The genres come from a data migration (none with --no-migrations)."""

    def test_genres_of_the_data_migration(self):
        applied = MigrationRecorder(connection).applied_migrations()
        names = set(Genre.objects.values_list("name", flat=True))
        if ("library", "0002_genres") in applied:
            self.assertEqual(names, {"Fiction", "History", "Science"})
        else:
            self.assertEqual(names, set())

    def test_a_genre_is_added(self):
        Genre.objects.create(name="Poetry")
        self.assertTrue(Genre.objects.filter(name="Poetry").exists())

    def test_the_added_genre_is_gone(self):
        self.assertFalse(Genre.objects.filter(name="Poetry").exists())


class NoDatabaseTests(SimpleTestCase):
    def test_simple(self):
        self.assertEqual(Book(title="X", pages=401).is_long, True)

    def test_database_access_is_refused(self):
        with self.assertRaises(Exception):
            Author.objects.count()
