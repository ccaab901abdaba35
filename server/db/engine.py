"""The one place that builds SQLAlchemy engines for the audit database.

URLs: `sqlite:///path/to/audit.db` (the embedded default) or `postgresql://user@host/db`
(`postgres://` and the bare `postgresql://` are read as psycopg 3, the driver installed).

SQLite connections get WAL mode, `synchronous=NORMAL` (a commit is durable against a crash
of the process; the last commits may be lost on power failure, as the research accepts),
a busy timeout, and real transactions: the sqlite3 module's legacy mode would run DDL and
SAVEPOINTs outside them, so it is switched off and SQLAlchemy emits BEGIN itself. A
connection given the execution option `sqlite_begin="IMMEDIATE"` takes the write lock at
BEGIN, so a writer never fails upgrading a read lock while another process writes.
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection, Engine
from sqlalchemy.pool import NullPool

from .rowjson import JsonText

SQLITE_BUSY_TIMEOUT_MS = 10_000
CONNECT_TIMEOUT_S = 5

# Chinese titles stay readable in the stored JSON, and shorter. One encoder for all rows:
# json.dumps with options would build a new one per call.
_encode_json = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode


def _json_dumps(value: Any) -> str:
    """The JSON columns' serializer: a document the store encoded already (`JsonText`, see
    rowjson.py) goes in as it is."""
    if type(value) is JsonText:
        return value
    return _encode_json(value)


def database_url(url: str | URL) -> URL:
    """The URL with the installed PostgreSQL driver named; SQLite in memory is refused."""
    parsed = sa.make_url(url)
    if parsed.drivername in ("postgres", "postgresql"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() == "sqlite" and parsed.database in (None, "", ":memory:"):
        # Each pooled connection would see its own empty database.
        raise ValueError("the audit store needs a SQLite file, not an in-memory database")
    return parsed


def create_engine(url: str | URL, *, pool_size: int = 5, null_pool: bool = False) -> Engine:
    """An engine for the audit database. `null_pool` for one-off work such as migrations."""
    parsed = database_url(url)
    backend = parsed.get_backend_name()
    kwargs: dict[str, Any] = {"json_serializer": _json_dumps}
    if null_pool:
        kwargs["poolclass"] = NullPool
    else:
        kwargs.update(pool_size=pool_size, max_overflow=2, pool_timeout=CONNECT_TIMEOUT_S)
    if backend == "sqlite":
        kwargs["connect_args"] = {
            "check_same_thread": False,
            "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000,
        }
    elif backend == "postgresql":
        kwargs["connect_args"] = {
            "connect_timeout": CONNECT_TIMEOUT_S,
            "application_name": "sector-credit",
        }
    else:
        raise ValueError(f"the audit store supports SQLite and PostgreSQL, not {backend!r}")
    engine = sa.create_engine(parsed, **kwargs)
    if backend == "sqlite":
        sa.event.listen(engine, "connect", _sqlite_on_connect)
        sa.event.listen(engine, "begin", _sqlite_on_begin)
    return engine


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None  # SQLAlchemy emits BEGIN (see _sqlite_on_begin)
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
    finally:
        cursor.close()


def _sqlite_on_begin(conn: Connection) -> None:
    mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
    if mode not in ("DEFERRED", "IMMEDIATE", "EXCLUSIVE"):
        raise ValueError(f"unknown SQLite BEGIN mode {mode!r}")
    conn.exec_driver_sql(f"BEGIN {mode}")


def is_postgresql(engine_or_conn: Engine | Connection) -> bool:
    return engine_or_conn.dialect.name == "postgresql"
