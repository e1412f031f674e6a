import os


def test_quick(tmp_path):
    (tmp_path / "quick").write_text("x")
    assert not os.environ.get("E2E_FAIL"), "failing on request"
