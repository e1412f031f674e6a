def test_2():
    pass
