"""A small package whose modules the tests import directly and through each other."""
