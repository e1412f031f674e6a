from . import helper


def test_package(tmp_path):
    assert helper.VALUE
