def test_first():
    pass


def test_last():
    pass
