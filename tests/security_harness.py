"""What the security tests share: a test CA and certificates (trustme), an identity provider's
signing keys and JWKS file, a security configuration, API keys made with the server's own
`keys` command, and channels with given credentials."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import jwt
import trustme
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from sector_credit.v1 import credit_evaluation_service_pb2_grpc as pb_grpc

ISSUER = "https://idp.test.example"
AUDIENCE = "sector-credit"

CONFIG = """
[certificates]
"gw.procurement.test" = "procurement-centre"
"gw.transport.test" = "transport-bureau"

[jwt]
issuer = "https://idp.test.example"
audience = "sector-credit"
jwks_file = "jwks.json"

[callers.procurement-centre]
evaluator = { scorecards = ["procurement.supplier"] }
reader = { scorecards = ["procurement.supplier"], own_evaluations_only = true }

[callers.transport-bureau]
evaluator = { scorecards = ["transport.taxi_driver"] }
reader = { scorecards = ["transport.taxi_driver"], own_evaluations_only = true }

[callers.district-office]
evaluator = { scorecards = ["transport.taxi_driver"] }

[callers.recruitment-office]
evaluator = {}
reader = {}

[callers.ops]
admin = {}

[callers.audit-office]
auditor = {}
"""


@dataclass
class Pki:
    """A test CA, the server's certificate, and client certificates good and bad."""

    folder: Path
    ca: trustme.CA
    foreign: trustme.CA

    @classmethod
    def make(cls, folder: Path) -> Pki:
        folder.mkdir(parents=True, exist_ok=True)
        pki = cls(folder, trustme.CA(), trustme.CA())
        pki.ca.cert_pem.write_to_path(str(folder / "ca.pem"))
        pki.foreign.cert_pem.write_to_path(str(folder / "foreign-ca.pem"))
        pki.write_server(pki.ca, "server")
        now = dt.datetime.now(dt.UTC)
        pki.write_client(pki.ca.issue_cert("gw.procurement.test"), "procurement")
        pki.write_client(pki.ca.issue_cert("gw.transport.test"), "transport")
        pki.write_client(pki.ca.issue_cert("gw.unknown.test"), "unmapped")
        pki.write_client(
            pki.ca.issue_cert(
                "gw.transport.test",
                not_before=now - dt.timedelta(days=30),
                not_after=now - dt.timedelta(days=1),
            ),
            "expired",
        )
        pki.write_client(pki.foreign.issue_cert("gw.transport.test"), "foreign")
        return pki

    def write_server(self, ca: trustme.CA, name: str) -> None:
        cert = ca.issue_cert("localhost", "127.0.0.1")
        cert.private_key_pem.write_to_path(str(self.folder / f"{name}.key"))
        cert.cert_chain_pems[0].write_to_path(str(self.folder / f"{name}.pem"))

    def write_client(self, cert: trustme.LeafCert, name: str) -> None:
        cert.private_key_pem.write_to_path(str(self.folder / f"{name}.key"))
        cert.cert_chain_pems[0].write_to_path(str(self.folder / f"{name}.pem"))

    def server_args(self, mutual: bool) -> list[str]:
        args = [
            "--tls-cert",
            str(self.folder / "server.pem"),
            "--tls-key",
            str(self.folder / "server.key"),
        ]
        return args + (["--tls-client-ca", str(self.folder / "ca.pem")] if mutual else [])

    def credentials(self, client: str | None = None, ca: str = "ca") -> grpc.ChannelCredentials:
        roots = (self.folder / f"{ca}.pem").read_bytes()
        if client is None:
            return grpc.ssl_channel_credentials(root_certificates=roots)
        return grpc.ssl_channel_credentials(
            root_certificates=roots,
            private_key=(self.folder / f"{client}.key").read_bytes(),
            certificate_chain=(self.folder / f"{client}.pem").read_bytes(),
        )


def stub(
    address: str, credentials: grpc.ChannelCredentials | None
) -> tuple[grpc.Channel, pb_grpc.CreditEvaluationServiceStub]:
    port = address.rsplit(":", 1)[1]
    channel = (
        grpc.secure_channel(f"localhost:{port}", credentials)
        if credentials is not None
        else grpc.insecure_channel(address)
    )
    return channel, pb_grpc.CreditEvaluationServiceStub(channel)


class IdentityProvider:
    """An RS256 and an ES256 signing key, published in a JWKS file; tokens good and bad."""

    def __init__(self, folder: Path):
        self.rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.ec = ec.generate_private_key(ec.SECP256R1())
        self.stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        keys = []
        for kid, key, alg in (("rsa-1", self.rsa, "RS256"), ("ec-1", self.ec, "ES256")):
            algo = jwt.algorithms.RSAAlgorithm if alg == "RS256" else jwt.algorithms.ECAlgorithm
            jwk = json.loads(algo.to_jwk(key.public_key()))
            keys.append({**jwk, "kid": kid, "alg": alg, "use": "sig"})
        self.jwks_path = folder / "jwks.json"
        self.jwks_path.write_text(json.dumps({"keys": keys}))
        self.rsa_public_pem = self.rsa.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def claims(self, **changes: Any) -> dict[str, Any]:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": "recruitment-office",
            "iat": now,
            "exp": now + 600,
        }
        claims.update(changes)
        return {k: v for k, v in claims.items() if v is not None}

    def token(
        self, alg: str = "RS256", kid: str | None = None, key: Any = None, **changes: Any
    ) -> str:
        signer = key or (self.rsa if alg == "RS256" else self.ec)
        return jwt.encode(
            self.claims(**changes),
            signer,
            algorithm=alg,
            headers={"kid": kid or ("rsa-1" if alg == "RS256" else "ec-1")},
        )

    def unsigned(self) -> str:
        """alg `none`: no signature at all."""
        return _jws({"alg": "none", "typ": "JWT", "kid": "rsa-1"}, self.claims(), b"")

    def hs256_with_public_key(self) -> str:
        """The algorithm-confusion attack: HS256, the server's RSA public key as the secret."""
        header = {"alg": "HS256", "typ": "JWT", "kid": "rsa-1"}
        signing_input = (
            _b64(json.dumps(header).encode()) + "." + _b64(json.dumps(self.claims()).encode())
        )
        mac = hmac.new(self.rsa_public_pem, signing_input.encode(), hashlib.sha256).digest()
        return signing_input + "." + _b64(mac)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _jws(header: Mapping[str, Any], claims: Mapping[str, Any], signature: bytes) -> str:
    return ".".join(
        (_b64(json.dumps(header).encode()), _b64(json.dumps(claims).encode()), _b64(signature))
    )


def server_keys(database_url: str, *args: str) -> Any:
    """`sector-credit-server keys ... --json`, as an operator runs it; the parsed output."""
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "sector_credit.server.main",
            "keys",
            args[0],
            "--database-url",
            database_url,
            "--json",
            *args[1:],
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(out.stdout)


def bearer(token: str) -> Sequence[tuple[str, str]]:
    return (("authorization", f"Bearer {token}"),)


def error_info(exc: grpc.RpcError) -> error_details_pb2.ErrorInfo | None:
    status = rpc_status.from_call(exc)  # type: ignore[arg-type]
    if status is None:
        return None
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            return info
    return None
