"""Inside the network namespace: only lo, loopback works, the rest fails at once."""

import ctypes
import errno
import socket
import subprocess
import sys
import time

import pytest

FAST = 2.0  # seconds: "at once", not a connect or DNS timeout


def test_only_interface_is_lo():
    assert [name for _, name in socket.if_nameindex()] == ["lo"]


@pytest.mark.parametrize(
    ("family", "address"),
    [(socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")],
    ids=["ipv4", "ipv6"],
)
def test_loopback_server_and_client(family, address):
    with socket.socket(family) as server:
        server.bind((address, 0))
        server.listen()
        with socket.create_connection(server.getsockname()[:2], timeout=FAST) as client:
            peer, _ = server.accept()
            with peer:
                client.sendall(b"ping")
                assert peer.recv(4) == b"ping"


def test_host_address_unreachable_from_python(host_server):
    started = time.monotonic()
    with pytest.raises(OSError) as info:
        socket.create_connection(host_server, timeout=30)
    assert time.monotonic() - started < FAST
    assert info.value.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH, errno.ECONNREFUSED)


def test_host_address_unreachable_from_c(host_server):
    """libc's socket() and connect() called directly, as a C extension would."""
    libc = ctypes.CDLL(None, use_errno=True)
    address, port = host_server
    fd = libc.socket(socket.AF_INET, socket.SOCK_STREAM, 0)
    assert fd >= 0
    sockaddr = (ctypes.c_ubyte * 16)()
    sockaddr[0:2] = list(socket.AF_INET.to_bytes(2, sys.byteorder))
    sockaddr[2:4] = list(port.to_bytes(2, "big"))
    sockaddr[4:8] = list(socket.inet_aton(address))
    started = time.monotonic()
    try:
        result = libc.connect(fd, ctypes.byref(sockaddr), 16)
        err = ctypes.get_errno()
    finally:
        libc.close(fd)
    assert time.monotonic() - started < FAST
    assert result == -1 and err in (errno.ENETUNREACH, errno.EHOSTUNREACH), err


def test_host_address_unreachable_from_a_subprocess(host_server):
    code = (
        "import socket, sys\n"
        "try:\n"
        f"    socket.create_connection({host_server!r}, timeout=30)\n"
        "except OSError as exc:\n"
        "    sys.exit(f'refused: {exc}')\n"
    )
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert time.monotonic() - started < FAST + 3
    assert "refused" in result.stderr


def test_name_lookup_fails_at_once():
    started = time.monotonic()
    with pytest.raises(socket.gaierror):
        socket.getaddrinfo("tach-hermetic-check.example.com", 80)
    assert time.monotonic() - started < FAST


@pytest.mark.network
def test_marked_keeps_the_host_network(host_server):
    assert len(socket.if_nameindex()) > 1
    with socket.create_connection(host_server, timeout=5) as client:
        assert client.recv(5) == b"hello"
