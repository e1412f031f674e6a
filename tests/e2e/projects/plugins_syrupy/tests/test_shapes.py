import pytest
from syrupy.extensions.json import JSONSnapshotExtension


def test_dict(snapshot):
    assert {"name": "square", "sides": 4} == snapshot


def test_two_snapshots(snapshot):
    assert [1, 2, 3] == snapshot
    assert "text" == snapshot(name="named")


@pytest.mark.parametrize("sides", [3, 5])
def test_param(snapshot, sides):
    assert {"sides": sides} == snapshot


class TestClass:
    def test_method(self, snapshot):
        assert ("a", 1) == snapshot


def test_json_file(snapshot):
    assert {"json": True} == snapshot.use_extension(JSONSnapshotExtension)
