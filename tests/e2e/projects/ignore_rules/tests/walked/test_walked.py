def test_walked():
    pass
