"""One database's side of a group commit: the small interface the group-commit writer
(groupcommit.py) writes through, and what SQLite's and PostgreSQL's writers share.

`DatabaseWriter.write(rows, access)` writes one group (evaluation rows, then the group's
access records) in one transaction on the writer's own connection and commits it, or raises
`StoreUnavailable`; `check_health()` raises it when the database cannot take a commit now;
`close()` releases the connection. `groupcommit.database_writer` picks the subclass by the
engine's dialect: `sqlite_writer.SqliteWriter` or `postgres_writer.PostgresWriter`. Each
subclass gives the fast path of a group without surprises (`_insert_group`); what is the same
for both lives here: the connection kept between groups, one reconnection when the
connection was found dead before COMMIT (or at any point, for a writer whose inserts skip
the rows stored already: `_replay_safe`), and the row-by-row path for a group the unique
constraint (or one row's data) refused, each row in a SAVEPOINT.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError, IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session

from .errors import InvalidRecord, RequestConflict
from .failures import describe, refused_row, unavailable
from .models import EvaluationRow
from .rowjson import ResultParts
from .rows import ACCESS, EVALUATIONS, RowOutcome, stored

log = logging.getLogger(__name__)

AccessOf = Callable[[list[RowOutcome] | None], list[dict[str, Any]]]
"""A group's access records given its rows' outcomes (None: every row inserted)."""

PartsOn = Callable[[str, Connection], ResultParts | None]
"""The result parts of a digest, read on the writer's connection where not known."""


@dataclass(frozen=True, slots=True)
class GroupWritten:
    """A committed group: one outcome per row, and whether it went row by row."""

    outcomes: list[RowOutcome]
    row_by_row: bool = False


class DatabaseWriter:
    """Writes groups on one connection of `engine`, kept between groups (a pool checkout and
    its reset per group cost more than a small group's INSERT). Runs on the group-commit
    writer's thread only."""

    def __init__(self, engine: sa.Engine, parts_for: PartsOn) -> None:
        self._engine = engine
        self._parts_for = parts_for
        self._conn: Connection | None = None
        self._table = EVALUATIONS
        self._rows = self._inserter(EVALUATIONS)
        self._access = self._inserter(ACCESS)
        self._committing = False  # COMMIT sent: a dead connection now leaves the outcome open

    # -- the interface -----------------------------------------------------------------------

    def write(self, rows: list[dict[str, Any]], access: AccessOf) -> GroupWritten:
        """Insert and commit a group; raises `StoreUnavailable` (nothing acknowledged)."""
        for attempt in (1, 2):
            self._committing = False
            try:
                conn = self._connection()
                if _has_repeated_request_id(rows):
                    return self._row_by_row(conn, rows, access)
                return self._insert_group(conn, rows, access)
            except DBAPIError as exc:
                # A connection found dead before COMMIT was sent committed nothing, so the
                # group can go again on a fresh one; after COMMIT was sent the outcome is
                # unknown and the waiters must be told (their retry is idempotent), unless
                # the writer's inserts skip the rows stored already (`_replay_safe`).
                self._discard_connection()
                retry = not self._committing or self._replay_safe
                if exc.connection_invalidated and retry and attempt == 1:
                    log.warning("audit writer reconnecting: %s", describe(exc))
                    continue
                raise unavailable(exc) from exc
            except SQLAlchemyError as exc:
                self._discard_connection()
                raise unavailable(exc) from exc
        raise AssertionError("unreachable")

    def check_health(self) -> None:
        """Raise `StoreUnavailable` when the database cannot take a commit, as far as can be
        seen without writing (cheap; called from any thread)."""

    def use_table(self, table: sa.Table) -> None:
        """Write the groups' rows into `table` instead of the evaluations (the benchmarks'
        durable ceiling, bench/ceiling_server.py: the same writer and group commit, another
        row). Call before the first group."""
        self._table = table
        self._rows = self._inserter(table)

    def close(self) -> None:
        """Release the connection (on the writer's thread, after its last group)."""
        if self._conn is not None:
            try:
                self._conn.close()
            except SQLAlchemyError:
                pass
            self._conn = None

    # -- for the subclasses ------------------------------------------------------------------

    _replay_safe = False
    """True when writing a group again stores nothing twice: its inserts skip a row whose id
    is stored already (`_inserter`, `_insert_statement`), so a group whose connection died
    after COMMIT was sent can go again on a fresh connection (PostgreSQL)."""

    def _inserter(self, table: sa.Table) -> RowInserter:
        """The multi-row INSERTs of the fast path into `table`."""
        return RowInserter(self._engine.dialect, table)

    def _insert_statement(self, table: sa.Table) -> Any:
        """The INSERT of the row-by-row path into `table`."""
        return sa.insert(table)

    def _insert_group(
        self, conn: Connection, rows: list[dict[str, Any]], access: AccessOf
    ) -> GroupWritten:
        """The fast path: all rows, then the access records, one COMMIT. Goes row by row
        (`_row_by_row`) when a row is refused for its own data."""
        raise NotImplementedError

    def _opened(self, conn: Connection) -> None:
        """Set up a connection just opened for the writer."""

    def _commit(self, conn: Connection) -> None:
        self._committing = True
        conn.commit()
        self._committing = False

    def _row_by_row(
        self, conn: Connection, rows: list[dict[str, Any]], access: AccessOf
    ) -> GroupWritten:
        outcomes: list[RowOutcome] = []
        for row in rows:
            try:
                with conn.begin_nested():
                    conn.execute(self._insert_statement(self._table), row)
            except IntegrityError as exc:
                outcomes.append(self._existing(conn, row, exc))
            except DBAPIError as exc:
                why = refused_row(exc)
                if why is None:  # not this row's data: the database failed, the group fails
                    raise
                log.warning("audit row refused (%s): %s", why, describe(exc))
                outcomes.append(InvalidRecord(f"the database refused this evaluation: {why}"))
            else:
                outcomes.append(None)
        records = access(outcomes)
        if records:
            conn.execute(self._insert_statement(ACCESS), records)
        self._commit(conn)
        return GroupWritten(outcomes, row_by_row=True)

    def _existing(self, conn: Connection, row: dict[str, Any], exc: IntegrityError) -> RowOutcome:
        """The outcome for a row the unique constraint refused: replay or conflict."""
        request_id = row["request_id"]
        found = None
        if request_id is not None:
            with Session(bind=conn) as session:  # joins the open transaction, never commits it
                found = session.scalars(
                    sa.select(EvaluationRow).where(EvaluationRow.request_id == request_id)
                ).one_or_none()
                if found is not None and found.request_digest == row["request_digest"]:
                    return stored(
                        found, replayed=True, parts_for=lambda digest: self._parts_for(digest, conn)
                    )
        if found is None:
            log.warning("audit row refused (a constraint): %s", describe(exc))
            return InvalidRecord(
                "the database refused this evaluation: it breaks a constraint of the audit table"
            )
        return RequestConflict(request_id, str(found.id))

    def _connection(self) -> Connection:
        conn = self._conn
        if conn is None or conn.closed or conn.invalidated:
            if conn is not None:
                conn.close()
            conn = self._conn = self._engine.connect()
            self._opened(conn)
        return conn

    def _discard_connection(self) -> None:
        """After a failure: roll back what is open and start the next group afresh."""
        conn = self._conn
        if conn is not None:
            try:
                if conn.in_transaction() and not conn.invalidated:
                    conn.rollback()
            except SQLAlchemyError:
                pass
        self.close()


