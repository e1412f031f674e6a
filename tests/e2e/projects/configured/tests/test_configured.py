import sys

from conftest import FLAG_AT_IMPORT


def test_env_was_set_before_conftests_loaded():
    assert FLAG_AT_IMPORT == "from-pyproject"


def test_python_path_is_on_sys_path():
    import helper

    assert helper.VALUE == "helper from src"


def test_warm_import_was_imported_by_the_zygote():
    assert "warmed" in sys.modules


def test_excluded_by_addopts():
    raise AssertionError("addopts of [tool.tach] deselect this test")
