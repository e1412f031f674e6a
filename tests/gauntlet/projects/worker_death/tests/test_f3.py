def test_3():
    pass
