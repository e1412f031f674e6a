"""Classes that rely on module-level state set by the classes before them, as some real suites
do: one class switches a library into a mode, the next asserts it. pytest runs them in order in
one process; so must Tach, however long the module."""

import unittest

MODE = {"value": "plain"}


class TestA_SwitchesTheMode(unittest.TestCase):
    def test_switch(self):
        MODE["value"] = "fancy"


class TestB_SeesTheMode(unittest.TestCase):
    def test_one(self):
        self.assertEqual(MODE["value"], "fancy")

    def test_two(self):
        self.assertEqual(MODE["value"], "fancy")

    def test_three(self):
        self.assertEqual(MODE["value"], "fancy")


class TestC_SeesTheMode(unittest.TestCase):
    def test_four(self):
        self.assertEqual(MODE["value"], "fancy")

    def test_five(self):
        self.assertEqual(MODE["value"], "fancy")
