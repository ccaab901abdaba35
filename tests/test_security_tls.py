"""Transport security and secure defaults (issue 9 items 1, 3, 6), against real servers:
mutual TLS with a trustme CA (who the certificate proves; a missing, expired, foreign or
unmapped one UNAUTHENTICATED with an access record, through the TLS front; a bypass of the
front refused; the handshake check as the alternative), on SQLite and PostgreSQL,
certificates and the security configuration reloaded without restart, local mode on
loopback, and a public address refused without TLS and authentication unless --insecure."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from sector_credit.v1 import access_log_service_pb2 as access_pb
from sector_credit.v1 import access_log_service_pb2_grpc as access_pb_grpc
from sector_credit.v1 import credit_evaluation_service_pb2_grpc as pb_grpc
from security_harness import CONFIG, Pki, bearer, error_info, server_keys, stub
from service_harness import ServerProcess, database, running_server, taxi, wait_until


@dataclass
class Mtls:
    server: ServerProcess
    pki: Pki
    config: Path
    auditor: str  # an API key of the auditor (audit-office), sent over a good certificate


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def mtls(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Mtls]:
    tmp = tmp_path_factory.mktemp(f"mtls-{request.param}")
    pki = Pki.make(tmp / "pki")
    config = tmp / "security.toml"
    config.write_text(CONFIG.replace('jwks_file = "jwks.json"', 'jwks_file = "absent.json"'))
    with database(request.param, tmp, "mtls") as url:
        auditor = server_keys(url, "create", "--caller", "audit-office")["token"]
        args = (*pki.server_args(mutual=True), "--security-config", str(config))
        with running_server(url, tmp / "server.log", *args) as server:
            yield Mtls(server, pki, config, auditor)


def _evaluate(
    server: ServerProcess,
    credentials: grpc.ChannelCredentials,
    metadata: tuple[tuple[str, str], ...] = (),
) -> grpc.StatusCode | str:
    """The caller an Evaluate is recorded under, or the code it failed with."""
    channel, s = stub(server.address, credentials)
    try:
        return str(s.Evaluate(taxi(), metadata=metadata, timeout=10).evaluation.caller)
    except grpc.RpcError as exc:
        return exc.code()
    finally:
        channel.close()


def _refused(call: Any) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        call()
    return caught.value


def _health_code(channel: grpc.Channel) -> grpc.StatusCode:
    try:
        health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
    except grpc.RpcError as exc:
        return exc.code()
    return grpc.StatusCode.OK


def _recorded(setup: Mtls, request_id: str) -> list[tuple[str, str, str, str, str]]:
    """The access records of `request_id`, as an auditor lists them: (method, code, reason,
    caller, proven_by); a refusal before the handler is committed just after its status."""

    def records() -> list[tuple[str, str, str, str, str]]:
        channel = grpc.secure_channel(
            f"localhost:{setup.server.port}", setup.pki.credentials("transport")
        )
        try:
            reply = access_pb_grpc.AccessLogServiceStub(channel).ListAccessRecords(
                access_pb.ListAccessRecordsRequest(page_size=1000),
                metadata=bearer(setup.auditor),
                timeout=10,
            )
        finally:
            channel.close()
        return [
            (r.method, r.code, r.reason, r.caller, r.proven_by)
            for r in reply.access_records
            if r.request_id == request_id
        ]

    wait_until(records, 10)
    return records()


@pytest.mark.parametrize(
    "client, expected",
    [
        ("transport", "transport-bureau"),  # the certificate's SAN, mapped in [certificates]
        (
            "procurement",
            grpc.StatusCode.PERMISSION_DENIED,
        ),  # proven, but granted procurement.supplier only
    ],
)
def test_a_good_certificate_proves_its_mapped_caller(
    mtls: Mtls, client: str, expected: grpc.StatusCode | str
) -> None:
    assert _evaluate(mtls.server, mtls.pki.credentials(client)) == expected


# The TLS front accepts the handshake whatever the certificate, and the service refuses the
# call: UNAUTHENTICATED, an ErrorInfo reason saying why, and an access record of the refusal.
CERTIFICATE_REFUSALS = [
    # (client certificate, the reason, what the message says)
    (None, "CLIENT_CERTIFICATE_MISSING", "no client certificate"),
    ("expired", "CLIENT_CERTIFICATE_EXPIRED", "client certificate expired on "),
    ("foreign", "CLIENT_CERTIFICATE_UNTRUSTED", "not signed by a CA this server trusts"),
    ("unmapped", "UNAUTHENTICATED", "not mapped to a caller"),  # signed by the CA, no caller
]


@pytest.mark.parametrize("client, reason, message", CERTIFICATE_REFUSALS)
def test_a_bad_certificate_is_unauthenticated_and_on_record(
    mtls: Mtls, client: str | None, reason: str, message: str
) -> None:
    request_id = f"cert-{client}-{time.time_ns():x}"
    channel, s = stub(mtls.server.address, mtls.pki.credentials(client))
    try:
        err = _refused(
            lambda: s.Evaluate(taxi(), metadata=(("x-request-id", request_id),), timeout=10)
        )
    finally:
        channel.close()
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED, err.details()
    assert message in (err.details() or "")
    assert error_info(err).reason == reason  # type: ignore[union-attr]
    # exactly one record, of a caller the credentials did not prove
    assert _recorded(mtls, request_id) == [("Evaluate", "UNAUTHENTICATED", reason, "", "")]


@pytest.mark.parametrize("client", ["expired", "foreign", None])
def test_a_valid_api_key_does_not_make_up_for_a_bad_certificate(
    mtls: Mtls, client: str | None
) -> None:
    """The certificate is the transport's requirement: a token decides who calls only over a
    connection whose certificate the server verified. Health stays open, as without the
    front: a load balancer checks it with no client certificate."""
    credentials = mtls.pki.credentials(client)
    assert _evaluate(mtls.server, credentials, tuple(bearer(mtls.auditor))) == (
        grpc.StatusCode.UNAUTHENTICATED
    )
    channel = grpc.secure_channel(f"localhost:{mtls.server.port}", credentials)
    try:
        assert _health_code(channel) == grpc.StatusCode.OK
    finally:
        channel.close()


def test_a_direct_connection_to_the_private_port_is_refused(mtls: Mtls) -> None:
    """Behind the front the gRPC server listens on a loopback port of its own; a caller that
    connects there, bypassing the certificate check, is refused, on record (health, open
    everywhere, answers)."""
    [serving] = [r for r in mtls.server.log_records() if r.get("event") == "serving"]
    assert serving["client_cert_check"] == "service"
    private = serving["private_address"]
    request_id = f"bypass-{time.time_ns():x}"
    channel = grpc.insecure_channel(private)
    try:
        s = pb_grpc.CreditEvaluationServiceStub(channel)
        metadata = (("x-request-id", request_id), *bearer(mtls.auditor))
        err = _refused(lambda: s.Evaluate(taxi(), metadata=metadata, timeout=10))
        health = _health_code(channel)
    finally:
        channel.close()
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "did not come through the server's TLS port" in (err.details() or "")
    assert error_info(err).reason == "CONNECTION_NOT_VERIFIED"  # type: ignore[union-attr]
    assert health == grpc.StatusCode.OK
    assert _recorded(mtls, request_id) == [
        ("Evaluate", "UNAUTHENTICATED", "CONNECTION_NOT_VERIFIED", "", "")
    ]


def test_a_plaintext_client_gets_nowhere(mtls: Mtls) -> None:
    assert _evaluate(mtls.server, None) == grpc.StatusCode.UNAVAILABLE  # type: ignore[arg-type]


def test_each_worker_serves_the_front_on_the_shared_port(tmp_path: Path) -> None:
    """`--workers 2`: every worker's front binds the public port (SO_REUSEPORT) and checks
    the certificates of the connections the kernel gives it."""
    pki = Pki.make(tmp_path / "pki")
    config = tmp_path / "security.toml"
    config.write_text(CONFIG.replace('jwks_file = "jwks.json"', 'jwks_file = "absent.json"'))
    args = (*pki.server_args(mutual=True), "--security-config", str(config), "--workers", "2")
    with running_server(
        f"sqlite:///{tmp_path / 'audit.db'}", tmp_path / "server.log", *args
    ) as server:
        for _ in range(3):  # a new connection each time: both workers are likely asked
            assert _evaluate(server, pki.credentials("transport")) == "transport-bureau"
            assert _evaluate(server, pki.credentials("expired")) == grpc.StatusCode.UNAUTHENTICATED


def test_with_the_handshake_check_grpc_refuses_bad_certificates_itself(tmp_path: Path) -> None:
    """`--client-cert-check handshake`: no front; a bad certificate fails the handshake (the
    client sees UNAVAILABLE, nothing is recorded), a good one works as behind the front."""
    pki = Pki.make(tmp_path / "pki")
    config = tmp_path / "security.toml"
    config.write_text(CONFIG.replace('jwks_file = "jwks.json"', 'jwks_file = "absent.json"'))
    args = (*pki.server_args(mutual=True), "--security-config", str(config))
    with running_server(
        f"sqlite:///{tmp_path / 'audit.db'}",
        tmp_path / "server.log",
        *args,
        "--client-cert-check",
        "handshake",
    ) as server:
        assert [
            _evaluate(server, pki.credentials(client))
            for client in ("transport", "unmapped", None, "expired", "foreign")
        ] == [
            "transport-bureau",
            grpc.StatusCode.UNAUTHENTICATED,
            grpc.StatusCode.UNAVAILABLE,
            grpc.StatusCode.UNAVAILABLE,
            grpc.StatusCode.UNAVAILABLE,
        ]
        [serving] = [r for r in server.log_records() if r.get("event") == "serving"]
        assert serving["transport"] == "mtls" and "private_address" not in serving


def test_the_configuration_reloads_on_sighup(mtls: Mtls) -> None:
    server, pki, config = mtls.server, mtls.pki, mtls.config
    assert _evaluate(server, pki.credentials("procurement")) == grpc.StatusCode.PERMISSION_DENIED
    granted = CONFIG.replace(
        'evaluator = { scorecards = ["procurement.supplier"] }',
        'evaluator = { scorecards = ["procurement.supplier", "transport.taxi_driver"] }',
    )
    config.write_text(granted.replace('jwks_file = "jwks.json"', 'jwks_file = "absent.json"'))
    server.proc.send_signal(signal.SIGHUP)  # type: ignore[union-attr]
    wait_until(lambda: _evaluate(server, pki.credentials("procurement")) == "procurement-centre")
    config.write_text("[callers.x]\nnot_a_role = {}\n")  # a broken file: the last good one stays
    server.proc.send_signal(signal.SIGHUP)  # type: ignore[union-attr]
    wait_until(lambda: "security configuration not reloaded" in server.log_text())
    assert _evaluate(server, pki.credentials("procurement")) == "procurement-centre"


@pytest.mark.parametrize("signal_it", [True, False], ids=["sighup", "file-change"])
@pytest.mark.parametrize("mutual", [False, True], ids=["tls", "mtls-front"])
def test_certificates_reload_on_sighup_or_a_file_change(
    tmp_path: Path, signal_it: bool, mutual: bool
) -> None:
    """By gRPC's TLS (plain TLS) and by the TLS front (mutual TLS) alike."""
    pki = Pki.make(tmp_path / "pki")
    client = "transport" if mutual else None
    args = (*pki.server_args(mutual=mutual),)
    with running_server(
        f"sqlite:///{tmp_path / 'audit.db'}", tmp_path / "server.log", *args
    ) as server:
        # loopback, no config: local mode
        assert _evaluate(server, pki.credentials(client)) == "local"
        # a new server certificate from another CA, swapped in place
        pki.write_server(pki.foreign, "next")
        for suffix in ("pem", "key"):
            shutil.copy(pki.folder / f"next.{suffix}", pki.folder / f"server.{suffix}")
        if signal_it:
            server.proc.send_signal(signal.SIGHUP)  # type: ignore[union-attr]
        wait_until(lambda: _evaluate(server, pki.credentials(client, ca="foreign-ca")) == "local")
        assert _evaluate(server, pki.credentials(client)) == grpc.StatusCode.UNAVAILABLE
        if mutual:  # local mode too needs a verified certificate behind the front
            assert (
                _evaluate(server, pki.credentials("expired", ca="foreign-ca"))
                == grpc.StatusCode.UNAUTHENTICATED
            )


