"""Configuration: command-line flags, each with an environment variable (`SECTOR_CREDIT_*`)."""

from __future__ import annotations

import argparse
import os
import zoneinfo
from collections.abc import Sequence
from dataclasses import dataclass

ENV_PREFIX = "SECTOR_CREDIT_"
DEFAULT_DATABASE_URL = "sqlite:///var/sector-credit.db"


@dataclass(frozen=True)
class Settings:
    listen: str = "127.0.0.1:50051"
    database_url: str = DEFAULT_DATABASE_URL
    metrics_port: int = 9464  # 0 disables the metrics endpoint
    metrics_host: str = "127.0.0.1"
    batch_limit: int = 1000
    timezone: str = "Asia/Shanghai"
    blocked_plugins: tuple[str, ...] = ()
    scorecard_paths: tuple[str, ...] = ()
    log_format: str = "auto"  # auto | json | console
    log_level: str = "info"
    grace_seconds: float = 10.0
    max_message_bytes: int = 16 * 1024 * 1024
    max_concurrent_rpcs: int = 0  # 0: unlimited
    migrate: bool = True
    workers: int = 1
    tls_cert: str = ""
    tls_key: str = ""
    tls_client_ca: str = ""
    security_config: str = ""
    insecure: bool = False

    @property
    def tz(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.timezone)


def _env(name: str, default: str) -> str:
    return os.environ.get(ENV_PREFIX + name, default)


def _csv(text: str) -> tuple[str, ...]:
    return tuple(x.strip() for x in text.split(",") if x.strip())


def build_parser() -> argparse.ArgumentParser:
    d = Settings()
    ap = argparse.ArgumentParser(
        prog="sector-credit-server",
        description="Sector credit evaluation service: transparent, point-based credit grades over gRPC.",
        epilog="Every flag can also be set by the environment variable shown in brackets. "
        "Command `sector-credit-server migrate` applies the database migrations and exits.",
    )
    ap.add_argument("command", nargs="?", choices=["serve", "migrate"], default="serve",
                    help="serve (default) or migrate: apply database migrations and exit")

    def add(flag: str, env: str, help: str, **kw: object) -> None:
        ap.add_argument(flag, help=f"{help} [{ENV_PREFIX}{env}]", **kw)  # type: ignore[arg-type]

    add("--listen", "LISTEN", "address to serve gRPC on (host:port; port 0 picks a free one)",
        default=_env("LISTEN", d.listen))
    add("--database-url", "DATABASE_URL",
        "SQLAlchemy URL of the audit store: sqlite:///path.db (default, embedded) or "
        "postgresql+psycopg://user@host/db", default=_env("DATABASE_URL", d.database_url))
    add("--metrics-port", "METRICS_PORT", "port of the Prometheus /metrics endpoint (0: off)",
        type=int, default=int(_env("METRICS_PORT", str(d.metrics_port))))
    add("--metrics-host", "METRICS_HOST", "address the metrics endpoint binds",
        default=_env("METRICS_HOST", d.metrics_host))
    add("--batch-limit", "BATCH_LIMIT", "most items in one BatchEvaluate call",
        type=int, default=int(_env("BATCH_LIMIT", str(d.batch_limit))))
    add("--timezone", "TIMEZONE", "time zone whose today is the default as_of",
        default=_env("TIMEZONE", d.timezone))
    add("--block-plugin", "BLOCKED_PLUGINS", "plugin name not to load (repeatable; env: comma-separated)",
        action="append", default=None, dest="blocked_plugins")
    add("--scorecards", "SCORECARDS", "extra scorecard file or folder (repeatable; env: comma-separated)",
        action="append", default=None, dest="scorecard_paths")
    add("--log-format", "LOG_FORMAT", "auto (console on a terminal, else JSON), json or console",
        choices=["auto", "json", "console"], default=_env("LOG_FORMAT", d.log_format))
    add("--log-level", "LOG_LEVEL", "debug, info, warning or error",
        choices=["debug", "info", "warning", "error"], default=_env("LOG_LEVEL", d.log_level))
    add("--grace-seconds", "GRACE_SECONDS", "on SIGTERM/SIGINT, how long in-flight calls may finish",
        type=float, default=float(_env("GRACE_SECONDS", str(d.grace_seconds))))
    add("--max-message-bytes", "MAX_MESSAGE_BYTES", "largest request or response message",
        type=int, default=int(_env("MAX_MESSAGE_BYTES", str(d.max_message_bytes))))
    add("--max-concurrent-rpcs", "MAX_CONCURRENT_RPCS", "calls in flight per process before "
        "RESOURCE_EXHAUSTED (0: unlimited)", type=int,
        default=int(_env("MAX_CONCURRENT_RPCS", str(d.max_concurrent_rpcs))))
    add("--no-migrate", "NO_MIGRATE", "do not apply migrations at start-up (set to 1)",
        action="store_true", default=_env("NO_MIGRATE", "") in ("1", "true", "yes"))
    add("--workers", "WORKERS", "server processes sharing the port (SO_REUSEPORT)",
        type=int, default=int(_env("WORKERS", str(d.workers))))
    add("--tls-cert", "TLS_CERT", "PEM certificate chain of the server: serve TLS",
        default=_env("TLS_CERT", d.tls_cert))
    add("--tls-key", "TLS_KEY", "PEM private key of --tls-cert", default=_env("TLS_KEY", d.tls_key))
    add("--tls-client-ca", "TLS_CLIENT_CA", "PEM CA certificate(s): require client certificates "
        "signed by them (mutual TLS)", default=_env("TLS_CLIENT_CA", d.tls_client_ca))
    add("--security-config", "SECURITY_CONFIG", "TOML file of callers, roles and scopes "
        "(docs/security.md); without it a loopback server runs in local mode",
        default=_env("SECURITY_CONFIG", d.security_config))
    add("--insecure", "INSECURE", "allow a non-loopback address without TLS and authentication "
        "(set to 1)", action="store_true", default=_env("INSECURE", "") in ("1", "true", "yes"))
    return ap


