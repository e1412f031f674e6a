import mypkg


def test_the_tests_see_the_collected_copy():
    assert mypkg.where() == "src"


def test_the_module_came_from_src():
    assert "/src/mypkg/" in mypkg.__file__
