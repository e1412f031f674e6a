def test_integration():
    pass
