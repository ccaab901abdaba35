"""Server TLS and mutual TLS, with certificates reloaded without restart.

`grpc.dynamic_ssl_server_credentials` asks the fetcher for a configuration at each new
handshake: it returns a new one when a file's mtime changed or after SIGHUP (`reload()`),
else None (keep the current one). Connections already open keep theirs. With a client CA the
server checks client certificates against it: by default in the TLS front
(`server/tls_front.py`, which builds its own TLS context from these files through
`reloaded`), after a handshake that accepts any certificate; with `--client-cert-check
handshake` in gRPC's handshake, where a connection without one, or with an expired or foreign
one, fails and never reaches a handler.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import grpc

from ..logs import log

T = TypeVar("T")


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
        return self.reloaded(self._configuration)

    def reloaded(self, build: Callable[[], T]) -> T | None:
        """`build()` again when SIGHUP came or a file changed since the last time, else None;
        files that do not load are logged, and None keeps the current ones in use. Called at
        each new handshake: by gRPC (`fetch`), or by the TLS front (server/tls_front.py)."""
        with self._lock:
            stamps = self._mtimes()
            if not self._force and stamps == self._stamps:
                return None
            self._force = False
            self._stamps = stamps
            try:
                built = build()
            except Exception as exc:  # half-written files (OSError, a TLS library's error)
                log.error(
                    "TLS certificates not reloaded; the current ones stay in use", error=str(exc)
                )
                return None
        log.info("TLS certificates reloaded", cert=str(self.cert))
        return built

    def credentials(self) -> grpc.ServerCredentials:
        return grpc.dynamic_ssl_server_credentials(
            # types-grpcio wants a configuration back; grpc's own docs: None means no change
            self.initial,
            self.fetch,  # type: ignore[arg-type]
            require_client_authentication=self.client_ca is not None,
        )
