def test_deeper(bee):
    assert bee == "beta/deeper"
