from django.db import migrations

GENRES = ["Fiction", "History", "Science"]


def add_genres(apps, schema_editor):
    Genre = apps.get_model("library", "Genre")
    for name in GENRES:
        Genre.objects.using(schema_editor.connection.alias).create(name=name)


def remove_genres(apps, schema_editor):
    Genre = apps.get_model("library", "Genre")
    Genre.objects.using(schema_editor.connection.alias).filter(name__in=GENRES).delete()


class Migration(migrations.Migration):
    dependencies = [("library", "0001_initial")]

    operations = [migrations.RunPython(add_genres, remove_genres)]
