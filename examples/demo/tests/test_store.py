import sys

import pytest

from inventory import OutOfStock, Store


def test_receive_and_count():
    s = Store()
    s.receive("fig", 3)
    s.receive("fig", 2)
    assert s.available("fig") == 5


def test_unknown_sku_has_no_stock(store):
    assert store.available("durian") == 0


def test_reserve_reduces_stock(store, cart):
    before = store.available("apple")
    cart.append(("apple", 2))
    assert store.reserve("apple", 2) == before - 2


def test_reserve_more_than_available(store):
    with pytest.raises(OutOfStock, match="asked for 1000"):
        store.reserve("pear", 1000)


@pytest.mark.parametrize("qty", [0, -1, -20])
def test_receive_rejects_non_positive(qty):
    with pytest.raises(ValueError):
        Store().receive("fig", qty)


@pytest.fixture(scope="class")
def shelf():
    """A shelf shared by the tests of one class."""
    s = Store()
    s.receive("plum", 5)
    return s


class TestReservations:
    def test_reservation_leaves_the_rest(self, shelf):
        before = shelf.available("plum")
        assert shelf.reserve("plum", 1) == before - 1

    def test_cannot_reserve_more_than_the_shelf_holds(self, shelf):
        with pytest.raises(OutOfStock):
            shelf.reserve("plum", 6)


@pytest.mark.skipif(sys.platform == "linux", reason="Windows file locking is not modelled here")
def test_windows_file_locking():
    raise AssertionError("only runs on Windows")


def test_store_file_is_persistent(tmp_path):
    path = str(tmp_path / "stock.db")
    s = Store(path)
    s.receive("kiwi", 4)
    s.db.commit()
    s.close()
    assert Store(path).available("kiwi") == 4
