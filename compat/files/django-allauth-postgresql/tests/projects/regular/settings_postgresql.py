"""django-allauth's regular test project on a PostgreSQL server instead of SQLite in memory.

Copied into the unpacked sdist by the compatibility harness (manifest key ``files``), which
starts a throwaway cluster for the runs (key ``services``) and names it in PGHOST, PGPORT
and PGUSER (trust authentication, no password). pytest-django creates ``test_allauth`` there.
"""

import os

from .settings import *  # noqa: F403

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": "allauth",
        "USER": os.environ.get("PGUSER", "postgres"),
        "PASSWORD": "",
        "HOST": os.environ.get("PGHOST", "127.0.0.1"),
        "PORT": os.environ.get("PGPORT", "5432"),
    }
}
