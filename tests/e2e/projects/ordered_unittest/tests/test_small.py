def test_small():
    pass
