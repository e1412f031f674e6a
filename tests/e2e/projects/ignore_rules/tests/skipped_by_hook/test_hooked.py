def test_hooked():
    assert False, "pytest_ignore_collect leaves this directory out"
