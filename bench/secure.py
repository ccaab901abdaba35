"""The credentials of the benchmark's secured configurations, made at bench time.

- a test CA (trustme, a dev dependency) with a server certificate for `localhost` /
  127.0.0.1 and one client certificate (`bench-client.test`);
- a security configuration mapping that certificate to the caller `bench`, an evaluator of
  every scorecard;
- an API key for `bench`, issued with the server's own `keys create` (as an operator does)
  into the database the server then opens: the bearer token every benchmark call sends.

The real server (`sqlite-mtls`) then runs with `--tls-cert/--tls-key/--tls-client-ca` and
`--security-config`: every call crosses mutual TLS, is authenticated by its API key (the
token wins over the certificate, as in production), checked against the grant, and leaves its
access record in the evaluation's own transaction. The ceiling (`ceiling-tls`) serves the
same certificates with the client certificate required, and the clients send the same
token to both, so TLS and the token's bytes on the wire are in the reference too.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

SERVER_NAME = "localhost"  # the name clients check the server certificate against
CLIENT_NAME = "bench-client.test"
CALLER = "bench"

CONFIG = f"""
[certificates]
"{CLIENT_NAME}" = "{CALLER}"

[callers.{CALLER}]
evaluator = {{}}
"""


@dataclass(frozen=True)
class SecureFiles:
    folder: Path
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    config: Path

    @classmethod
    def make(cls, folder: Path) -> SecureFiles:
        import trustme

        folder.mkdir(parents=True, exist_ok=True)
        ca = trustme.CA()
        files = cls(
            folder,
            folder / "ca.pem",
            folder / "server.pem",
            folder / "server.key",
            folder / "client.pem",
            folder / "client.key",
            folder / "security.toml",
        )
        ca.cert_pem.write_to_path(str(files.ca))
        for leaf, cert, key in (
            (ca.issue_cert(SERVER_NAME, "127.0.0.1"), files.server_cert, files.server_key),
            (ca.issue_cert(CLIENT_NAME), files.client_cert, files.client_key),
        ):
            leaf.private_key_pem.write_to_path(str(key))
            leaf.cert_chain_pems[0].write_to_path(str(cert))
        files.config.write_text(CONFIG)
        return files

    def server_args(self) -> list[str]:
        """The real server's flags: mutual TLS and the security configuration."""
        return [
            "--tls-cert",
            str(self.server_cert),
            "--tls-key",
            str(self.server_key),
            "--tls-client-ca",
            str(self.ca),
            "--security-config",
            str(self.config),
        ]

    def ceiling_args(self) -> list[str]:
        """The ceiling server's flags: the same certificates, a client certificate required."""
        return [
            "--tls-cert",
            str(self.server_cert),
            "--tls-key",
            str(self.server_key),
            "--tls-client-ca",
            str(self.ca),
        ]

    def client(self, token: str) -> dict[str, str]:
        """What a load generator needs to call over mutual TLS with the bearer token."""
        return {
            "ca": str(self.ca),
            "cert": str(self.client_cert),
            "key": str(self.client_key),
            "server_name": SERVER_NAME,
            "token": token,
        }


def issue_key(python: str, database_url: str) -> str:
    """A new API key for the bench caller, by `sector-credit-server keys create` (which also
    migrates the database); the token, shown once."""
    out = subprocess.run(
        [
            python,
            "-m",
            "sector_credit.server.main",
            "keys",
            "create",
            "--database-url",
            database_url,
            "--caller",
            CALLER,
            "--description",
            "benchmark",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(f"keys create failed ({out.returncode}): {out.stderr[-1000:]}")
    return str(json.loads(out.stdout)["token"])


def channel_credentials(client: dict[str, str]) -> object:
    """The grpc channel credentials of a load generator (in its own process)."""
    import grpc

    return grpc.ssl_channel_credentials(
        root_certificates=Path(client["ca"]).read_bytes(),
        private_key=Path(client["key"]).read_bytes(),
        certificate_chain=Path(client["cert"]).read_bytes(),
    )


if __name__ == "__main__":  # a quick look: make the files in a folder and print the flags
    made = SecureFiles.make(Path(sys.argv[1]))
    print(" ".join(made.server_args()))
