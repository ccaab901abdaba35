"""Server TLS and mutual TLS, with certificates reloaded without restart.

`grpc.dynamic_ssl_server_credentials` asks the fetcher for a configuration at each new
handshake: it returns a new one when a file's mtime changed or after SIGHUP (`reload()`),
else None (keep the current one). Connections already open keep theirs. With a client CA the
server requires a client certificate signed by it: a connection without one, or with an
expired or foreign one, fails in the handshake and never reaches a handler.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import grpc

from ..logs import log


class TlsFiles:
    def __init__(self, cert: str, key: str, client_ca: str | None = None):
        self.paths = [Path(cert), Path(key)] + ([Path(client_ca)] if client_ca else [])
        self.cert, self.key = Path(cert), Path(key)
        self.client_ca = Path(client_ca) if client_ca else None
        self._lock = threading.Lock()
        self._force = False
        self._stamps = self._mtimes()
        self.initial = self._configuration()  # raises OSError when a file cannot be read

    def _mtimes(self) -> list[tuple[int, int] | None]:
        stamps: list[tuple[int, int] | None] = []
        for p in self.paths:
            try:
                st = os.stat(p)
                stamps.append((st.st_mtime_ns, st.st_size))
            except OSError:
                stamps.append(None)
        return stamps

    def _configuration(self) -> grpc.ServerCertificateConfiguration:
        pair = (self.key.read_bytes(), self.cert.read_bytes())
        ca = self.client_ca.read_bytes() if self.client_ca else None
        return grpc.ssl_server_certificate_configuration([pair], root_certificates=ca)

    def reload(self) -> None:
        """Take the files again at the next handshake (SIGHUP)."""
        self._force = True

    def fetch(self) -> grpc.ServerCertificateConfiguration | None:
        with self._lock:
            stamps = self._mtimes()
            if not self._force and stamps == self._stamps:
                return None
            self._force = False
            self._stamps = stamps
            try:
                config = self._configuration()
            except (OSError, ValueError) as exc:  # half-written files: keep the current ones
                log.error(
                    "TLS certificates not reloaded; the current ones stay in use", error=str(exc)
                )
                return None
        log.info("TLS certificates reloaded", cert=str(self.cert))
        return config

    def credentials(self) -> grpc.ServerCredentials:
        return grpc.dynamic_ssl_server_credentials(
            # types-grpcio wants a configuration back; grpc's own docs: None means no change
            self.initial,
            self.fetch,  # type: ignore[arg-type]
            require_client_authentication=self.client_ca is not None,
        )
