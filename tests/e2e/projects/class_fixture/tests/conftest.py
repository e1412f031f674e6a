import pytest

SEEN = []


@pytest.fixture(autouse=True, scope="class")
def per_class(request):
    # Outside a class, pytest gives a class-scoped fixture the test's own lifetime.
    SEEN.append(request.node.name)
    yield len(SEEN)
    SEEN.pop()
