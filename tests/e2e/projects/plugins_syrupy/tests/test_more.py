def test_more(snapshot):
    assert {"more": 1} == snapshot


def test_again(snapshot):
    assert b"bytes" == snapshot
