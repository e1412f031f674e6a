def test_1():
    pass
