"""Two modules (two units) that each find /tmp empty of the other's file."""

import os
import tempfile

MARK = "/tmp/tach-hermetic-mark"


def test_private_tmp_is_fresh_a():
    assert not os.path.exists(MARK)
    with open(MARK, "w") as file:
        file.write("a")
    assert os.environ["TMPDIR"] == "/tmp" and tempfile.gettempdir() == "/tmp"


def test_tmp_path_is_kept(tmp_path):
    (tmp_path / "kept.txt").write_text("kept")
    assert (tmp_path / "kept.txt").read_text() == "kept"
    assert (tmp_path / "missing.txt").exists(), f"no missing.txt in {tmp_path}"
