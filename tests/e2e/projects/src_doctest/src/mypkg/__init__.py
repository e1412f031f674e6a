"""The package under test, in a src layout.

>>> where()
'src'
"""


def where():
    return "src"
