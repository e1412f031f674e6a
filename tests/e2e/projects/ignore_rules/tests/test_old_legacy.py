def test_legacy():
    assert False, "collect_ignore_glob leaves this file out"
