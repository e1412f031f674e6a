import sys

# Computed at run time: static discovery cannot tell which files these leave out.
collect_ignore = []
if sys.version_info >= (3, 0):
    collect_ignore.append("test_py2_only.py")
collect_ignore_glob = ["*_legacy.py"]


def pytest_ignore_collect(collection_path, config):
    if collection_path.name == "skipped_by_hook":
        return True
    return None
