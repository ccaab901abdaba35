"""Configuration: command-line flags, each with an environment variable (`SECTOR_CREDIT_*`)."""

from __future__ import annotations

import argparse
import os
import sys
import zoneinfo
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, NoReturn

from .startup import EXIT_CODES_HELP, EXIT_USAGE

if TYPE_CHECKING:
    from _typeshed import SupportsWrite

ENV_PREFIX = "SECTOR_CREDIT_"
DEFAULT_DATABASE_URL = "sqlite:///var/sector-credit.db"
# the purpose codes of reads (GetEvaluation, ListEvaluations), recorded in the query audit
DEFAULT_PURPOSES = (
    "recruitment_review",
    "bid_review",
    "annual_assessment",
    "credit_repair",
    "subject_request",
    "supervision",
)


ANY_PORT = -1
"""`--metrics-port any`: the metrics endpoint on a free port the server picks, reported in its
`serving` log line and its `metrics on port N` output line (0 keeps meaning "off")."""


def port(text: str) -> int:
    """A --metrics-port value: a port number, or `any` (ANY_PORT)."""
    text = text.strip()
    if text.lower() == "any":
        return ANY_PORT
    value = int(text)
    if value < 0:
        raise ValueError(text)
    return value


@dataclass(frozen=True)
class Settings:
    listen: str = "127.0.0.1:50051"
    database_url: str = DEFAULT_DATABASE_URL
    metrics_port: int = 9464  # 0 disables the metrics endpoint; ANY_PORT: any free port
    metrics_host: str = "127.0.0.1"
    batch_limit: int = 1000
    timezone: str = "Asia/Shanghai"
    blocked_plugins: tuple[str, ...] = ()
    only_plugins: tuple[str, ...] = ()  # empty: every installed plugin
    scorecard_paths: tuple[str, ...] = ()
    log_format: str = "auto"  # auto | json | console
    log_level: str = "info"
    grace_seconds: float = 10.0
    max_message_bytes: int = 16 * 1024 * 1024
    max_concurrent_rpcs: int = 0  # 0: unlimited
    migrate: bool = True
    workers: int = 1
    handshake_seconds: float = 10.0  # a connection must send its HTTP/2 preface within this
    connection_idle_seconds: float = 300.0  # a connection without calls this long is closed
    keepalive_seconds: float = 60.0  # an idle connection's peer is pinged this often
    backup_path: str = ""  # `backup DEST`: the file to write
    purposes: tuple[str, ...] = DEFAULT_PURPOSES  # the purpose codes a read may give
    tls_cert: str = ""
    tls_key: str = ""
    tls_client_ca: str = ""
    # who checks a client certificate: the service, after the handshake (server/tls_front.py:
    # a bad one is UNAUTHENTICATED with an access record), or gRPC's TLS handshake itself
    client_cert_check: str = "service"
    security_config: str = ""
    insecure: bool = False
    # GetDisclosure (credit records' public view) without credentials (docs/records.md)
    public_disclosure: bool = False

    @property
    def metrics_bind_port(self) -> int:
        """The port to bind the metrics endpoint on (0: let the system pick)."""
        return 0 if self.metrics_port == ANY_PORT else self.metrics_port

    @property
    def tz(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.timezone)


def _env(name: str, default: str) -> str:
    return os.environ.get(ENV_PREFIX + name, default)


def _csv(text: str) -> tuple[str, ...]:
    return tuple(x.strip() for x in text.split(",") if x.strip())


