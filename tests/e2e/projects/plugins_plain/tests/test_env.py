import os


def test_ini_env_is_set():
    assert os.environ["APP_MODE"] == "testing"


def test_default_keeps_an_existing_value():
    # ``D:``: set only when the variable is not set already (the e2e test sets it for one run)
    assert os.environ["APP_DEFAULT"] == os.environ.get("EXPECTED_DEFAULT", "from-ini")


def test_expanded():
    assert os.environ["APP_PATH"] == os.environ["PWD"] + "/data"


def test_changes_stay_in_the_test(monkeypatch):
    monkeypatch.setenv("APP_MODE", "changed")
    assert os.environ["APP_MODE"] == "changed"
