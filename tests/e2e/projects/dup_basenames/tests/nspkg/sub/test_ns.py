import nshelper


def test_namespace_helper():
    assert nshelper.VALUE == 1
