"""How the database's exceptions become the store's errors: what the caller is told, what the
operator's log gets, and whether a failure is one row's own (its data) or the database's."""

from __future__ import annotations

import sqlite3

from sqlalchemy.exc import DataError

from .errors import StoreUnavailable

# SQLSTATE classes of errors caused by one row's own data: 22 data exception (e.g. a value
# the column type cannot hold), 23 integrity constraint violation, 54 program limit exceeded
# (e.g. an index entry over 8 kB: a 12,000-character request_id)
_ROW_SQLSTATE = {
    "22": "a value the database cannot hold",
    "23": "it breaks a constraint of the audit table",
    "54": "a value too large for the database",
}


def describe(exc: BaseException) -> str:
    """The driver's exception in one line, for the operator's log."""
    cause = getattr(exc, "orig", None) or exc
    first_line = (str(cause).strip().splitlines() or [""])[0]
    return f"{type(cause).__name__}: {first_line}"


def unavailable(exc: BaseException) -> StoreUnavailable:
    """What the caller is told: no host, port, driver message or class name; those are the
    exception's `detail`, for the operator's log."""
    return StoreUnavailable(
        "the audit database is unavailable; retry (with the same request_id)", detail=describe(exc)
    )


def refused_row(exc: BaseException) -> str | None:
    """Why the database refused a row for its own data (constraint, size, encoding), or None
    when the error is not about the row (an outage, a lock, a dead connection)."""
    orig = getattr(exc, "orig", None) or exc
    if isinstance(orig, sqlite3.IntegrityError):
        return _ROW_SQLSTATE["23"]
    if isinstance(orig, sqlite3.DataError):  # SQLITE_TOOBIG, a string or blob over the limit
        return _ROW_SQLSTATE["54"]
    sqlstate = getattr(orig, "sqlstate", None)
    if isinstance(sqlstate, str) and sqlstate[:2] in _ROW_SQLSTATE:
        return _ROW_SQLSTATE[sqlstate[:2]]
    if isinstance(exc, DataError):
        # psycopg refuses a NUL in text itself, before the server sees it (no SQLSTATE)
        return "a value the database cannot hold (such as a NUL character)"
    return None