# -- secure by default ----------------------------------------------------------------------------


def test_loopback_without_credentials_is_local_mode_and_says_so(tmp_path: Path) -> None:
    with running_server(f"sqlite:///{tmp_path / 'audit.db'}", tmp_path / "server.log") as server:
        serving = [r for r in server.log_records() if r.get("event") == "serving"]
        assert (
            serving and serving[0]["security"] == "local" and serving[0]["transport"] == "plaintext"
        )
        assert "local principal" in serving[0]["local_mode"]
        channel = grpc.insecure_channel(server.address)
        try:
            assert (
                health_pb2_grpc.HealthStub(channel)
                .Check(health_pb2.HealthCheckRequest(), timeout=5)
                .status
                == health_pb2.HealthCheckResponse.SERVING
            )
        finally:
            channel.close()


@pytest.mark.parametrize(
    "args, expected_exit, expected_text",
    [
        (
            ("--listen", "0.0.0.0:0"),
            78,
            "without TLS (--tls-cert, --tls-key) and authentication (--security-config)",
        ),
        # a --workers set refuses the same way (its migrating child checks, before it loads the
        # scorecards): the refusal alone
        (
            ("--listen", "0.0.0.0:0", "--workers", "2"),
            78,
            "without TLS (--tls-cert, --tls-key) and authentication (--security-config)",
        ),
        (("--listen", "0.0.0.0:0", "--insecure"), None, '"security": "local"'),
    ],
)
def test_a_public_address_needs_tls_and_authentication_or_insecure(
    tmp_path: Path, args: tuple[str, ...], expected_exit: int | None, expected_text: str
) -> None:
    command = [
        sys.executable,
        "-m",
        "sector_credit.server.main",
        "--database-url",
        f"sqlite:///{tmp_path / 'audit.db'}",
        "--metrics-port",
        "0",
        "--log-format",
        "json",
        *args,
    ]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        if expected_exit is not None:
            _, err = proc.communicate(timeout=60)
            assert proc.returncode == expected_exit
            assert (
                len([line for line in err.splitlines() if line.strip()]) == 1
            )  # one line, no traceback
            assert expected_text in err
            return
        assert proc.stdout is not None
        assert proc.stdout.readline().startswith("listening on port ")
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            _, err = proc.communicate(timeout=30)
            assert expected_text in err
