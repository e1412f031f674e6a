import os

MARK = "/tmp/tach-hermetic-mark"


def test_private_tmp_is_fresh_b():
    assert not os.path.exists(MARK)
    with open(MARK, "w") as file:
        file.write("b")


def test_files_keep_the_users_ownership(tmp_path):
    path = tmp_path / "owned"
    path.write_text("x")
    assert path.stat().st_uid == os.getuid() == int(os.environ["HERMETIC_UID"])
