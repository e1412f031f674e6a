import pytest

collect_ignore = ["ignored_dir"]


@pytest.fixture(scope="session")
def db():
    return {}


@pytest.fixture(autouse=True)
def env():
    return "env"


@pytest.fixture(params=["x", "y"], ids=["ex", "why"])
def letter(request):
    return request.param
