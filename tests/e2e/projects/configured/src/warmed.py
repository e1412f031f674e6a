"""Imported by the zygote (warm_imports), never by a test module."""
