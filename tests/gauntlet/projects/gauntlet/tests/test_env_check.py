import os
import sys


def test_env_and_sys_path_are_clean():
    assert "GAUNTLET_LEAK" not in os.environ
    assert "/gauntlet-leak" not in sys.path