class _Parser(argparse.ArgumentParser):
    """A bad flag or environment value is one line on stderr and exit 2 (not the usage text
    too: `--help` shows that)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")

    def print_help(self, file: SupportsWrite[str] | None = None) -> None:
        """The help, and then, when the environment holds a value the server would refuse,
        that error too (exit 2): whoever reads the help is about to start the server."""
        super().print_help(file)
        unset = argparse.Namespace(**dict.fromkeys([*_TYPED, *_CHOICES, *_FLAGS]))
        if problems := _from_env(unset, Settings()):
            if file is None:
                sys.stdout.flush()
            self.error("; ".join(problems))


# Typed flags read their environment variable after parsing (`_from_env`), so that a bad value
# there is reported naming the variable, `--help` still works, and the flag overrides it.
_TYPED: dict[str, tuple[str, Callable[[str], int | float], str]] = {
    # dest: (env name, type, what a value must be)
    "metrics_port": ("METRICS_PORT", port, "a port number 0-65535 or any"),
    "batch_limit": ("BATCH_LIMIT", int, "a whole number ≥ 1"),
    "grace_seconds": ("GRACE_SECONDS", float, "a number of seconds ≥ 0"),
    "max_message_bytes": ("MAX_MESSAGE_BYTES", int, "a whole number ≥ 1"),
    "max_concurrent_rpcs": ("MAX_CONCURRENT_RPCS", int, "a whole number ≥ 0"),
    "workers": ("WORKERS", int, "a whole number ≥ 1"),
    "handshake_seconds": ("HANDSHAKE_SECONDS", float, "a number of seconds 1-86400"),
    "connection_idle_seconds": ("CONNECTION_IDLE_SECONDS", float, "a number of seconds 1-86400"),
    "keepalive_seconds": ("KEEPALIVE_SECONDS", float, "a number of seconds 1-86400"),
}
_CHOICES = {
    "log_format": ("LOG_FORMAT", ("auto", "json", "console")),
    "log_level": ("LOG_LEVEL", ("debug", "info", "warning", "error")),
    "client_cert_check": ("CLIENT_CERT_CHECK", ("service", "handshake")),
}
_FLAGS = {
    "no_migrate": "NO_MIGRATE",
    "insecure": "INSECURE",  # store_true flags: dest -> env
    "public_disclosure": "PUBLIC_DISCLOSURE",
}
_BOOLEAN = {
    "1": True,
    "true": True,
    "yes": True,
    "0": False,
    "false": False,
    "no": False,
    "": False,
}


def _number(text: str, kind: Callable[[str], int | float]) -> int | float:
    value = kind(text.strip())
    if kind is float and (value != value or value in (float("inf"), float("-inf"))):  # NaN, ±inf
        raise ValueError(text)
    return value


def build_parser() -> argparse.ArgumentParser:
    d = Settings()
    ap = _Parser(
        prog="sector-credit-server",
        description=(
            "Sector credit evaluation service: transparent, point-based credit grades over gRPC."
        ),
        epilog="Every flag can also be set by the environment variable shown in brackets; a flag "
        "given wins over its variable. Command `sector-credit-server migrate` applies the database "
        "migrations and exits. A start-up failure is one log line. " + EXIT_CODES_HELP,
    )
    ap.add_argument(
        "command",
        nargs="?",
        choices=["serve", "migrate", "check-store", "backup"],
        default="serve",
        help="serve (default); migrate: apply database migrations and exit; check-store:"
        " read every stored evaluation back, list those that do not round-trip"
        " (exit code 1 when any); backup DEST: write a consistent copy of the"
        " database to DEST while it serves",
    )
    ap.add_argument(
        "backup_path", nargs="?", default="", metavar="DEST", help="backup: the file to write"
    )

    def add(flag: str, env: str, help: str, **kw: object) -> None:
        ap.add_argument(flag, help=f"{help} [{ENV_PREFIX}{env}]", **kw)  # type: ignore[arg-type]

    def typed(flag: str, help: str) -> None:
        dest = flag[2:].replace("-", "_")
        env, kind, _ = _TYPED[dest]
        add(flag, env, f"{help} (default {getattr(d, dest)})", type=kind, default=None)

    add(
        "--listen",
        "LISTEN",
        "address to serve gRPC on (host:port; port 0 picks a free one)",
        default=_env("LISTEN", d.listen),
    )
    add(
        "--database-url",
        "DATABASE_URL",
        "SQLAlchemy URL of the audit store: sqlite:///path.db (default, embedded) or "
        "postgresql+psycopg://user@host/db",
        default=_env("DATABASE_URL", d.database_url),
    )
    typed(
        "--metrics-port",
        "port of the Prometheus /metrics endpoint (0: off; any: a free port,"
        " printed as `metrics on port N` and in the serving log line)",
    )
    add(
        "--metrics-host",
        "METRICS_HOST",
        "address the metrics endpoint binds",
        default=_env("METRICS_HOST", d.metrics_host),
    )
    typed("--batch-limit", "most items in one BatchEvaluate call")
    add(
        "--timezone",
        "TIMEZONE",
        "time zone whose today is the default as_of",
        default=_env("TIMEZONE", d.timezone),
    )
    add(
        "--block-plugin",
        "BLOCKED_PLUGINS",
        "plugin name not to load (repeatable; env: comma-separated)",
        action="append",
        default=None,
        dest="blocked_plugins",
    )
    add(
        "--only-plugin",
        "ONLY_PLUGINS",
        "load only this installed plugin, ignoring the others "
        "(repeatable; env: comma-separated; `builtin`: the built-in scorecards alone)",
        action="append",
        default=None,
        dest="only_plugins",
    )
    add(
        "--scorecards",
        "SCORECARDS",
        "extra scorecard file or folder (repeatable; env: comma-separated)",
        action="append",
        default=None,
        dest="scorecard_paths",
    )
    add(
        "--log-format",
        "LOG_FORMAT",
        "auto (console on a terminal, else JSON), json or console",
        choices=["auto", "json", "console"],
        default=None,
    )
    add(
        "--log-level",
        "LOG_LEVEL",
        "debug, info, warning or error",
        choices=["debug", "info", "warning", "error"],
        default=None,
    )
    typed("--grace-seconds", "on SIGTERM/SIGINT, how long in-flight calls may finish")
    typed("--max-message-bytes", "largest request or response message")
    typed(
        "--max-concurrent-rpcs",
        "calls in flight per process before RESOURCE_EXHAUSTED (0: unlimited)",
    )
    add(
        "--no-migrate",
        "NO_MIGRATE",
        "do not apply migrations at start-up (set to 1)",
        action="store_true",
        default=None,
    )
    typed("--workers", "server processes sharing the port (SO_REUSEPORT)")
    typed(
        "--handshake-seconds",
        "a connection that has not sent its HTTP/2 preface and settings within this is closed",
    )
    typed(
        "--connection-idle-seconds", "a connection without calls for this long is closed (GOAWAY)"
    )
    typed(
        "--keepalive-seconds",
        "the server pings a connection's peer this often (no answer in 20 s: closed)",
    )
    add(
        "--purposes",
        "PURPOSES",
        "the purpose codes a read of evaluations may give (comma-separated)",
        default=_env("PURPOSES", ",".join(d.purposes)),
    )
    add(
        "--tls-cert",
        "TLS_CERT",
        "PEM certificate chain of the server: serve TLS",
        default=_env("TLS_CERT", d.tls_cert),
    )
    add("--tls-key", "TLS_KEY", "PEM private key of --tls-cert", default=_env("TLS_KEY", d.tls_key))
    add(
        "--tls-client-ca",
        "TLS_CLIENT_CA",
        "PEM CA certificate(s): require client certificates signed by them (mutual TLS)",
        default=_env("TLS_CLIENT_CA", d.tls_client_ca),
    )
    add(
        "--client-cert-check",
        "CLIENT_CERT_CHECK",
        "with --tls-client-ca: `service` (default) accepts the TLS handshake whatever the"
        " certificate and refuses a call over a missing, expired or foreign one UNAUTHENTICATED,"
        " with an access record; `handshake` lets gRPC's TLS refuse such a connection (the"
        " client sees UNAVAILABLE, nothing is recorded; docs/security.md)",
        choices=["service", "handshake"],
        default=None,
    )
    add(
        "--security-config",
        "SECURITY_CONFIG",
        "TOML file of callers, roles and scopes "
        "(docs/security.md); without it a loopback server runs in local mode",
        default=_env("SECURITY_CONFIG", d.security_config),
    )
    add(
        "--public-disclosure",
        "PUBLIC_DISCLOSURE",
        "let callers without credentials read the"
        " disclosure view of credit records, GetDisclosure (set to 1)",
        action="store_true",
        default=None,
    )
    add(
        "--insecure",
        "INSECURE",
        "allow a non-loopback address without TLS and authentication (set to 1)",
        action="store_true",
        default=None,
    )
    return ap


def _from_env(a: argparse.Namespace, d: Settings) -> list[str]:
    """Fill the flags not given from their environment variables; the problems found."""
    problems: list[str] = []
    for dest, (env, kind, what) in _TYPED.items():
        if getattr(a, dest) is not None:
            continue
        text = os.environ.get(ENV_PREFIX + env)
        value: object = getattr(d, dest)
        if text is not None:
            try:
                value = _number(text, kind)
            except ValueError:
                problems.append(f"{ENV_PREFIX}{env}={text!r}: expected {what}")
        setattr(a, dest, value)
    for dest, (env, choices) in _CHOICES.items():
        if getattr(a, dest) is None:
            text = os.environ.get(ENV_PREFIX + env, getattr(d, dest)).strip().lower()
            if text not in choices:
                problems.append(f"{ENV_PREFIX}{env}={text!r}: expected one of {', '.join(choices)}")
            setattr(a, dest, text)
    for dest, env in _FLAGS.items():
        if getattr(a, dest) is None:
            text = os.environ.get(ENV_PREFIX + env, "")
            if text.strip().lower() not in _BOOLEAN:
                problems.append(f"{ENV_PREFIX}{env}={text!r}: expected 1 or 0")
            setattr(a, dest, _BOOLEAN.get(text.strip().lower(), False))
    return problems


def _check_address(text: str, flag: str) -> str | None:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        return f"{flag} {text!r}: expected host:port, such as 127.0.0.1:50051 (port 0-65535)"
    return None


def parse(argv: Sequence[str] | None = None) -> tuple[str, Settings]:
    ap = build_parser()
    a = ap.parse_args(argv)
    problems = _from_env(a, Settings())
    blocked = tuple(a.blocked_plugins) if a.blocked_plugins else _csv(_env("BLOCKED_PLUGINS", ""))
    only = tuple(a.only_plugins) if a.only_plugins else _csv(_env("ONLY_PLUGINS", ""))
    paths = tuple(a.scorecard_paths) if a.scorecard_paths else _csv(_env("SCORECARDS", ""))
    try:
        zoneinfo.ZoneInfo(a.timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        problems.append(f"--timezone: unknown time zone {a.timezone!r}")
    problems += filter(None, [_check_address(a.listen, "--listen")])
    for name in ("batch_limit", "max_message_bytes", "workers"):
        if isinstance(getattr(a, name), (int, float)) and getattr(a, name) < 1:
            problems.append(f"--{name.replace('_', '-')} must be at least 1")
    for name in ("grace_seconds", "max_concurrent_rpcs"):  # --metrics-port: `port` refuses < 0
        if isinstance(getattr(a, name), (int, float)) and getattr(a, name) < 0:
            problems.append(f"--{name.replace('_', '-')} must not be negative")
    if isinstance(a.metrics_port, int) and a.metrics_port > 65535:
        problems.append("--metrics-port must be at most 65535")
    for name in ("handshake_seconds", "connection_idle_seconds", "keepalive_seconds"):
        if isinstance(getattr(a, name), (int, float)) and not 1 <= getattr(a, name) <= 86_400:
            problems.append(f"--{name.replace('_', '-')} must be between 1 and 86400")
    if (a.command == "backup") != bool(a.backup_path):
        problems.append("backup needs its DEST, and only backup takes one")
    purposes = _csv(a.purposes)
    if not purposes or any(not p.isidentifier() or len(p) > 64 for p in purposes):
        problems.append(
            "--purposes: give one or more codes (letters, digits and _, at most 64 each)"
        )
    if bool(a.tls_cert) != bool(a.tls_key) or (a.tls_client_ca and not a.tls_cert):
        problems.append("--tls-cert and --tls-key go together; --tls-client-ca needs both")
    if problems:
        ap.error("; ".join(problems))
    return a.command, Settings(
        listen=a.listen,
        database_url=a.database_url,
        metrics_port=a.metrics_port,
        metrics_host=a.metrics_host,
        batch_limit=a.batch_limit,
        timezone=a.timezone,
        blocked_plugins=blocked,
        only_plugins=only,
        scorecard_paths=paths,
        log_format=a.log_format,
        log_level=a.log_level,
        grace_seconds=a.grace_seconds,
        max_message_bytes=a.max_message_bytes,
        max_concurrent_rpcs=a.max_concurrent_rpcs,
        migrate=not a.no_migrate,
        workers=a.workers,
        handshake_seconds=a.handshake_seconds,
        connection_idle_seconds=a.connection_idle_seconds,
        keepalive_seconds=a.keepalive_seconds,
        backup_path=a.backup_path,
        purposes=purposes,
        tls_cert=a.tls_cert,
        tls_key=a.tls_key,
        tls_client_ca=a.tls_client_ca,
        client_cert_check=a.client_cert_check,
        security_config=a.security_config,
        insecure=a.insecure,
        public_disclosure=a.public_disclosure,
    )
