def test_dynamic_one(request, module_resource):
    assert request.getfixturevalue("lazy_session") == "lazy"


def test_dynamic_two(request, session_resource):
    assert request.getfixturevalue("lazy_session") == "lazy"