class RowInserter:
    """A group's rows as a few multi-row INSERTs (`VALUES (…), (…), …`), each value bound by
    its column type's bind processor for the dialect (`dialect_impl(d).bind_processor(d)`,
    public API): the rows are stored
    exactly as `conn.execute(insert(table), rows)` stores them, without its per-row and
    per-statement work, and SQLite releases and retakes the GIL once per statement instead of
    once per row. Statements have power-of-two sizes (a group of 37 is 32 + 4 + 1), so the
    drivers' statement caches hold a handful of them. Why not SQLAlchemy's own executemany
    or `insert().values([...])`: bench/insert_bench.py, docs/benchmarks.md (Inserts).
    `suffix` ends every statement (PostgreSQL's `ON CONFLICT (id) DO NOTHING`); `sizes`, the
    statements' row counts, largest first, down to 1."""

    SIZES = (256, 128, 64, 32, 16, 8, 4, 2, 1)

    def __init__(
        self,
        dialect: sa.Dialect,
        table: sa.Table,
        suffix: str = "",
        sizes: tuple[int, ...] = SIZES,
    ) -> None:
        self._sizes = sizes
        columns = list(table.columns)
        self._names = [c.name for c in columns]
        self._processors = [c.type.dialect_impl(dialect).bind_processor(dialect) for c in columns]
        mark = "?" if dialect.paramstyle in ("qmark", "numeric") else "%s"
        quote = dialect.identifier_preparer.quote
        one = "(" + ",".join([mark] * len(columns)) + ")"
        head = (
            f"INSERT INTO {dialect.identifier_preparer.format_table(table)} "
            f"({','.join(quote(n) for n in self._names)}) VALUES "
        )
        self._sql = {n: head + ",".join([one] * n) + suffix for n in sizes}

    def statements(self, rows: list[dict[str, Any]]) -> Iterable[tuple[str, tuple[Any, ...]]]:
        """The INSERTs of a group, with their bound parameters."""
        bound = [
            value if process is None else process(value)
            for row in rows
            for name, process in zip(self._names, self._processors)
            for value in (row[name],)
        ]
        width = len(self._names)
        start, total = 0, len(rows)
        while start < total:
            n = next(size for size in self._sizes if size <= total - start)
            yield self._sql[n], tuple(bound[start * width : (start + n) * width])
            start += n

    def insert(self, conn: Connection, rows: list[dict[str, Any]]) -> None:
        for sql, params in self.statements(rows):
            conn.exec_driver_sql(sql, params)


def _has_repeated_request_id(rows: Iterable[dict[str, Any]]) -> bool:
    seen: set[str] = set()
    for row in rows:
        rid = row["request_id"]
        if rid is not None:
            if rid in seen:
                return True
            seen.add(rid)
    return False