def parse(argv: Sequence[str] | None = None) -> tuple[str, Settings]:
    ap = build_parser()
    a = ap.parse_args(argv)
    blocked = tuple(a.blocked_plugins) if a.blocked_plugins else _csv(_env("BLOCKED_PLUGINS", ""))
    paths = tuple(a.scorecard_paths) if a.scorecard_paths else _csv(_env("SCORECARDS", ""))
    try:
        zoneinfo.ZoneInfo(a.timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        ap.error(f"--timezone: unknown time zone {a.timezone!r}")
    for name in ("batch_limit", "max_message_bytes", "workers"):
        if getattr(a, name) < 1:
            ap.error(f"--{name.replace('_', '-')} must be at least 1")
    if a.grace_seconds < 0 or a.metrics_port < 0 or a.max_concurrent_rpcs < 0:
        ap.error("--grace-seconds, --metrics-port and --max-concurrent-rpcs must not be negative")
    if bool(a.tls_cert) != bool(a.tls_key) or (a.tls_client_ca and not a.tls_cert):
        ap.error("--tls-cert and --tls-key go together; --tls-client-ca needs both")
    return a.command, Settings(
        listen=a.listen, database_url=a.database_url, metrics_port=a.metrics_port,
        metrics_host=a.metrics_host, batch_limit=a.batch_limit, timezone=a.timezone,
        blocked_plugins=blocked, scorecard_paths=paths, log_format=a.log_format,
        log_level=a.log_level, grace_seconds=a.grace_seconds,
        max_message_bytes=a.max_message_bytes, max_concurrent_rpcs=a.max_concurrent_rpcs,
        migrate=not a.no_migrate, workers=a.workers, tls_cert=a.tls_cert, tls_key=a.tls_key,
        tls_client_ca=a.tls_client_ca, security_config=a.security_config, insecure=a.insecure,
    )
