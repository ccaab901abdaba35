"""PostgreSQL's writer (dbwriter.py): each group's multi-row INSERTs and COMMIT on the
writer's SQLAlchemy connection. A COMMIT waits for a round trip and the server's fsync;
nothing else is PostgreSQL's own (no file to watch, no lock between processes: the server
orders its writers)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from .dbwriter import AccessOf, DatabaseWriter, GroupWritten
from .failures import refused_row


class PostgresWriter(DatabaseWriter):
    def _insert_group(self, conn: Connection, rows: list[dict[str, Any]],
                      access: AccessOf) -> GroupWritten:
        try:
            self._rows.insert(conn, rows)
        except DBAPIError as exc:
            if refused_row(exc) is None:
                raise
            conn.rollback()
            return self._row_by_row(conn, rows, access)
        self._access.insert(conn, access(None))
        self._commit(conn)
        return GroupWritten([None] * len(rows))
