"""SQLite's writer (dbwriter.py): each group a BEGIN IMMEDIATE, multi-row INSERTs and a
COMMIT straight on the driver's connection, between checks that the database file is still
the one the store opened, and in turns with the other processes writing the same file.

Three helpers of their own: `_Checkpointer` keeps the write-ahead log bounded,
`_DatabaseFile` notices the file removed or replaced under the server (and a full disk), and
`_WriterFileLock` orders the writers of one file across `--workers` processes.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: one process per SQLite file
    fcntl = None  # type: ignore[assignment]

from .dbwriter import AccessOf, DatabaseWriter, GroupWritten, PartsOn
from .errors import StoreUnavailable
from .failures import refused_row, unavailable

log = logging.getLogger(__name__)

WAL_LIMIT_BYTES = 16 * 1024 * 1024  # the write-ahead log is cut back past this (_Checkpointer)
MIN_FREE_BYTES = 4 * 1024 * 1024  # less free space than this beside the file: unhealthy
WRITER_CACHE_KIB = 8192
"""The writer connection's page cache (SQLite's default is 2 MB). On a store of 1M evaluations
a one-row commit with 2 MB waits for index pages the cache cannot hold; 8 MB keeps them.
Each server process holds it once, inside the peak-memory budget (docs/benchmarks.md,
"Growth: what the big store costs a commit")."""


class SqliteWriter(DatabaseWriter):
    """Around each group the database file is checked (`_DatabaseFile`): a file removed or
    replaced under the server fails the group as unavailable instead of acknowledging rows
    into a file nobody will read again. The COMMIT never checkpoints (the checkpointer's
    thread does)."""

    def __init__(
        self, engine: sa.Engine, parts_for: PartsOn, wal_limit_bytes: int = WAL_LIMIT_BYTES
    ) -> None:
        super().__init__(engine, parts_for)
        self._wal_limit_bytes = wal_limit_bytes
        self._process_lock = _WriterFileLock.for_engine(engine)
        self._file = _DatabaseFile.for_engine(engine)
        self._checkpointer = _Checkpointer(engine, wal_limit_bytes)

    def write(self, rows: list[dict[str, Any]], access: AccessOf) -> GroupWritten:
        self._file.check()  # before connecting: SQLite would create a new, empty file
        with self._process_lock:
            written = super().write(rows, access)
        # committed into a file removed meanwhile: lost with it, so not acknowledged
        self._file.check()
        self._checkpointer.wrote()
        return written

    def check_health(self) -> None:
        """The file removed or replaced, or its disk (nearly) full (a stat and a statvfs)."""
        self._file.check()
        free = self._file.free_bytes()
        if free is not None and free < MIN_FREE_BYTES:
            raise StoreUnavailable(f"the audit database's disk is full ({free // 1024} KiB free)")

    def close(self) -> None:
        super().close()
        self._process_lock.close()
        self._checkpointer.stop()

    def _opened(self, conn: Connection) -> None:
        conn.execution_options(sqlite_begin="IMMEDIATE")  # for the row-by-row path
        dbapi = conn.connection.dbapi_connection
        assert dbapi is not None
        dbapi.execute("PRAGMA wal_autocheckpoint = 0")  # the checkpointer's job
        dbapi.execute(f"PRAGMA cache_size = -{WRITER_CACHE_KIB}")  # negative: KiB, not pages
        # a log restarted after a checkpoint is cut back to this size at the next commit
        dbapi.execute(f"PRAGMA journal_size_limit = {self._wal_limit_bytes}")

    def _insert_group(
        self, conn: Connection, rows: list[dict[str, Any]], access: AccessOf
    ) -> GroupWritten:
        """BEGIN IMMEDIATE, the INSERTs and COMMIT straight on the driver's connection. For
        the small groups of unary calls, SQLAlchemy's work per statement cost more than
        SQLite's own; the SQLAlchemy connection is left outside any transaction, ready for
        the row-by-row path."""
        dbapi = conn.connection.dbapi_connection
        assert dbapi is not None
        try:
            dbapi.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise unavailable(exc) from exc
        try:
            for sql, params in self._rows.statements(rows):
                dbapi.execute(sql, params)
        except sqlite3.Error as exc:
            if refused_row(exc) is None:
                _rollback_quietly(dbapi)
                raise unavailable(exc) from exc
            dbapi.execute("ROLLBACK")
            return self._row_by_row(conn, rows, access)
        try:
            for sql, params in self._access.statements(access(None)):
                dbapi.execute(sql, params)
            dbapi.execute("COMMIT")
        except sqlite3.Error as exc:
            _rollback_quietly(dbapi)
            raise unavailable(exc) from exc
        return GroupWritten([None] * len(rows))


class _Checkpointer:
    """SQLite: keeps the write-ahead log bounded, from a thread of its own (the COMMIT never
    checkpoints: wal_autocheckpoint is 0 on the writer's connection).

    While there are writes, a PASSIVE checkpoint a few times a second copies the log back
    into the database without blocking anybody. Under steady load that never lets the log
    start over (a commit arrives before each checkpoint has caught up), so the file would
    grow without end: once it is past `limit_bytes`, a RESTART checkpoint waits for the
    commit in progress, holds the next ones (on the writer thread only) while it copies the
    rest, and makes the next commit write the log from its beginning, which cuts the file
    back to `limit_bytes` (journal_size_limit). When writes stop for `IDLE_S`, a TRUNCATE
    checkpoint empties the file. Durability is the same: a commit is in the log either way
    (synchronous=NORMAL)."""

    INTERVAL_S = 0.25
    IDLE_S = 1.0

    def __init__(self, engine: sa.Engine, limit_bytes: int = WAL_LIMIT_BYTES) -> None:
        self._engine = engine
        self._wal = f"{engine.url.database}-wal"
        self._limit = limit_bytes
        self._pending = threading.Event()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="audit-checkpoint", daemon=True)
        self._thread.start()

    def wrote(self) -> None:
        self._pending.set()

    def stop(self) -> None:
        self._stopping = True
        self._pending.set()
        self._thread.join()

    def _wal_bytes(self) -> int:
        try:
            return os.stat(self._wal).st_size
        except OSError:
            return 0

    def _run(self) -> None:
        raw = None
        dirty = False  # written since the last TRUNCATE checkpoint
        try:
            while not self._stopping:
                woken = self._pending.wait(self.IDLE_S if dirty else None)
                if self._stopping:
                    break
                if woken:
                    if self._wal_bytes() <= self._limit:  # past it: no waiting, the log grows
                        time.sleep(self.INTERVAL_S)  # one checkpoint for many commits
                    self._pending.clear()
                    mode = "RESTART" if self._wal_bytes() > self._limit else "PASSIVE"
                    dirty = True
                else:  # no commit for IDLE_S
                    mode = "TRUNCATE"
                try:
                    fresh = raw is None
                    if raw is None:
                        raw = self._engine.raw_connection()
                    # an sqlite3 connection (None only once invalidated, and then raw is None)
                    db = cast(sqlite3.Connection, raw.driver_connection)
                    if fresh:
                        db.execute(f"PRAGMA journal_size_limit = {self._limit}")
                    busy = db.execute(f"PRAGMA wal_checkpoint({mode})").fetchone()[0]
                    if mode == "TRUNCATE" and not busy:
                        dirty = False
                except (SQLAlchemyError, sqlite3.Error) as exc:
                    log.warning("audit checkpoint failed (tried again later): %s", exc)
                    if raw is not None:
                        raw.invalidate()
                        raw = None
        finally:
            if raw is not None:
                raw.close()


class _DatabaseFile:
    """SQLite: the database file the store opened, known by its device and inode. A file
    removed, or replaced by another (a restored copy, a new folder), is noticed at the next
    check: the writer checks before and after each group (a stat, about a microsecond), so
    no commit is acknowledged into a file that is no longer the one at the path. The store
    does not follow a replacement: which file is right is for the operator to say, by a
    restart. A no-op for PostgreSQL."""

    def __init__(self, path: str | None) -> None:
        self._path = path
        self._identity: tuple[int, int] | None = None
        self._reported = False  # the operator is told once, not at every check

    @classmethod
    def for_engine(cls, engine: sa.Engine) -> _DatabaseFile:
        database = engine.url.database
        if engine.dialect.name != "sqlite" or not database or database == ":memory:":
            return cls(None)
        return cls(os.path.abspath(database))

    def check(self) -> None:
        """Raise `StoreUnavailable` when the file is gone or is another file than the first
        check found."""
        if self._path is None:
            return
        try:
            st = os.stat(self._path)
        except OSError as exc:
            self._report(exc.strerror or "cannot stat it")
            raise StoreUnavailable("the audit database file was removed under the server") from None
        identity = (st.st_dev, st.st_ino)
        if self._identity is None:
            self._identity = identity
        elif identity != self._identity:
            self._report("replaced by another file")
            raise StoreUnavailable("the audit database file was replaced under the server")

    def _report(self, what: str) -> None:
        if not self._reported:
            self._reported = True
            log.error(
                "audit database file %s: %s; writes are refused until a restart", self._path, what
            )

    def free_bytes(self) -> int | None:
        """Free space for an unprivileged writer on the file's filesystem (None: PostgreSQL,
        or it cannot be read)."""
        if self._path is None:
            return None
        try:
            st = os.statvfs(os.path.dirname(self._path))
        except OSError:
            return None
        return st.f_bavail * st.f_frsize


class _WriterFileLock:
    """Writers of one SQLite file in several processes (`--workers`) take turns through an
    advisory lock on a file beside it, held around each group's transaction. Without it they
    meet at SQLite's write lock, whose busy handler sleeps 1, 2, 5, 10… ms between attempts
    while the other process commits group after group; a process blocked in flock() is woken
    as soon as the lock is free. SQLite's own locking still guards the data: this only
    orders the writers of this service. A no-op for PostgreSQL (and where there is no
    fcntl)."""

    def __init__(self, path: str | None) -> None:
        self._path = path if fcntl is not None else None
        self._fd = -1

    @classmethod
    def for_engine(cls, engine: sa.Engine) -> _WriterFileLock:
        database = engine.url.database
        if engine.dialect.name != "sqlite" or not database or database == ":memory:":
            return cls(None)
        return cls(database + "-writer.lock")

    def __enter__(self) -> None:
        if self._path is None:
            return
        if self._fd < 0:  # opened by the writer, when first needed, like the database
            try:
                self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as exc:
                raise StoreUnavailable(
                    "the audit database is unavailable; retry (with the same request_id)",
                    detail=f"cannot open {self._path}: {exc.strerror}",
                ) from exc
        fcntl.flock(self._fd, fcntl.LOCK_EX)

    def __exit__(self, *exc_info: object) -> None:
        if self._fd >= 0:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def _rollback_quietly(dbapi: Any) -> None:
    try:
        dbapi.execute("ROLLBACK")
    except sqlite3.Error:
        pass  # no transaction open (SQLite rolled it back itself) or the connection is gone
