import pytest


@pytest.fixture
def db(db):
    return db


class TestSub:
    @pytest.fixture(autouse=True)
    def class_auto(self):
        pass

    def test_override(self, db):
        pass
