def test_py2_only():
    assert False, "collect_ignore leaves this file out"
