import os
import socket
import threading
import time

import pytest

pytestmark = pytest.mark.timeout(1)


def test_before():
    pass


def test_python_loop():
    while True:
        pass


def test_other_thread():
    def spin():
        while True:
            time.sleep(0.01)

    thread = threading.Thread(target=spin, name="gauntlet-spinner", daemon=True)
    thread.start()
    thread.join()


def test_sleep():
    time.sleep(3600)


def test_socket_recv():
    left, right = socket.socketpair()
    left.recv(1)


def test_pipe_read():
    read_end, write_end = os.pipe()
    os.read(read_end, 1)


@pytest.fixture
def hangs_in_setup():
    time.sleep(3600)


def test_setup_hang(hangs_in_setup):
    pass


@pytest.fixture
def hangs_in_teardown():
    yield
    time.sleep(3600)


def test_teardown_hang(hangs_in_teardown):
    pass


def test_after():
    pass
