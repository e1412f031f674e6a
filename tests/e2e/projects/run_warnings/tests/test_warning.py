import warnings


def test_warns():
    warnings.warn("mind the gap", UserWarning, stacklevel=1)


def test_quiet():
    pass
