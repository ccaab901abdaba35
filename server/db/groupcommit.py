"""The group-commit writer: the rows of many requests in one transaction, on a thread of its
own, on SQLite as on PostgreSQL.

`EvaluationStore.save()` prepares the row on the caller's coroutine (id, JSON documents, see
rowjson.py), and at the end of that turn of the event loop the rows of every request that got
there in the same turn go to the writer together (`GroupWriter.submit_all`); the caller
waits. The writer takes everything pending (up to `max_group_rows` rows; a `save_many` batch
is never split) and writes it through its database's writer (`DatabaseWriter`, dbwriter.py:
a few multi-row INSERTs and one COMMIT), then wakes every waiter of the group. While a commit
runs, the next group gathers, so under load one commit serves many requests and with one
request in flight nothing waits for a timer. A waiter is woken only after COMMIT returned:
an acknowledged evaluation is on disk. When a group fails, every waiter of that group gets
`StoreUnavailable`: nothing of it was acknowledged. (When the connection dies during COMMIT
itself the rows may still be on disk; a retry with the same request id then gets the stored
evaluation back. On PostgreSQL the writer itself writes such a group again on a fresh
connection, and finds what was committed by id: postgres_writer.py.)

A thread, on either database: a COMMIT may wait for a round trip and the server's fsync
(PostgreSQL) or for the disk (SQLite: a full or frozen filesystem, another process holding
the write lock), and only the calls whose rows are in the group may wait with it; the event
loop goes on serving health, scorecards, validation and reads. (SQLite groups were once
written on the event loop itself, which saved the thread's GIL hand-overs at half load, but
one stalled write then froze the whole server.)
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from .dbwriter import DatabaseWriter, PartsOn
from .errors import StoreError, StoreUnavailable
from .failures import unavailable
from .rows import RowOutcome
from .sqlite_writer import WAL_LIMIT_BYTES, SqliteWriter

log = logging.getLogger(__name__)

WRITER_STALL_S = 2.0  # a group commit running longer than this makes the store unhealthy


def database_writer(
    engine: sa.Engine, parts_for: PartsOn, wal_limit_bytes: int = WAL_LIMIT_BYTES
) -> DatabaseWriter:
    """The writer of the engine's database. psycopg is imported only for PostgreSQL: on
    SQLite it would be some 9 MB resident in each server process for nothing (issue 12)."""
    if engine.dialect.name == "sqlite":
        return SqliteWriter(engine, parts_for, wal_limit_bytes)
    from .postgres_writer import PostgresWriter

    return PostgresWriter(engine, parts_for)


@dataclass(slots=True)
class StoreStats:
    """Counters of the writer since the store opened."""

    commits: int = 0  # successful COMMITs of groups
    rows: int = 0  # rows written
    groups_failed: int = 0
    row_by_row: int = 0  # groups written row by row after a constraint or data error
    largest_group: int = 0


@dataclass(slots=True)
class Pending:
    """The rows of one call, waiting for their group's commit."""

    rows: list[dict[str, Any]]
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[list[RowOutcome]]
    access: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    access_links: list[int | None] = dataclasses.field(default_factory=list)  # index in rows

    @property
    def size(self) -> int:
        return len(self.rows) + len(self.access)


