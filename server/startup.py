"""Why a server could not start, as one log line and an exit code (README, Configuration).

Each start-up step that can fail for a reason the operator must fix raises `StartupFailed`
with the exit code of its kind; `main` logs it as one line and exits with that code. The
codes (also in `sector-credit-server --help`):

    2   usage: a bad flag or environment value (printed by the argument parser)
    3   an address cannot be listened on: the gRPC or metrics port is in use, or the host
        is not this machine's
    4   the database cannot be used as configured: an unsupported or unparsable URL, a
        SQLite file or folder that cannot be created or written
    5   scorecards or plugins: an invalid scorecard file, a --scorecards path that does not
        exist, a plugin that cannot be loaded, a misspelled hook, a duplicate scorecard
    69  the database could not be reached (EX_UNAVAILABLE: worth a retry later)
"""

from __future__ import annotations

import errno
import socket
from pathlib import Path
from typing import Any

EXIT_USAGE = 2
EXIT_LISTEN = 3
EXIT_DATABASE = 4
EXIT_SCORECARDS = 5
EXIT_UNAVAILABLE = 69
EXIT_CONFIG = 78  # sysexits EX_CONFIG: the security settings do not allow serving

EXIT_CODES_HELP = (
    "Exit codes: 0 stopped cleanly; 1 a worker died; 2 a bad flag or environment value; "
    "3 an address cannot be listened on (gRPC or metrics port in use); 4 the database cannot "
    "be used as configured (unsupported URL, SQLite path not creatable or writable); "
    "5 an invalid scorecard or plugin (misspelled hook, --scorecards path); "
    "69 the database could not be reached; 78 the security settings do not allow serving (a"
    " public address without TLS and --security-config, a bad TLS or security file); 130"
    " interrupted."
)


class StartupFailed(Exception):
    """A start-up step failed: `event` and `fields` make the log line, `exit_code` the exit."""

    def __init__(self, exit_code: int, event: str, **fields: Any):
        super().__init__(event)
        self.exit_code = exit_code
        self.event = event
        self.fields = fields


def _os_error(exc: OSError) -> str:
    return exc.strerror or str(exc)


def check_listen(address: str, what: str) -> None:
    """Fail (exit 3) if `address` (host:port) cannot be bound now, before gRPC tries: gRPC
    would only say "Failed to bind". Port 0 always binds."""
    host, _, port = address.rpartition(":")
    host = host.strip("[]")
    try:
        infos = socket.getaddrinfo(
            host or None, int(port), type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    except (OSError, ValueError) as exc:
        raise StartupFailed(
            EXIT_LISTEN,
            f"cannot listen: {what} address",
            address=address,
            error=getattr(exc, "strerror", None) or str(exc),
        ) from None
    family, kind, proto, _, sockaddr = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gRPC binds
        try:
            probe.bind(sockaddr)
        except OSError as exc:
            raise listen_failed(exc, address, what) from None


def listen_failed(exc: OSError | None, address: str, what: str) -> StartupFailed:
    """The start-up failure (exit 3) for an address that could not be bound."""
    if exc is None:
        return StartupFailed(EXIT_LISTEN, f"cannot listen: {what} address", address=address)
    event = (
        f"cannot listen: {what} port in use"
        if exc.errno == errno.EADDRINUSE
        else f"cannot listen: {what} address"
    )
    return StartupFailed(EXIT_LISTEN, event, address=address, error=_os_error(exc))


def check_database_url(url: str) -> None:
    """Fail (exit 4) unless `url` names a database the audit store supports; for SQLite,
    create the file's folder (the embedded default lives in var/) and check it is writable."""
    import sqlalchemy as sa

    from .db.engine import database_url

    try:
        parsed = database_url(url)
        backend = parsed.get_backend_name()
    except (sa.exc.ArgumentError, ValueError) as exc:
        raise StartupFailed(
            EXIT_DATABASE,
            "unsupported database URL",
            database=masked_url(url),
            error=str(exc),
            supported="sqlite:///path.db, postgresql://user@host/db",
        ) from None
    if backend == "postgresql":
        return
    if backend != "sqlite":
        raise StartupFailed(
            EXIT_DATABASE,
            "unsupported database URL",
            database=masked_url(url),
            error=f"the audit store supports SQLite and PostgreSQL, not {backend!r}",
            supported="sqlite:///path.db, postgresql://user@host/db",
        )
    assert parsed.database  # database_url refuses an in-memory or empty SQLite database
    path = Path(parsed.database)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StartupFailed(
            EXIT_DATABASE,
            "cannot create the SQLite database's folder",
            folder=str(path.parent),
            error=_os_error(exc),
        ) from None
    if path.is_dir():
        raise StartupFailed(EXIT_DATABASE, "the SQLite database path is a folder", path=str(path))
    try:  # a real open, not os.access: root passes access checks that the file system refuses
        with path.open("ab"):  # none yet: an empty file, which SQLite takes as a new database
            pass
    except OSError as exc:
        raise StartupFailed(
            EXIT_DATABASE,
            "the SQLite database is not writable",
            path=str(path),
            error=_os_error(exc),
        ) from None


def masked_url(url: str) -> str:
    """A database URL without its password, for logs."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<unparsable url>"


def _plugin_name(plugin: object) -> str:
    return str(getattr(plugin, "__name__", None) or type(plugin).__name__)


def scorecards_failed(exc: Exception) -> StartupFailed:
    """The start-up failure (exit 5) for what loading the plugins and scorecards raised."""
    import pluggy
    from sector_credit.scorecards.model import InvalidScorecard

    if isinstance(exc, InvalidScorecard):
        return StartupFailed(
            EXIT_SCORECARDS, "invalid scorecard", problems=[str(p) for p in exc.problems]
        )
    if isinstance(exc, pluggy.PluginValidationError):  # check_pending: a hook no spec has
        return StartupFailed(
            EXIT_SCORECARDS, "invalid plugin", plugin=_plugin_name(exc.plugin), error=str(exc)
        )
    # a plugin that fails to import, or raises in its hook
    return StartupFailed(
        EXIT_SCORECARDS, "a plugin failed to load", error=f"{type(exc).__name__}: {exc}"
    )


def check_scorecard_paths(paths: tuple[str, ...]) -> None:
    """Fail (exit 5) when a --scorecards path does not exist (it would register nothing)."""
    missing = [p for p in paths if not Path(p).exists()]
    if missing:
        raise StartupFailed(EXIT_SCORECARDS, "no such scorecard file or folder", paths=missing)
