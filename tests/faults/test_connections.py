"""Issue 16, item 6: connections kept tidy by the handshake, idle and keepalive limits.

Raw sockets that connect and send nothing, send only the HTTP/2 preface, or finish the
handshake and then make no call, are closed by the server within its limits
(`--handshake-seconds`, `--connection-idle-seconds`), and its open files go back to what
they were.
"""

from __future__ import annotations

import os
import socket
import time

import pytest
from sector_credit.server import settings as settings_mod
from sector_credit.server.app import connection_options
from service_harness import running_server, taxi

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
EMPTY_SETTINGS = (
    b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"  # length 0, type SETTINGS, no flags, stream 0
)
HANDSHAKE_S = 2
IDLE_S = 3

SENDS = {  # what a connection sends: the limit that must close it
    "nothing": (b"", HANDSHAKE_S),
    "the preface only": (PREFACE, HANDSHAKE_S),
    "preface and settings, then no call": (PREFACE + EMPTY_SETTINGS, IDLE_S),
}


def open_files(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def closed_after(sock: socket.socket, limit: float) -> float:
    """Seconds until the server closed `sock` (reads whatever frames it sends first)."""
    start = time.monotonic()
    sock.settimeout(limit + 10)
    try:
        while sock.recv(65536):
            pass
    except (ConnectionResetError, TimeoutError):
        pass
    return time.monotonic() - start


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    tmp = tmp_path_factory.mktemp("connections")
    with running_server(
        f"sqlite:///{tmp / 'audit.db'}",
        tmp / "server.log",
        "--handshake-seconds",
        str(HANDSHAKE_S),
        "--connection-idle-seconds",
        str(IDLE_S),
        metrics=False,
    ) as s:
        yield s


@pytest.mark.parametrize("sends", list(SENDS))
def test_a_connection_that_makes_no_call_is_closed_within_its_limit(server, sends: str) -> None:  # type: ignore[no-untyped-def]
    data, limit = SENDS[sends]
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(data)
        elapsed = closed_after(sock, limit)
    assert limit - 0.5 <= elapsed <= limit + 4, elapsed


def test_two_hundred_idle_connections_leave_no_open_files(server) -> None:  # type: ignore[no-untyped-def]
    assert server.stub.Evaluate(taxi(), timeout=10).evaluation.name  # the server's own files open
    server.close_channel()
    time.sleep(IDLE_S + 2)
    baseline = open_files(server.pid)
    socks = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(200)]
    for i, sock in enumerate(socks):
        sock.sendall(list(SENDS.values())[i % 3][0])
    time.sleep(0.5)
    assert open_files(server.pid) >= baseline + 150  # accepted, held for now
    deadline = time.monotonic() + max(HANDSHAKE_S, IDLE_S) + 6
    while open_files(server.pid) > baseline + 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    for sock in socks:
        sock.close()
    assert open_files(server.pid) <= baseline + 2


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (
            [],
            {
                "grpc.server_handshake_timeout_ms": 10_000,
                "grpc.max_connection_idle_ms": 300_000,
                "grpc.keepalive_time_ms": 60_000,
            },
        ),
        (
            [
                "--handshake-seconds",
                "2",
                "--connection-idle-seconds",
                "3.5",
                "--keepalive-seconds",
                "30",
            ],
            {
                "grpc.server_handshake_timeout_ms": 2_000,
                "grpc.max_connection_idle_ms": 3_500,
                "grpc.keepalive_time_ms": 30_000,
            },
        ),
    ],
)
def test_the_flags_become_the_servers_channel_arguments(
    argv: list[str], expected: dict[str, int]
) -> None:
    _, settings = settings_mod.parse(argv)
    options = dict(connection_options(settings))
    assert {k: options[k] for k in expected} == expected
    assert options["grpc.keepalive_timeout_ms"] == 20_000


@pytest.mark.parametrize(
    "argv",
    [
        ["--handshake-seconds", "0"],
        ["--connection-idle-seconds", "nan"],
        ["--keepalive-seconds", "100000"],
    ],
)
def test_limits_outside_1_to_86400_seconds_are_refused(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as info:
        settings_mod.parse(argv)
    assert info.value.code == 2