class GroupWriter:
    """Commits whatever is pending as one group, through `database`, on its own thread.
    `on_commit(rows, seconds)` is called on that thread after each commit (metrics);
    `access_code(error)` names the outcome of an access record whose evaluation row the store
    refused."""

    def __init__(
        self,
        database: DatabaseWriter,
        max_group_rows: int,
        on_commit: Callable[[int, float], None] | None,
        access_code: Callable[[StoreError], str],
    ) -> None:
        self._database = database
        self._access_code = access_code
        self._max_group_rows = max_group_rows
        self._on_commit = on_commit
        self._queue: collections.deque[Pending] = collections.deque()
        self._cond = threading.Condition()
        self._stopping = False
        self._group_started: float | None = None  # monotonic start of the group being written
        self._stats = StoreStats()
        self._thread = threading.Thread(target=self._run, name="audit-writer", daemon=True)
        self._thread.start()

    def submit_all(self, batch: list[Pending]) -> None:
        with self._cond:
            if self._stopping:
                raise StoreUnavailable("the audit store is closed")
            self._queue.extend(batch)
            self._cond.notify()

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify()

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    def is_alive(self) -> bool:
        return self._thread.is_alive()

    def check_health(self) -> None:
        """Raise `StoreUnavailable` when a commit is stuck, or the database cannot take one
        (cheap: a clock read, and for SQLite a stat and a statvfs)."""
        started = self._group_started
        if started is not None and time.monotonic() - started > WRITER_STALL_S:
            raise StoreUnavailable(
                "the audit database has not finished a commit for"
                f" {time.monotonic() - started:.0f} s"
            )
        self._database.check_health()

    def stats_snapshot(self) -> StoreStats:
        with self._cond:
            return dataclasses.replace(self._stats)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._stopping:
                    self._cond.wait()
                if not self._queue:  # stopping, and everything pending is written
                    self._database.close()
                    return
                group = [self._queue.popleft()]
                size = group[0].size
                while self._queue and size + self._queue[0].size <= self._max_group_rows:
                    size += self._queue[0].size
                    group.append(self._queue.popleft())
            self._write(group)
            # not kept while waiting for the next group: up to a thousand rows of documents
            del group

    def _write(self, group: list[Pending]) -> None:
        rows = [row for pending in group for row in pending.rows]
        started = time.perf_counter()
        self._group_started = time.monotonic()

        def access(outcomes: list[RowOutcome] | None) -> list[dict[str, Any]]:
            """The group's access records; one whose evaluation row was refused gets the
            refusal as its outcome (outcomes None: every row was inserted)."""
            found: list[dict[str, Any]] = []
            start = 0
            for pending in group:
                for record, link in zip(pending.access, pending.access_links, strict=True):
                    outcome = None if outcomes is None or link is None else outcomes[start + link]
                    if isinstance(outcome, StoreError):
                        record = {
                            **record,
                            "code": self._access_code(outcome),
                            "reason": outcome.reason,
                            "evaluations_returned": 0,
                        }
                    found.append(record)
                start += len(pending.rows)
            return found

        try:
            written = self._database.write(rows, access)
        except Exception as exc:  # every waiter must hear of it, whatever it is
            if not isinstance(exc, StoreError):
                log.exception("audit write failed unexpectedly")
                exc = unavailable(exc)
            log.warning(
                "audit group of %d rows failed: %s", len(rows), getattr(exc, "detail", "") or exc
            )
            with self._cond:
                self._stats.groups_failed += 1
            _settle(group, error=exc)
            return
        finally:
            self._group_started = None
        elapsed = time.perf_counter() - started
        outcomes = written.outcomes
        with self._cond:
            self._stats.commits += 1
            self._stats.row_by_row += written.row_by_row
            self._stats.rows += sum(1 for o in outcomes if o is None)
            self._stats.largest_group = max(self._stats.largest_group, len(rows))
        _settle(group, outcomes=outcomes)
        if self._on_commit is not None:
            try:
                self._on_commit(len(rows), elapsed)
            except Exception:  # a metrics hook must not stop the writer
                log.exception("audit on_commit hook failed")


def _settle(
    group: list[Pending],
    *,
    outcomes: list[RowOutcome] | None = None,
    error: BaseException | None = None,
) -> None:
    """Wake the waiters of a group from the writer thread: one hop per event loop (futures
    belong to their loop, and each hop is a write to the loop's wake-up pipe)."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[Pending, list[RowOutcome] | None]]] = {}
    start = 0
    for pending in group:
        end = start + len(pending.rows)
        part = None if outcomes is None else outcomes[start:end]
        by_loop.setdefault(pending.loop, []).append((pending, part))
        start = end

    def wake(items: list[tuple[Pending, list[RowOutcome] | None]]) -> None:
        for pending, part in items:
            if pending.future.done():  # the waiter was cancelled
                continue
            if error is not None:
                # A fresh instance per waiter: one exception object raised in many tasks
                # would collect all their tracebacks.
                fresh = type(error)(*error.args) if isinstance(error, StoreUnavailable) else error
                fresh.__cause__ = error.__cause__
                pending.future.set_exception(fresh)
            else:
                assert part is not None
                pending.future.set_result(part)

    for loop, items in by_loop.items():
        try:
            loop.call_soon_threadsafe(wake, items)
        except RuntimeError:  # the loop is closed: nobody is waiting any more
            pass
