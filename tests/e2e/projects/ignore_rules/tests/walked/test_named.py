def test_named():
    pass
