import errno
import os
import socket
import time

import pytest

PORT = int(os.environ.get("GAUNTLET_PORT", "47123"))


@pytest.mark.parametrize("n", range(20))
def test_race_for_one_port(n):
    deadline = time.monotonic() + 60
    while True:
        sock = socket.socket()
        try:
            sock.bind(("127.0.0.1", PORT))
            break
        except OSError as exc:
            sock.close()
            assert exc.errno == errno.EADDRINUSE
            assert time.monotonic() < deadline, "the port never came free"
            time.sleep(0.001)
    try:
        sock.listen(1)
        client = socket.create_connection(("127.0.0.1", PORT))
        server, _ = sock.accept()
        client.sendall(b"%d" % n)
        assert server.recv(8) == b"%d" % n
        client.close()
        server.close()
    finally:
        sock.close()
