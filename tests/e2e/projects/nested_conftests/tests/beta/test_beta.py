def test_beta(bee):
    assert bee == "beta"
