"""This directory's tests get the test databases with a row more: ``django_db_setup`` is
overridden to load it after pytest-django's own set-up."""

import pytest
from django.core.management import call_command


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        call_command("loaddata", "seed.json", verbosity=0)
