"""Settings of the library project.

The databases come from the environment: ``TACH_TEST_DB`` is ``sqlite-memory`` (the default),
``sqlite-file`` or ``postgres`` (``TACH_TEST_PG_HOST``, ``TACH_TEST_PG_PORT``,
``TACH_TEST_PG_USER``). There are two aliases, ``default`` and ``secondary``, and no router:
every app is migrated on both.
"""

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = "library-tests-only"
DEBUG = os.environ.get("TACH_TEST_DEBUG") == "1"  # pytest-django sets False for the tests
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]

INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.sessions",
    "library",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
]
ROOT_URLCONF = "djproject.urls"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {"context_processors": ["django.template.context_processors.request"]},
    }
]
STATIC_URL = "/static/"
MEDIA_URL = "/media/"
USE_TZ = True
TIME_ZONE = "UTC"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

KIND = os.environ.get("TACH_TEST_DB", "sqlite-memory")
NAMES = {"default": "library", "secondary": "library_secondary"}


def database(alias):
    name = NAMES[alias]
    if KIND == "sqlite-memory":
        return {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}
    if KIND == "sqlite-file":
        return {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": BASE_DIR / f"{name}.sqlite3",
            "TEST": {"NAME": str(BASE_DIR / f"test_{name}.sqlite3")},
        }
    if KIND == "postgres":
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": name,
            "HOST": os.environ["TACH_TEST_PG_HOST"],
            "PORT": os.environ["TACH_TEST_PG_PORT"],
            "USER": os.environ["TACH_TEST_PG_USER"],
        }
    raise ValueError(f"TACH_TEST_DB={KIND!r}: expected sqlite-memory, sqlite-file or postgres")


DATABASES = {alias: database(alias) for alias in NAMES}
