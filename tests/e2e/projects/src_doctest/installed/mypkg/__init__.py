"""A copy of the package as installed in the virtual environment (the tests put this directory
on PYTHONPATH): pytest's collection of src/ imports the package from there first."""


def where():
    return "installed"
