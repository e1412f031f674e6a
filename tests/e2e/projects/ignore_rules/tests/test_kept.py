def test_kept():
    pass


def test_kept_too():
    pass
