import os
import time


def slow_square(n):
    time.sleep(10)
    return n * n


def test_patch_a_function(mocker):
    sleep = mocker.patch("time.sleep")
    assert slow_square(3) == 9
    sleep.assert_called_once_with(10)


def test_patch_is_undone():
    assert not hasattr(time.sleep, "assert_called_once_with")


def test_spy(mocker):
    spy = mocker.spy(os.path, "join")
    assert os.path.join("a", "b") == "a/b"
    spy.assert_called_once_with("a", "b")


def test_patch_object_and_stub(mocker):
    stub = mocker.stub(name="callback")
    mocker.patch.object(os, "getcwd", return_value="/nowhere")
    stub(os.getcwd())
    stub.assert_called_once_with("/nowhere")


def test_a_failing_assertion_on_a_mock(mocker):
    fake = mocker.Mock()
    fake(1)
    fake.assert_called_once_with(2)
