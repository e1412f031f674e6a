import os
import sys


def test_sets_env_and_sys_path():
    os.environ["GAUNTLET_LEAK"] = "1"
    sys.path.insert(0, "/gauntlet-leak")
