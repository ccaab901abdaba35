"""PostgreSQL's writer (dbwriter.py): each group in one round trip. BEGIN, the group's
multi-row INSERTs (`RowInserter`), its access records' and COMMIT go out together in
psycopg's pipeline mode, and the writer waits once, at the pipeline's single Sync, for all
their results; a COMMIT still waits for the server's fsync. Before the pipeline a group
cost a round trip per statement: BEGIN, each INSERT (a group of 37 rows is three) and
COMMIT, four or more (docs/benchmarks.md, "PostgreSQL: one round trip per group").

Every INSERT skips a row whose id is stored already (`ON CONFLICT (id) DO NOTHING`; the
ids are the store's own UUIDv7s, made once per row before its first attempt). That makes a
group safe to write again after its connection died at any point, COMMIT sent or not: what
the first attempt committed, it committed whole, and the second finds it by id instead of
storing it twice; a request id already taken still fails its INSERT (the conflict target
is the id alone) and goes the row-by-row way of dbwriter.py. (When the first attempt's
transaction is still open on the server, a connection the client lost and the server has
not noticed yet, the second waits for it at the id's unique index, then skips or inserts.)
Nothing else is PostgreSQL's own (no file to watch, no lock between processes: the server
orders its writers).
"""

from __future__ import annotations

from typing import Any

import psycopg
import sqlalchemy as sa
from psycopg.pq import TransactionStatus
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from .dbwriter import AccessOf, DatabaseWriter, GroupWritten, RowInserter
from .failures import refused_row

PIPELINE_SIZES = (16, 8, 4, 2, 1)
"""Rows per INSERT in the pipeline. Statements of up to 16 rows took 0.4–0.8 × the time per row
of those of up to 256 at groups of 100 and 1,000 (a single 1,000-row INSERT: 2.2 ×), and
matched SQLAlchemy's executemany, which the writer used for large groups before
(bench/insert_bench.py; docs/benchmarks.md)."""


class PostgresWriter(DatabaseWriter):
    _replay_safe = True

    def _inserter(self, table: sa.Table) -> RowInserter:
        return RowInserter(
            self._engine.dialect, table, suffix=_skip_stored(table), sizes=PIPELINE_SIZES
        )

    def _insert_statement(self, table: sa.Table) -> Any:
        return postgresql.insert(table).on_conflict_do_nothing(
            index_elements=list(table.primary_key.columns)
        )

    def _insert_group(
        self, conn: Connection, rows: list[dict[str, Any]], access: AccessOf
    ) -> GroupWritten:
        db = conn.connection.driver_connection
        assert isinstance(db, psycopg.Connection)
        try:
            self._pipelined(db, rows, access(None))
        except psycopg.Error as exc:
            error = _wrapped(conn, db, exc)
            if not error.connection_invalidated:
                try:
                    _rollback(db)
                except psycopg.Error as again:
                    error = _wrapped(conn, db, again)
            if error.connection_invalidated:
                conn.invalidate()  # dbwriter.py writes the group again on a fresh one, once
                raise error from exc
            if refused_row(error) is None:
                raise error from exc
            return self._row_by_row(conn, rows, access)
        return GroupWritten([None] * len(rows))

    def _pipelined(
        self, db: psycopg.Connection[Any], rows: list[dict[str, Any]], records: list[dict[str, Any]]
    ) -> None:
        """BEGIN, the INSERTs and COMMIT, sent as they are queued and answered at the one Sync
        the pipeline sends when it closes. The BEGIN is explicit: psycopg's own, in a
        transaction it opens itself, would be a round trip of its own (a Sync after it).
        Outside the pipeline the connection is as SQLAlchemy left it (not in autocommit, no
        transaction open), for the row-by-row path."""
        db.autocommit = True
        try:
            with db.pipeline(), db.cursor() as cur:
                cur.execute(b"BEGIN")
                for sql, params in self._rows.statements(rows):
                    cur.execute(sql, params)
                for sql, params in self._access.statements(records):
                    cur.execute(sql, params)
                cur.execute(b"COMMIT")
        finally:
            if not db.closed and db.info.transaction_status == TransactionStatus.IDLE:
                db.autocommit = False


def _skip_stored(table: sa.Table) -> str:
    keys = ",".join(c.name for c in table.primary_key.columns)
    return f" ON CONFLICT ({keys}) DO NOTHING"


def _wrapped(conn: Connection, db: psycopg.Connection[Any], exc: psycopg.Error) -> DBAPIError:
    """The driver's exception as SQLAlchemy would have raised it (its class for the SQLSTATE,
    and whether the connection is gone), for the shared handling of dbwriter.py."""
    gone = db.closed or db.broken  # what SQLAlchemy's psycopg dialect calls a disconnect
    error = DBAPIError.instance(
        None, None, exc, psycopg.Error, connection_invalidated=gone, dialect=conn.dialect
    )
    assert isinstance(error, DBAPIError)
    return error


def _rollback(db: psycopg.Connection[Any]) -> None:
    """End what the failed pipeline left open (its BEGIN ran; an INSERT failed, or psycopg
    refused a value before sending it), and leave autocommit as SQLAlchemy set it."""
    if db.info.transaction_status != TransactionStatus.IDLE:
        db.rollback()
    db.autocommit = False
