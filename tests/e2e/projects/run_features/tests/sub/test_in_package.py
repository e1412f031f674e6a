def test_package_fixture_in_package(package_resource, costly_session):
    assert package_resource == "pkg"


def test_plain():
    assert True
