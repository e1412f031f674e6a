import logging
import warnings

import pytest


def test_session_and_module(costly_session, module_resource):
    assert costly_session["connections"] == 1
    assert module_resource == "test_fixtures"


def test_package_fixture(package_resource):
    assert package_resource == "pkg"


@pytest.fixture
def finalized(request):
    state = {"open": True}
    request.addfinalizer(lambda: state.update(open=False))
    return state


def test_finalizer_fixture(finalized):
    assert finalized["open"]


@pytest.fixture
def doubled(request):
    return request.param * 2


@pytest.mark.parametrize("doubled", [1, 2, 3], indirect=True)
def test_indirect(doubled):
    assert doubled % 2 == 0


def test_backends(backend, costly_session):
    assert backend in ("sqlite", "postgres")


def test_capsys(capsys):
    print("hello")
    assert capsys.readouterr().out == "hello\n"


def test_capfd(capfd):
    import os

    os.write(1, b"raw\n")
    assert capfd.readouterr().out == "raw\n"


def test_caplog(caplog):
    logging.getLogger("demo").warning("careful")
    assert "careful" in caplog.text


def test_tmp_path(tmp_path):
    (tmp_path / "f").write_text("x")
    assert (tmp_path / "f").read_text() == "x"


def test_monkeypatch(monkeypatch):
    import os

    monkeypatch.setattr(os, "getcwd", lambda: "/nowhere")
    assert os.getcwd() == "/nowhere"


def test_env_from_autouse():
    import os

    assert os.environ["RUN_FEATURES"] == "1"


def test_warns():
    with pytest.warns(UserWarning, match="old"):
        warnings.warn("old api", UserWarning, stacklevel=1)


def test_emits_a_warning():
    warnings.warn("this is deprecated", DeprecationWarning, stacklevel=1)


def test_hooked_marker(request):
    assert request.node.get_closest_marker("hooked") is not None


def test_fails_with_output():
    print("some output before failing")
    assert 1 + 1 == 3


@pytest.fixture
def broken_fixture():
    raise RuntimeError("fixture setup failed")


def test_setup_error(broken_fixture):
    pass


@pytest.fixture
def broken_teardown():
    yield
    raise RuntimeError("fixture teardown failed")


def test_teardown_error(broken_teardown):
    pass
