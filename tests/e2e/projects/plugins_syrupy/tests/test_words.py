def test_word(snapshot):
    assert "hello" == snapshot


def test_words(snapshot):
    assert ["a", "b"] == snapshot


def test_without_snapshot():
    assert True
