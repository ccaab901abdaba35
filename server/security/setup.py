"""What a server process needs for security, decided once at start-up from the settings.

Secure by default: without `--security-config` a server runs in local mode (every caller is
the local principal, with every role), which is allowed on a loopback address only. A
non-loopback address needs TLS and a security configuration, or an explicit `--insecure`.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..settings import Settings
from ..startup import EXIT_CONFIG, StartupFailed
from .config import ConfigError, ConfigFile
from .tls import TlsFiles

if TYPE_CHECKING:  # imported by `build`: the `--workers` supervisor only calls `check`
    from ..tls_front import ConnectionTable
    from .interceptor import Authenticator, AuthInterceptor
    from .keys import ApiKeys


class SecuritySetupError(StartupFailed):
    """The server must not start with these settings (exit 78, one log line); the message
    says what to change."""

    def __init__(self, message: str):
        super().__init__(EXIT_CONFIG, "not serving", error=message)
        self.args = (message,)


@dataclass
class Security:
    authenticator: Authenticator
    interceptor: AuthInterceptor
    tls: TlsFiles | None
    config: ConfigFile | None
    keys: ApiKeys
    # the TLS front's table of connections: client certificates checked by the service
    # (server/tls_front.py); None when gRPC's handshake checks them, or there are none
    connections: ConnectionTable | None = None

    @property
    def mode(self) -> str:
        return "local" if self.config is None else "authenticated"

    @property
    def transport(self) -> str:
        if self.tls is None:
            return "plaintext"
        return "mtls" if self.tls.client_ca is not None else "tls"

    def reload(self) -> None:
        """SIGHUP: the configuration now, the certificates at the next handshake."""
        if self.config is not None:
            self.config.reload()
        if self.tls is not None:
            self.tls.reload()

    def close(self) -> None:
        self.keys.close()


def is_loopback(listen: str) -> bool:
    host = listen.rpartition(":")[0].strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a name or "" / "0.0.0.0"-style wildcard: not provably loopback
        return False


def build(
    settings: Settings, checked: tuple[ConfigFile | None, TlsFiles | None] | None = None
) -> Security:
    """Security for a server process; `checked`: what `check(settings)` returned already."""
    # imported here, not at the top: the `--workers` set's migrating child calls `check`
    # alone, and these bring in SQLAlchemy (docs/benchmarks.md, issue 12)
    from .interceptor import Authenticator, AuthInterceptor
    from .keys import ApiKeys

    config, tls = checked if checked is not None else check(settings)
    keys = ApiKeys(settings.database_url)  # local mode too: keys can be issued before going live
    front = (
        tls is not None and tls.client_ca is not None and settings.client_cert_check == "service"
    )
    connections = None
    if front:  # pyOpenSSL and cryptography only for a server that has the front
        from ..tls_front import ConnectionTable

        connections = ConnectionTable()
    authenticator = Authenticator(config, keys, connections)
    return Security(authenticator, AuthInterceptor(authenticator), tls, config, keys, connections)


def check(settings: Settings) -> tuple[ConfigFile | None, TlsFiles | None]:
    """The security configuration and TLS files, or SecuritySetupError (exit 78) when they
    cannot be read or do not allow serving this address (the `--workers` supervisor checks
    this once, in its migrating child, before it starts the workers)."""
    try:
        config = ConfigFile(settings.security_config) if settings.security_config else None
    except ConfigError as exc:
        raise SecuritySetupError(str(exc)) from None
    try:
        tls = (
            TlsFiles(settings.tls_cert, settings.tls_key, settings.tls_client_ca or None)
            if settings.tls_cert
            else None
        )
    except OSError as exc:
        raise SecuritySetupError(f"TLS files cannot be read: {exc}") from None
    if (
        not is_loopback(settings.listen)
        and not settings.insecure
        and (tls is None or config is None)
    ):
        missing = " and ".join(
            x
            for x, absent in (
                ("TLS (--tls-cert, --tls-key)", tls is None),
                ("authentication (--security-config)", config is None),
            )
            if absent
        )
        raise SecuritySetupError(
            f"refusing to serve {settings.listen} without {missing}: anyone who can reach it could"
            " read every subject's evaluations. Configure them (docs/security.md), listen on"
            " 127.0.0.1, or pass --insecure"
        )
    return config, tls
