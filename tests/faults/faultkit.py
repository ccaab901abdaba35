"""What the fault scenarios break things with: a private PostgreSQL instance that can be
stopped and started, a small filesystem that can be filled, a server's resident memory,
a health check that answers or says why not."""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def health(address: str, timeout: float = 2.0, service: str = "") -> int:
    """The server's health status (overall, or of one service), on a channel of its own (so
    a stuck channel of the test never hides an answer)."""
    with grpc.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        request = health_pb2.HealthCheckRequest(service=service)
        return int(stub.Check(request, timeout=timeout).status)


def wait_for_health(address: str, status: int, timeout: float = 15.0, service: str = "") -> float:
    """Seconds until health says `status` (AssertionError after `timeout`)."""
    start = time.monotonic()
    last = None
    while time.monotonic() - start < timeout:
        last = health(address, service=service)
        if last == status:
            return time.monotonic() - start
        time.sleep(0.2)
    raise AssertionError(f"health was {last}, not {status}, for {timeout} s")


def rss_bytes(pid: int) -> int:
    """Resident memory of a process (Linux /proc)."""
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for {pid}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --------------------------------------------------------------------------------------------
# A private PostgreSQL instance


def _pg_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    return Path(found[-1]).parent if found else None


class PrivatePostgres:
    """initdb + pg_ctl in a folder of its own, on a port of its own, trust auth; run as the
    `postgres` user when the tests run as root (PostgreSQL refuses to run as root)."""

    def __init__(self, folder: Path) -> None:
        bindir = _pg_bin()
        if bindir is None:
            pytest.skip("no PostgreSQL binaries in /usr/lib/postgresql/*/bin")
        self.bin = bindir
        self.folder = folder
        self.data = folder / "data"
        self.port = free_port()
        self.user: str | None = None
        if os.geteuid() == 0:
            try:
                pwd.getpwnam("postgres")
            except KeyError:
                pytest.skip("running as root without a `postgres` user for PostgreSQL")
            self.user = "postgres"
            folder.mkdir(parents=True, exist_ok=True)
            shutil.chown(folder, "postgres")
            for parent in list(folder.parents)[:-1]:  # the postgres user must reach it
                if parent.stat().st_mode & 0o001 == 0:
                    os.chmod(parent, parent.stat().st_mode | 0o001)

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *cmd: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        argv = [str(self.bin / cmd[0]), *cmd[1:]]
        if self.user is not None:
            argv = ["runuser", "-u", self.user, "--", *argv]
        return subprocess.run(argv, check=check, capture_output=True, text=True, timeout=120)

    def init(self) -> PrivatePostgres:
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
        return self

    def start(self) -> None:
        for attempt in range(5):  # right after a stop, the port may not be free yet
            done = self._run(
                "pg_ctl",
                "-D",
                str(self.data),
                "-l",
                str(self.folder / "pg.log"),
                "-w",
                "-t",
                "60",
                "-o",
                f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1",
                "start",
                check=False,
            )
            if done.returncode == 0:
                return
            time.sleep(1)
        log = (self.folder / "pg.log").read_text(errors="replace")[-2000:]
        raise AssertionError(f"PostgreSQL did not start: {done.stdout}{done.stderr}\n{log}")

    def stop(self) -> None:
        """Stop it, and check it is down: the server on it must see an outage."""
        done = self._run(
            "pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "-t", "60", "stop", check=False
        )
        status = self._run("pg_ctl", "-D", str(self.data), "status", check=False)
        if status.returncode != 3:  # 3: no server running
            raise AssertionError(
                f"PostgreSQL did not stop: {done.stdout}{done.stderr}{status.stdout}"
            )


@contextlib.contextmanager
def private_postgres(folder: Path) -> Iterator[PrivatePostgres]:
    pg = PrivatePostgres(folder).init()
    pg.start()
    try:
        yield pg
    finally:
        pg.stop()


# --------------------------------------------------------------------------------------------
# A small filesystem


@contextlib.contextmanager
def small_filesystem(folder: Path, size_mb: int = 64) -> Iterator[Path]:
    """A tmpfs of `size_mb` mounted at `folder` (root only; skips otherwise)."""
    folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        pytest.skip("mounting a small filesystem needs root")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_mb}m", "tmpfs", str(folder)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {done.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def fill(folder: Path) -> Path:
    """Fill the filesystem of `folder` to the last block; returns the filler file."""
    filler = folder / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        for size in (1 << 20, 4096):  # megabytes, then the last blocks
            chunk = b"\0" * size
            try:
                while True:
                    os.write(fd, chunk)
            except OSError:
                pass
    finally:
        os.close(fd)
    return filler
