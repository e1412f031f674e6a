def test_4():
    pass
