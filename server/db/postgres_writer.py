"""PostgreSQL's writer (dbwriter.py): each group's INSERTs and COMMIT on the writer's
SQLAlchemy connection. A COMMIT waits for a round trip and the server's fsync; nothing else
is PostgreSQL's own (no file to watch, no lock between processes: the server orders its
writers).

Small groups (unary calls) go as the hand-built multi-row INSERTs of `RowInserter`; groups of
`EXECUTEMANY_FROM` rows or more (batches) as SQLAlchemy's own `execute(insert(table), rows)`,
which psycopg sends as batched multi-row INSERTs ("insertmanyvalues"): bench/insert_bench.py
measured it 0.4–0.5 × the time per row at 1,000 rows, and 1.2–1.35 × at 4 rows
(docs/benchmarks.md, Inserts). Both store the same values (tests/test_store_rows.py).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from .dbwriter import AccessOf, DatabaseWriter, GroupWritten
from .failures import refused_row

EXECUTEMANY_FROM = 100


class PostgresWriter(DatabaseWriter):
    def _insert_group(
        self, conn: Connection, rows: list[dict[str, Any]], access: AccessOf
    ) -> GroupWritten:
        try:
            if len(rows) >= EXECUTEMANY_FROM:
                conn.execute(sa.insert(self._table), rows)
            else:
                self._rows.insert(conn, rows)
        except DBAPIError as exc:
            if refused_row(exc) is None:
                raise
            conn.rollback()
            return self._row_by_row(conn, rows, access)
        self._access.insert(conn, access(None))
        self._commit(conn)
        return GroupWritten([None] * len(rows))
