"""Tests that see what this directory's ``django_db_setup`` loaded."""

import pytest
from django.test import TestCase

from library.models import Branch


@pytest.mark.django_db
def test_the_seeded_rows_are_there():
    assert [str(b) for b in Branch.objects.order_by("pk")] == [
        "Central (Springfield)",
        "Riverside (Springfield)",
    ]


@pytest.mark.django_db
def test_a_change_to_the_seed():
    Branch.objects.filter(name="Central").update(city="Shelbyville")
    assert Branch.objects.get(name="Central").city == "Shelbyville"


@pytest.mark.django_db
def test_the_change_was_rolled_back():
    assert Branch.objects.get(name="Central").city == "Springfield"


class SeededTests(TestCase):
    def test_seeded_rows_in_a_test_case(self):
        self.assertEqual(Branch.objects.count(), 2)

    def test_a_branch_of_this_test(self):
        Branch.objects.create(name="Harbour", city="Springfield")
        self.assertEqual(Branch.objects.count(), 3)

    def test_the_branch_of_the_previous_test_is_gone(self):
        self.assertFalse(Branch.objects.filter(name="Harbour").exists())
