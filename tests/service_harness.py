"""A real server process for the service tests: started on port 0, found by the port lines it
prints, stopped with SIGTERM (or killed), its JSON log kept in a file to read back.

Also scratch PostgreSQL databases of its own (the crash and outage tests drop theirs while a
server uses it, so they cannot share the session's), on the session's PostgreSQL server
(pg_server.py), and request builders for the §3 cards.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import grpc
import pg_server
import pytest
import sqlalchemy as sa
from grpc_health.v1 import health_pb2, health_pb2_grpc
from installed_plugins import ONLY_BUILTIN
from sector_credit.v1 import (
    common_pb2,
)
from sector_credit.v1 import (
    credit_evaluation_service_pb2 as pb,
)
from sector_credit.v1 import (
    credit_evaluation_service_pb2_grpc as pb_grpc,
)

START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0

# Valid subject ids (GB 11643 / GB 32100 check characters), for the cards' subject kinds.
PERSON_IDS = ("11010519491231002X", "440524188001010014", "11010119900307803X")
ORG_IDS = ("91350100M000100Y43", "914403001922038216", "9144030071526726XG", "91330100799655058B")
PERSON = common_pb2.SUBJECT_KIND_PERSON
ORGANIZATION = common_pb2.SUBJECT_KIND_ORGANIZATION


# --------------------------------------------------------------------------------------------
# Requests


def value(v: object) -> common_pb2.IndicatorValue:
    """The wire value of a Python value: bool -> flag, int -> count, str with a digit or a
    point -> decimal, other str -> choice, (y, m, d) -> date."""
    if isinstance(v, bool):
        return common_pb2.IndicatorValue(flag_value=v)
    if isinstance(v, int):
        return common_pb2.IndicatorValue(count_value=v)
    if isinstance(v, tuple):
        return common_pb2.IndicatorValue(
            date_value=common_pb2.Date(year=v[0], month=v[1], day=v[2])
        )
    if isinstance(v, float):
        return common_pb2.IndicatorValue(number_value=v)
    assert isinstance(v, str)
    if v[:1].isdigit() or v[:1] in "-.":
        return common_pb2.IndicatorValue(decimal_value=v)
    return common_pb2.IndicatorValue(choice_value=v)


def date(text: str) -> common_pb2.Date:
    y, m, d = (int(x) for x in text.split("-"))
    return common_pb2.Date(year=y, month=m, day=d)


def evaluate_request(
    scorecard: str,
    indicators: Mapping[str, object] | None = None,
    *,
    subject_id: str | None = None,
    kind: int | None = None,
    as_of: str | None = "2026-06-01",
    request_id: str = "",
    validate_only: bool = False,
) -> pb.EvaluateRequest:
    """An EvaluateRequest; the subject defaults to a valid id of the card's kind."""
    person = scorecard.split(".")[0] in ("transport", "civil_servant")
    if kind is None:
        kind = PERSON if person else ORGANIZATION
    if subject_id is None:
        subject_id = PERSON_IDS[0] if person else ORG_IDS[0]
    request = pb.EvaluateRequest(
        scorecard=scorecard,
        subject=common_pb2.Subject(kind=kind, id=subject_id, display_name="张三"),
        indicators={k: value(v) for k, v in (indicators or {}).items()},
        request_id=request_id,
        validate_only=validate_only,
    )
    if as_of is not None:
        request.as_of.CopyFrom(date(as_of))
    return request


_GB11643_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def resident_id(n: int) -> str:
    """The n-th valid resident id (GB 11643 check character): a subject no other test uses."""
    body = f"110105{1950 + n // 1000 % 60:04d}0101{n % 1000:03d}"
    check = "10X98765432"[sum(int(c) * w for c, w in zip(body, _GB11643_WEIGHTS)) % 11]
    return body + check


def taxi(
    request_id: str = "", subject_id: str | None = None, **indicators: object
) -> pb.EvaluateRequest:
    """A taxi-driver request (§3 example 1 unless indicators are given)."""
    values = indicators or {"violations_3pt": 1, "violations_5pt": 1, "bonus_points": "2"}
    return evaluate_request(
        "transport.taxi_driver", values, request_id=request_id, subject_id=subject_id
    )


# --------------------------------------------------------------------------------------------
# PostgreSQL scratch databases


def _pg_admin() -> sa.Engine:
    return sa.create_engine(
        pg_server.server_url(), isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 5}
    )


def drop_pg_database(url: str) -> None:
    """Drop a scratch database, disconnecting whoever uses it (a running server)."""
    name = sa.make_url(url).database
    admin = _pg_admin()
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        admin.dispose()


@contextlib.contextmanager
def scratch_pg_database(label: str = "svc") -> Iterator[str]:
    """A fresh, empty PostgreSQL database, dropped afterwards. Fails (not skips) when no
    server can be had."""
    try:
        server_url = pg_server.server_url()
    except pg_server.PostgresUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)
    name = f"sector_credit_{label}_{secrets.token_hex(5)}"
    admin = _pg_admin()
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    except sa.exc.OperationalError as exc:
        pytest.fail(
            f"PostgreSQL at {server_url} refused a scratch database ({exc.orig})", pytrace=False
        )
    finally:
        admin.dispose()
    url = sa.make_url(server_url).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        drop_pg_database(url)


@contextlib.contextmanager
def database(kind: str, tmp: Path, label: str = "svc") -> Iterator[str]:
    """A fresh database URL of `kind` (`sqlite` or `postgresql`)."""
    if kind == "sqlite":
        yield f"sqlite:///{tmp / f'{label}.db'}"
    else:
        with scratch_pg_database(label) as url:
            yield url


# --------------------------------------------------------------------------------------------
# The server process


