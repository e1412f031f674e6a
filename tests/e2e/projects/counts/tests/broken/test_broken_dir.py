def test_b1():
    pass


def test_b2():
    pass
