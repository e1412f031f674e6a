import pytest


@pytest.fixture(scope="module")
def table(server):
    yield [server]


@pytest.fixture
def row(table):
    return table[0]


def test_row(row):
    assert row == "server"


@pytest.mark.parametrize("n", [1, 2])
def test_table(table, n):
    assert table


def test_note(terminal_note):
    pass


def test_note_is_captured_output(terminal_note, capsys):
    pass