def free_port() -> int:
    """A port free right now, for a program that cannot pick its own (the server's metrics
    endpoint can: `--metrics-port any`, reported as `metrics on port N`)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServerProcess:
    """`python -m sector_credit.server.main` on 127.0.0.1:0 with JSON logs in `log_path`."""

    def __init__(
        self,
        database_url: str,
        log_path: Path,
        *args: str,
        metrics: bool = True,
        env: Mapping[str, str] | None = None,
    ):
        self.database_url = database_url
        self.log_path = log_path
        self.args = args
        self.metrics = metrics
        self.env = {**os.environ, **(env or {})}
        self.cwd: Path | None = None  # the server's working folder; None: this one
        self.proc: subprocess.Popen[str] | None = None
        self.port = 0
        self.metrics_port = 0
        self.stdout: list[str] = []
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._channel: grpc.Channel | None = None

    # -- life cycle --------------------------------------------------------------------------

    def command(self) -> list[str]:
        cmd = [
            sys.executable,
            "-m",
            "sector_credit.server.main",
            "--listen",
            "127.0.0.1:0",
            "--database-url",
            self.database_url,
            "--log-format",
            "json",
            # the server picks the metrics port itself: one chosen here could be taken by
            # another suite's server before this one binds it
            "--metrics-port",
            "any" if self.metrics else "0",
            *ONLY_BUILTIN,
            *self.args,
        ]
        return cmd

    def start(self) -> ServerProcess:
        """Start and wait for the port lines (printed once the server is SERVING)."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "a", encoding="utf-8") as log:
            self.proc = subprocess.Popen(
                self.command(),
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
                env=self.env,
                cwd=self.cwd,
                start_new_session=True,
            )
        threading.Thread(target=self._read_stdout, daemon=True).start()
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self.port or (self.metrics and not self.metrics_port):
            try:
                line = self._lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                self.kill()
                raise AssertionError(
                    f"server not serving after {START_TIMEOUT_S}s:\n{self.log_text()}"
                ) from None
            if line is None:
                code = self.proc.wait()
                raise AssertionError(
                    f"server exited with {code} before serving:\n{self.log_text()}"
                )
            if line.startswith("listening on port "):
                self.port = int(line.rsplit(" ", 1)[1])
            elif line.startswith("metrics on port "):
                self.metrics_port = int(line.rsplit(" ", 1)[1])
        return self

    def _read_stdout(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for line in self.proc.stdout:
            self.stdout.append(line.rstrip("\n"))
            self._lines.put(line.strip())
        self._lines.put(None)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def terminate(self, timeout: float = STOP_TIMEOUT_S) -> int:
        """SIGTERM, wait for the exit, return the exit code."""
        self.close_channel()
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"server did not exit {timeout}s after SIGTERM") from None

    def kill(self) -> None:
        """SIGKILL: no drain, no goodbye."""
        self.close_channel()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(STOP_TIMEOUT_S)

    def close_channel(self) -> None:
        if self._channel is not None:
            self._channel.close()
            self._channel = None

    # -- clients -----------------------------------------------------------------------------

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def channel(self) -> grpc.Channel:
        if self._channel is None:
            self._channel = grpc.insecure_channel(self.address)
            grpc.channel_ready_future(self._channel).result(timeout=10)
        return self._channel

    @property
    def stub(self) -> pb_grpc.CreditEvaluationServiceStub:
        return pb_grpc.CreditEvaluationServiceStub(self.channel)

    @property
    def health(self) -> health_pb2_grpc.HealthStub:
        return health_pb2_grpc.HealthStub(self.channel)

    def health_status(self, service: str = "") -> int:
        return int(
            self.health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5).status
        )

    # -- what it wrote -----------------------------------------------------------------------

    def log_text(self) -> str:
        return self.log_path.read_text(encoding="utf-8") if self.log_path.exists() else ""

    def log_records(self) -> list[dict[str, Any]]:
        """Every JSON line of stderr (other lines, if any, are left out)."""
        records = []
        for line in self.log_text().splitlines():
            with contextlib.suppress(ValueError):
                record = json.loads(line)
                if isinstance(record, dict):
                    records.append(record)
        return records

    def rpc_records(self, method: str | None = None) -> list[dict[str, Any]]:
        return [
            r
            for r in self.log_records()
            if r.get("event") == "rpc" and (method is None or r.get("method") == method)
        ]


@contextlib.contextmanager
def running_server(
    database_url: str,
    log_path: Path,
    *args: str,
    metrics: bool = True,
    env: Mapping[str, str] | None = None,
) -> Iterator[ServerProcess]:
    """A started server, stopped with SIGTERM afterwards, which must exit 0 (killed instead
    when the body raised)."""
    server = ServerProcess(database_url, log_path, *args, metrics=metrics, env=env).start()
    try:
        yield server
    except BaseException:
        server.kill()
        raise
    if server.proc is not None and server.proc.poll() is None:
        code = server.terminate()
        assert code == 0, f"exit code {code} after SIGTERM:\n{server.log_text()[-4000:]}"


def wait_until(predicate: Any, timeout: float = 10.0, interval: float = 0.05) -> Any:
    """Poll until `predicate()` is truthy; return its value (AssertionError on timeout)."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(interval)


def module_server_fixture(*args: str, params: Sequence[str] = ("sqlite", "postgresql")) -> Any:
    """A module-scoped fixture: one server per database kind, shared by the module's tests."""

    @pytest.fixture(scope="module", params=list(params))
    def server(
        request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
    ) -> Iterator[ServerProcess]:
        tmp = tmp_path_factory.mktemp(f"server-{request.param}")
        with (
            database(request.param, tmp) as url,
            running_server(url, tmp / "server.log", *args) as s,
        ):
            yield s

    return server
