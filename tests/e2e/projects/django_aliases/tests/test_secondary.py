from django.contrib.auth.models import User
from django.test import TestCase


class OnBothDatabases(TestCase):
    databases = {"default", "secondary"}

    def test_secondary_has_its_own_rows(self):
        User.objects.db_manager("secondary").create_user(username="elsewhere")
        assert User.objects.using("secondary").count() == 1
        assert User.objects.count() == 0
