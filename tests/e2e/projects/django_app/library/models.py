from django.db import models


class Author(models.Model):
    name = models.CharField(max_length=100, unique=True)
    born = models.IntegerField(null=True, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name

    def page_count(self):
        return self.books.aggregate(total=models.Sum("pages"))["total"] or 0


class Genre(models.Model):
    """Filled by a data migration."""

    name = models.CharField(max_length=50, unique=True)

    def __str__(self):
        return self.name


class Book(models.Model):
    title = models.CharField(max_length=200)
    author = models.ForeignKey(Author, related_name="books", on_delete=models.CASCADE)
    genre = models.ForeignKey(Genre, null=True, blank=True, on_delete=models.SET_NULL)
    pages = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["title"]
        constraints = [
            models.UniqueConstraint(fields=["author", "title"], name="unique_title_per_author")
        ]

    def __str__(self):
        return self.title

    @property
    def is_long(self):
        return self.pages >= 400


class Loan(models.Model):
    book = models.ForeignKey(Book, related_name="loans", on_delete=models.CASCADE)
    borrower = models.CharField(max_length=100)
    returned = models.BooleanField(default=False)


class Branch(models.Model):
    """A branch of the library: reference data, loaded from a fixture where tests need it."""

    name = models.CharField(max_length=100, unique=True)
    city = models.CharField(max_length=100)

    def __str__(self):
        return f"{self.name} ({self.city})"
