"""Transport security and secure defaults (issue 9 items 1, 3, 6), against real servers:
mutual TLS with a trustme CA (who the certificate proves, what a bad one gets), certificates
and the security configuration reloaded without restart, local mode on loopback, and a
public address refused without TLS and authentication unless --insecure."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from security_harness import CONFIG, Pki, stub
from service_harness import ServerProcess, running_server, taxi, wait_until


@pytest.fixture(scope="module")
def mtls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, Pki, Path]]:
    tmp = tmp_path_factory.mktemp("mtls")
    pki = Pki.make(tmp / "pki")
    config = tmp / "security.toml"
    config.write_text(CONFIG.replace('jwks_file = "jwks.json"', 'jwks_file = "absent.json"'))
    args = (*pki.server_args(mutual=True), "--security-config", str(config))
    with running_server(f"sqlite:///{tmp / 'audit.db'}", tmp / "server.log", *args) as server:
        yield server, pki, config


def _evaluate(server: ServerProcess, credentials: grpc.ChannelCredentials) -> grpc.StatusCode | str:
    """The caller an Evaluate is recorded under, or the code it failed with."""
    channel, s = stub(server.address, credentials)
    try:
        return str(s.Evaluate(taxi(), timeout=10).evaluation.caller)
    except grpc.RpcError as exc:
        return exc.code()
    finally:
        channel.close()


@pytest.mark.parametrize(
    "client, expected",
    [
        ("transport", "transport-bureau"),  # the certificate's SAN, mapped in [certificates]
        (
            "procurement",
            grpc.StatusCode.PERMISSION_DENIED,
        ),  # proven, but granted procurement.supplier only
        (
            "unmapped",
            grpc.StatusCode.UNAUTHENTICATED,
        ),  # signed by the CA, but no caller of that name
        # refused in the TLS handshake, before any handler: the client sees UNAVAILABLE
        (None, grpc.StatusCode.UNAVAILABLE),
        ("expired", grpc.StatusCode.UNAVAILABLE),
        ("foreign", grpc.StatusCode.UNAVAILABLE),
    ],
)
def test_who_a_client_certificate_proves(
    mtls: tuple[ServerProcess, Pki, Path], client: str | None, expected: grpc.StatusCode | str
) -> None:
    server, pki, _ = mtls
    assert _evaluate(server, pki.credentials(client)) == expected


def test_a_plaintext_client_gets_nowhere(mtls: tuple[ServerProcess, Pki, Path]) -> None:
    server, _, _ = mtls
    assert _evaluate(server, None) == grpc.StatusCode.UNAVAILABLE  # type: ignore[arg-type]


def test_the_configuration_reloads_on_sighup(mtls: tuple[ServerProcess, Pki, Path]) -> None:
    server, pki, config = mtls
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
def test_certificates_reload_on_sighup_or_a_file_change(tmp_path: Path, signal_it: bool) -> None:
    pki = Pki.make(tmp_path / "pki")
    args = (*pki.server_args(mutual=False),)
    with running_server(
        f"sqlite:///{tmp_path / 'audit.db'}", tmp_path / "server.log", *args
    ) as server:
        assert _evaluate(server, pki.credentials()) == "local"  # loopback, no config: local mode
        # a new server certificate from another CA, swapped in place
        pki.write_server(pki.foreign, "next")
        for suffix in ("pem", "key"):
            shutil.copy(pki.folder / f"next.{suffix}", pki.folder / f"server.{suffix}")
        if signal_it:
            server.proc.send_signal(signal.SIGHUP)  # type: ignore[union-attr]
        wait_until(lambda: _evaluate(server, pki.credentials(ca="foreign-ca")) == "local")
        assert _evaluate(server, pki.credentials()) == grpc.StatusCode.UNAVAILABLE


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
        # the --workers supervisor refuses the same way: the refusal alone, before any scorecard
        # loads
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
