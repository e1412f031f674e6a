import pytest
from django.contrib.auth.models import User


@pytest.mark.django_db
@pytest.mark.parametrize("n", range(12))
def test_default_database(n):
    User.objects.create(username=f"user{n}")
    assert User.objects.count() == 1
