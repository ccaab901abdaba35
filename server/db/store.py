"""The audit store: evaluations written durably before the reply, read back for the audit.

`EvaluationStore` owns the engine and is the only code that opens connections or sessions.
Its API is for asyncio (the grpc.aio servicer). Reads run in threads; writes run in a
writer thread on PostgreSQL and on the event loop on SQLite, where a commit is a few hundred
microseconds of local work and a thread hop cost more (see `_GroupWriter`).

Group commit. `save()` prepares the row on the caller's coroutine (id, JSON documents,
see rowjson.py), and at the end of that turn of the event loop the rows of every request
that got there in the same turn go to the writer together; the caller waits. The writer
takes everything pending (up to `max_group_rows` rows; a `save_many` batch is never split)
and writes it on its own connection with a few multi-row INSERTs and one COMMIT, then wakes
every waiter of the group. While a commit runs, the next group gathers, so under
load one commit serves many requests and with one request in flight nothing waits for a
timer. A waiter is woken only after COMMIT returned: an acknowledged evaluation is on
disk. When a group fails, every waiter of that group gets `StoreUnavailable`: nothing of it
was acknowledged. (When the connection dies during COMMIT itself the rows may still be on
disk; a retry with the same request id then gets the stored evaluation back.)

Idempotency. `request_id` is unique in the table. When a group hits the unique constraint
(a retry of a stored request, the same id twice in one group, or another replica that got
there first), the group is written again row by row inside one transaction, each row in a
SAVEPOINT: a row whose request id is taken gets the stored evaluation when the request
digests match, and `RequestConflict` when they differ. The constraint is the arbiter, so
this holds across replicas.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import collections
import dataclasses
import datetime as dt
import hashlib
import json
import logging
import os
import re
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Self, TypeVar, cast

import sqlalchemy as sa
from sector_credit.scorecards.codec import input_from_dict
from sector_credit.scorecards.model import EvaluationInput, EvaluationResult, Scorecard
from sqlalchemy.engine import URL, Connection
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: one process per SQLite file
    fcntl = None  # type: ignore[assignment]

from .engine import create_engine
from .errors import InvalidListRequest, InvalidRecord, RequestConflict, StoreError, StoreUnavailable
from .ids import new_evaluation_id
from .models import EvaluationRow, ScorecardPartsRow
from .rowjson import (
    JsonText,
    ResultParts,
    input_json,
    result_from_document,
    result_json_compact,
    result_parts,
    result_parts_from_document,
    result_parts_json,
)

log = logging.getLogger(__name__)

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
DEFAULT_MAX_GROUP_ROWS = 1000
INLINE_BUSY_TIMEOUT_MS = 200  # SQLite: the longest the event loop waits for a foreign writer

_TABLE = cast(sa.Table, EvaluationRow.__table__)
_PARTS = cast(sa.Table, ScorecardPartsRow.__table__)
_DIGEST = re.compile(r"[0-9a-f]{64}")
T = TypeVar("T")


# --------------------------------------------------------------------------------------------
# What goes in and what comes out


@dataclass(frozen=True, slots=True)
class EvaluationRecord:
    """One evaluation for the store to keep, as the servicer hands it in."""

    input: EvaluationInput  # as received (raw indicator values)
    result: EvaluationResult
    caller: str | None = None  # who asked, as authenticated
    request_id: str | None = None  # the client's idempotency key; "" counts as none
    request_digest: str | None = None  # sha256 hex of the request; None: codec.request_digest


@dataclass(frozen=True, slots=True)
class StoredEvaluation:
    """An evaluation as stored: its id and time, and what went in and came out."""

    id: str  # canonical UUID text, as in the resource name
    created_at: dt.datetime  # aware, UTC
    input: EvaluationInput
    result: EvaluationResult
    request_id: str | None
    request_digest: str
    caller: str | None
    replayed: bool = False  # True: stored earlier under the same request id, returned again

    @property
    def name(self) -> str:
        return f"evaluations/{self.id}"


SaveOutcome = StoredEvaluation | StoreError
"""Per record of `save_many`: the stored evaluation, or `RequestConflict` / `InvalidRecord`."""

Page = tuple[list[StoredEvaluation], str]
"""Evaluations newest first, and the next page token ("" on the last page)."""


@dataclass(slots=True)
class StoreStats:
    """Counters of the writer since the store opened."""

    commits: int = 0  # successful COMMITs of groups
    rows: int = 0  # rows written
    groups_failed: int = 0
    row_by_row: int = 0  # groups written row by row after a constraint or data error
    largest_group: int = 0


# --------------------------------------------------------------------------------------------
# The store


class EvaluationStore:
    """The audit store over one database URL (SQLite file or PostgreSQL).

    The schema must be migrated first (`sector_credit.server.db.migrate.upgrade`).
    `on_commit(rows, seconds)` is called on the writer thread after each commit (metrics).
    """

    def __init__(
        self,
        url: str | URL,
        *,
        max_group_rows: int = DEFAULT_MAX_GROUP_ROWS,
        read_threads: int = 4,
        on_commit: Callable[[int, float], None] | None = None,
        scorecards: Iterable[Scorecard] = (),
    ) -> None:
        if max_group_rows < 1 or read_threads < 1:
            raise ValueError("max_group_rows and read_threads must be at least 1")
        self._engine = create_engine(url, pool_size=read_threads + 1)
        self._sessions = sessionmaker(self._engine, expire_on_commit=False)
        self._readers = ThreadPoolExecutor(read_threads, thread_name_prefix="audit-read")
        # the static text of results, by scorecard digest: results of these scorecards are
        # stored in format 2 (rowjson.py); others' parts are read from scorecard_parts
        self._parts: dict[str, ResultParts] = {c.digest: result_parts(c) for c in scorecards if c.digest}
        self._writer = _GroupWriter(self._engine, max_group_rows, on_commit, self._parts_for)
        self._turn: dict[asyncio.AbstractEventLoop, list[_Pending]] = {}  # see _submit
        self._closed = False

    @classmethod
    async def open(cls, url: str | URL, **options: Any) -> Self:
        """A store whose database answered and has the evaluations table: start-up fails
        here, with `StoreUnavailable`, rather than at the first request."""
        store = cls(url, **options)
        try:
            await asyncio.to_thread(store._ping)
            await asyncio.to_thread(store._store_parts)
        except BaseException:
            await store.close()
            raise
        return store

    @property
    def dialect(self) -> str:
        """The database: `sqlite` or `postgresql`."""
        return self._engine.dialect.name

    @property
    def stats(self) -> StoreStats:
        """A snapshot of the writer's counters."""
        return self._writer.stats_snapshot()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # -- writes ------------------------------------------------------------------------------

    async def save(self, record: EvaluationRecord) -> StoredEvaluation:
        """Store one evaluation; returns once it is committed. A repeated request id with the
        same digest returns the stored evaluation (`replayed`); with another digest raises
        `RequestConflict`. Raises `StoreUnavailable` when the database fails."""
        (outcome,) = await self.save_many([record])
        if isinstance(outcome, StoreError):
            raise outcome
        return outcome

    async def save_many(self, records: Sequence[EvaluationRecord]) -> list[SaveOutcome]:
        """Store a batch in one transaction; one outcome per record, in order. Raises
        `StoreUnavailable` when the database fails (nothing acknowledged; see the module
        docstring), TypeError/ValueError for a record the codec cannot encode."""
        if not records:
            return []
        parts = self._parts
        prepared = [_prepare(r, parts) for r in records]
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[_RowOutcome]] = loop.create_future()
        self._submit(_Pending([row for row, _ in prepared], loop, future))
        # Cancelling this await does not withdraw the rows: they are committed all the same,
        # and a retry with the same request id finds them.
        outcomes = await future
        return [
            stored if outcome is None else outcome
            for (_, stored), outcome in zip(prepared, outcomes, strict=True)
        ]

    def _submit(self, pending: _Pending) -> None:
        """Hand rows to the writer at the end of this turn of the event loop, together with
        those of every other request that reached this point in the same turn: one hand-off
        (a lock and a wake-up) for all of them, and the writer sees them as one group instead
        of waking for the first alone. Nothing waits for a timer."""
        if self._closed:
            raise StoreUnavailable("the audit store is closed")
        batch = self._turn.get(pending.loop)
        if batch is None:
            batch = self._turn[pending.loop] = []
            pending.loop.call_soon(self._hand_over, pending.loop)
        batch.append(pending)

    def _hand_over(self, loop: asyncio.AbstractEventLoop) -> None:
        batch = self._turn.pop(loop, None)
        if not batch:
            return
        try:
            self._writer.submit_all(batch)
        except StoreUnavailable as exc:  # closed in the meantime
            for pending in batch:
                if not pending.future.done():
                    pending.future.set_exception(StoreUnavailable(*exc.args))

    # -- reads -------------------------------------------------------------------------------

    async def get(self, evaluation_id: str | uuid.UUID) -> StoredEvaluation | None:
        """The evaluation with this id, or None (also for a string that is not an id)."""
        try:
            key = uuid.UUID(str(evaluation_id))
        except ValueError:
            return None

        def read(session: Session) -> StoredEvaluation | None:
            row = session.execute(sa.select(_TABLE).where(_TABLE.c.id == key)).first()
            return None if row is None else _stored(row, parts_for=self._parts_reader(session))

        return await self._read(read)

    async def find_by_request_id(self, request_id: str) -> StoredEvaluation | None:
        """The evaluation stored under this request id, or None."""

        def read(session: Session) -> StoredEvaluation | None:
            row = session.scalars(
                sa.select(EvaluationRow).where(EvaluationRow.request_id == request_id)
            ).one_or_none()
            return None if row is None else _stored(row, parts_for=self._parts_reader(session))

        return await self._read(read)

    async def list(
        self,
        *,
        subject_id: str | None = None,
        scorecard_id: str | None = None,
        page_size: int = DEFAULT_PAGE_SIZE,
        page_token: str | None = None,
        caller: str | None = None,
    ) -> Page:
        """Evaluations newest first, filtered (None or "" matches all), paginated per AIP-158:
        `page_size` 0 means the default (50), above 1000 is coerced to 1000; the token is
        opaque and only valid with the same filters. Raises `InvalidListRequest`."""
        subject_id = subject_id or None
        scorecard_id = scorecard_id or None
        if page_size < 0:
            raise InvalidListRequest("page_size", "must not be negative")
        size = min(page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
        filters = _filter_fingerprint(subject_id, scorecard_id, caller)
        after = _decode_page_token(page_token, filters) if page_token else None

        def read(session: Session) -> Page:
            # Core rows, not ORM objects: a page has up to a thousand, read once.
            t = _TABLE.c
            stmt = sa.select(_TABLE)
            if subject_id is not None:
                stmt = stmt.where(t.subject_id == subject_id)
            if scorecard_id is not None:
                stmt = stmt.where(t.scorecard_id == scorecard_id)
            if caller is not None:  # a reader limited to its own evaluations
                stmt = stmt.where(t.caller == caller)
            if after is not None:
                stmt = stmt.where(t.id < after)
            stmt = stmt.order_by(t.id.desc()).limit(size + 1)
            rows = session.execute(stmt).all()
            parts_for = self._parts_reader(session)
            page = [_stored(row, parts_for=parts_for) for row in rows[:size]]
            token = _encode_page_token(rows[size - 1].id, filters) if len(rows) > size else ""
            return page, token

        return await self._read(read)

    # -- the static text of results (format 2) ---------------------------------------------

    def _store_parts(self) -> None:
        """Add the parts of this store's scorecards to scorecard_parts where missing, before
        any row in format 2 refers to them (blocks; `open` runs it in a thread). Parts stored
        earlier for the same digest are the authority: where they differ from this process's
        (the engine now derives a scorecard's static text differently, e.g. its best points),
        this process stores that scorecard's results whole (format 1) and reads its format-2
        rows with the stored parts."""
        if not self._parts:
            return
        now = dt.datetime.now(dt.UTC)
        for attempt in (1, 2):
            try:
                # SQLite: take the write lock first (a read that turns into a write cannot
                # wait for another worker doing the same; it fails as "database is locked")
                with self._engine.connect() as conn, \
                        conn.execution_options(sqlite_begin="IMMEDIATE").begin():
                    stored = dict(conn.execute(sa.select(_PARTS.c.digest, _PARTS.c.parts).where(
                        _PARTS.c.digest.in_(list(self._parts)))).all())
                    missing = []
                    for digest, parts in list(self._parts.items()):
                        text = result_parts_json(parts)
                        if digest not in stored:
                            missing.append({"digest": digest, "scorecard_id": parts.scorecard_id,
                                            "version": parts.version, "parts": JsonText(text),
                                            "created_at": now})
                            continue
                        found = result_parts_from_document(stored[digest])
                        if "base" not in stored[digest]:
                            # stored before parts recorded the base, which the digest fixes: add it
                            found = dataclasses.replace(found, base=parts.base)
                            if result_parts_json(found) == text:
                                conn.execute(sa.update(_PARTS).where(_PARTS.c.digest == digest)
                                             .values(parts=JsonText(text)))
                        if result_parts_json(found) != text:
                            log.warning("scorecard %s %s: its stored result parts differ from this"
                                        " server's; its results are stored whole (format 1)",
                                        parts.scorecard_id, parts.version)
                            del self._parts[digest]
                    if missing:
                        conn.execute(sa.insert(_PARTS), missing)
                return
            except IntegrityError:  # another process added the same parts meanwhile
                if attempt == 2:
                    raise
            except SQLAlchemyError as exc:
                raise _unavailable(exc) from exc

    def _parts_for(self, digest: str, conn: Connection | Session | None = None) -> ResultParts | None:
        """The parts of a scorecard digest: this store's own, else those stored (cached)."""
        parts = self._parts.get(digest)
        if parts is not None or conn is None:
            return parts
        data = conn.execute(sa.select(_PARTS.c.parts).where(_PARTS.c.digest == digest)).scalar_one_or_none()
        if data is None:
            return None
        parts = result_parts_from_document(data)
        if parts.digest != digest:
            raise ValueError(f"scorecard_parts row {digest!r} holds the parts of {parts.digest!r}")
        self._parts.setdefault(digest, parts)
        return parts

    def _parts_reader(self, conn: Connection | Session) -> Callable[[str], ResultParts | None]:
        return lambda digest: self._parts_for(digest, conn)

    async def _read(self, work: Callable[[Session], T]) -> T:
        if self._closed:
            raise StoreUnavailable("the audit store is closed")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._readers, self._read_now, work)

    def _read_now(self, work: Callable[[Session], T]) -> T:
        for attempt in (1, 2):
            try:
                with self._sessions() as session:
                    return work(session)
            except DBAPIError as exc:
                # A connection that died in the pool (database restarted): reads are safe to
                # run again once, on a fresh connection.
                if exc.connection_invalidated and attempt == 1:
                    continue
                raise _unavailable(exc) from exc
            except SQLAlchemyError as exc:
                raise _unavailable(exc) from exc
        raise AssertionError("unreachable")

    # -- life cycle --------------------------------------------------------------------------

    def health_check(self) -> bool:
        """True when the writer runs and the evaluations table answers a query (blocks; run
        it in a thread from async code)."""
        try:
            self._ping()
        except StoreUnavailable as exc:
            log.warning("audit store health check failed: %s", exc)
            return False
        return True

    def _ping(self) -> None:
        if self._closed or not self._writer.is_alive():
            raise StoreUnavailable("the audit store is closed")
        try:
            with self._engine.connect() as conn:
                conn.execute(sa.select(EvaluationRow.id).limit(0))
        except SQLAlchemyError as exc:
            raise _unavailable(exc) from exc

    async def close(self) -> None:
        """Refuse new work, write everything pending, then release the threads and
        connections. Idempotent."""
        if self._closed:
            return
        self._closed = True
        for loop in list(self._turn):  # rows submitted in this very turn still go in
            self._hand_over(loop)
        self._writer.stop()
        await asyncio.to_thread(self._writer.join)
        await asyncio.to_thread(self._readers.shutdown, True)
        self._engine.dispose()


# --------------------------------------------------------------------------------------------
# Rows


_RowOutcome = StoredEvaluation | StoreError | None
"""From the writer, per row: None = inserted; else an existing evaluation or an error."""


def _prepare(record: EvaluationRecord, parts: dict[str, ResultParts] | None = None,
             ) -> tuple[dict[str, Any], StoredEvaluation]:
    """The row to insert and the evaluation as it will be once stored. With the parts of the
    result's scorecard the result document is in format 2, else in format 1 (rowjson.py)."""
    evaluation_id, created = new_evaluation_id()
    # Both documents are encoded here, once (rowjson.py): the canonical input text gives the
    # digest too, and the result reuses the text of the scorecard's static pieces.
    input_text, input_digest = input_json(record.input)
    digest = record.request_digest or input_digest
    if not _DIGEST.fullmatch(digest):
        raise ValueError(f"a request digest is 64 lower-case hex digits, not {digest!r}")
    result = record.result
    request_id = record.request_id or None
    row = {
        "id": evaluation_id,
        "request_id": request_id,
        "request_digest": digest,
        "scorecard_id": result.scorecard_id,
        "scorecard_version": result.version,
        "scorecard_digest": result.digest,
        "subject_kind": result.subject.kind.value,
        "subject_id": result.subject.id,
        "as_of": result.as_of,
        "grade": result.grade.code,
        "score": None if result.score is None else str(result.score),
        "input": input_text,
        "result": result_json_compact(result, None if parts is None else parts.get(result.digest)),
        "caller": record.caller,
        "created_at": created,
    }
    stored = StoredEvaluation(
        id=str(evaluation_id),
        created_at=created,
        input=record.input,
        result=result,
        request_id=request_id,
        request_digest=digest,
        caller=record.caller,
    )
    return row, stored


def _stored(row: EvaluationRow | sa.Row[Any], *, replayed: bool = False,
            parts_for: Callable[[str], ResultParts | None] | None = None) -> StoredEvaluation:
    return StoredEvaluation(
        id=str(row.id),
        created_at=row.created_at,
        input=input_from_dict(row.input),
        result=result_from_document(row.result, parts_for),
        request_id=row.request_id,
        request_digest=row.request_digest,
        caller=row.caller,
        replayed=replayed,
    )


def _describe(exc: BaseException) -> str:
    cause = getattr(exc, "orig", None) or exc
    first_line = (str(cause).strip().splitlines() or [""])[0]
    return f"{type(cause).__name__}: {first_line}"


def _unavailable(exc: BaseException) -> StoreUnavailable:
    return StoreUnavailable(f"the audit database is unavailable ({_describe(exc)})")


# --------------------------------------------------------------------------------------------
# Page tokens: base64url JSON {"v", "after": id hex, "f": fingerprint of the filters}


def _filter_fingerprint(subject_id: str | None, scorecard_id: str | None, caller: str | None = None) -> str:
    filters = [subject_id, scorecard_id] if caller is None else [subject_id, scorecard_id, caller]
    text = json.dumps(filters, ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _encode_page_token(after: uuid.UUID, filters: str) -> str:
    data = json.dumps({"v": 1, "after": after.hex, "f": filters}, separators=(",", ":"))
    return base64.urlsafe_b64encode(data.encode("ascii")).decode("ascii").rstrip("=")


def _decode_page_token(token: str, filters: str) -> uuid.UUID:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        data = json.loads(raw)
        if not isinstance(data, dict) or data.get("v") != 1:
            raise ValueError("unknown token version")
        after = uuid.UUID(hex=data["after"])
        token_filters = data["f"]
    except (binascii.Error, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise InvalidListRequest(
            "page_token",
            "not a page token of this service; pass back next_page_token as it was received",
        ) from exc
    if token_filters != filters:
        raise InvalidListRequest(
            "page_token",
            "the page token belongs to a listing with other filters; keep subject_id and"
            " scorecard the same while paging",
        )
    return after


# --------------------------------------------------------------------------------------------
# The group-commit writer


@dataclass(slots=True)
class _Pending:
    rows: list[dict[str, Any]]
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[list[_RowOutcome]]


class _GroupWriter:
    """Commits whatever is pending as one group: on PostgreSQL in a thread of its own (a
    COMMIT waits for a round trip and the server's fsync), on SQLite on the event loop
    itself, at the end of the turn that gathered the group.

    Why SQLite inline: a SQLite COMMIT here is local work of a few hundred microseconds
    (no fsync with synchronous=NORMAL; checkpoints run in a thread of their own, see
    `_Checkpointer`), less than handing the group to a thread and back: the writer thread
    had to win the GIL from a busy event loop for BEGIN, INSERT and COMMIT in turn (up to a
    switch interval, 5 ms, each), which was most of the p99 at half load. What the loop may
    wait for is bounded: another worker's commit (flock) and, when a program outside the
    service holds SQLite's write lock, `INLINE_BUSY_TIMEOUT_MS`, after which the group fails
    as unavailable instead of stalling the server.
    """

    def __init__(
        self,
        engine: sa.Engine,
        max_group_rows: int,
        on_commit: Callable[[int, float], None] | None,
        parts_for: Callable[[str, Connection], ResultParts | None],
    ) -> None:
        self._engine = engine
        self._parts_for = parts_for
        self._max_group_rows = max_group_rows
        self._on_commit = on_commit
        self._queue: collections.deque[_Pending] = collections.deque()
        self._cond = threading.Condition()
        self._stopping = False
        self._committing = False
        self._conn: Connection | None = None
        self._inserter: _RowInserter | None = None
        self._process_lock = _WriterFileLock.for_engine(engine)
        self._stats = StoreStats()
        self._inline = engine.dialect.name == "sqlite"
        self._checkpointer = _Checkpointer(engine) if self._inline else None
        self._thread = None if self._inline else threading.Thread(
            target=self._run, name="audit-writer", daemon=True)
        if self._thread is not None:
            self._thread.start()

    def submit_all(self, batch: list[_Pending]) -> None:
        with self._cond:
            if self._stopping:
                raise StoreUnavailable("the audit store is closed")
            if not self._inline:
                self._queue.extend(batch)
                self._cond.notify()
                return
        for group in _groups_of(batch, self._max_group_rows):
            self._write(group)

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify()
        if self._inline:  # nothing is pending: every group was written when submitted
            self._finish()

    def join(self) -> None:
        if self._thread is not None:
            self._thread.join()

    def is_alive(self) -> bool:
        if self._thread is None:
            return not self._stopping
        return self._thread.is_alive()

    def _finish(self) -> None:
        self._close_connection()
        self._process_lock.close()
        if self._checkpointer is not None:
            self._checkpointer.stop()

    def stats_snapshot(self) -> StoreStats:
        with self._cond:
            return dataclasses.replace(self._stats)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._stopping:
                    self._cond.wait()
                if not self._queue:  # stopping, and everything pending is written
                    self._finish()
                    return
                group = [self._queue.popleft()]
                size = len(group[0].rows)
                while self._queue and size + len(self._queue[0].rows) <= self._max_group_rows:
                    size += len(self._queue[0].rows)
                    group.append(self._queue.popleft())
            self._write(group)
            # not kept while waiting for the next group: up to a thousand rows of documents
            del group

    def _write(self, group: list[_Pending]) -> None:
        rows = [row for pending in group for row in pending.rows]
        started = time.perf_counter()
        try:
            with self._process_lock:
                outcomes = self._insert(rows)
        except Exception as exc:  # every waiter must hear of it, whatever it is
            if not isinstance(exc, StoreError):
                log.exception("audit write failed unexpectedly")
                exc = StoreUnavailable(f"the audit write failed ({_describe(exc)})")
            log.warning("audit group of %d rows failed: %s", len(rows), exc)
            with self._cond:
                self._stats.groups_failed += 1
            _settle(group, error=exc)
            return
        elapsed = time.perf_counter() - started
        if self._checkpointer is not None:
            self._checkpointer.wrote()
        with self._cond:
            self._stats.rows += sum(1 for o in outcomes if o is None)
            self._stats.largest_group = max(self._stats.largest_group, len(rows))
        _settle(group, outcomes=outcomes)
        if self._on_commit is not None:
            try:
                self._on_commit(len(rows), elapsed)
            except Exception:  # a metrics hook must not stop the writer
                log.exception("audit on_commit hook failed")

    def _connection(self) -> Connection:
        """The writer's own connection, kept between groups (a pool checkout and its reset
        per group cost more than a small group's INSERT)."""
        conn = self._conn
        if conn is None or conn.closed or conn.invalidated:
            if conn is not None:
                conn.close()
            conn = self._conn = self._engine.connect()
            conn.execution_options(sqlite_begin="IMMEDIATE")
            self._inserter = self._inserter or _RowInserter(conn.dialect)
            if self._inline:
                dbapi = conn.connection.dbapi_connection
                assert dbapi is not None
                dbapi.execute(f"PRAGMA busy_timeout = {INLINE_BUSY_TIMEOUT_MS}")
                dbapi.execute("PRAGMA wal_autocheckpoint = 0")  # the checkpointer's job
        return conn

    def _close_connection(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except SQLAlchemyError:
                pass
            self._conn = None

    def _insert(self, rows: list[dict[str, Any]]) -> list[_RowOutcome]:
        for attempt in (1, 2):
            self._committing = False
            try:
                conn = self._connection()
                if _has_repeated_request_id(rows):
                    return self._insert_row_by_row(conn, rows)
                if self._inline:
                    return self._insert_sqlite(conn, rows)
                try:
                    assert self._inserter is not None
                    self._inserter.insert(conn, rows)
                except (IntegrityError, DataError):
                    conn.rollback()
                    return self._insert_row_by_row(conn, rows)
                self._commit(conn)
                return [None] * len(rows)
            except DBAPIError as exc:
                # A connection found dead before COMMIT was sent committed nothing, so the
                # group can go again on a fresh one; after COMMIT was sent the outcome is
                # unknown and the waiters must be told (their retry is idempotent).
                self._discard_connection()
                if exc.connection_invalidated and not self._committing and attempt == 1:
                    log.warning("audit writer reconnecting: %s", _describe(exc))
                    continue
                raise _unavailable(exc) from exc
            except SQLAlchemyError as exc:
                self._discard_connection()
                raise _unavailable(exc) from exc
        raise AssertionError("unreachable")

    def _insert_sqlite(self, conn: Connection, rows: list[dict[str, Any]]) -> list[_RowOutcome]:
        """SQLite: BEGIN IMMEDIATE, the INSERTs and COMMIT straight on the driver's connection.
        For the small groups of unary calls, SQLAlchemy's work per statement cost more than
        SQLite's own; the SQLAlchemy connection is left outside any transaction, ready for the
        row-by-row path."""
        assert self._inserter is not None
        dbapi = conn.connection.dbapi_connection
        assert dbapi is not None
        try:
            dbapi.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise _unavailable(exc) from exc
        try:
            for sql, params in self._inserter.statements(rows):
                dbapi.execute(sql, params)
        except (sqlite3.IntegrityError, sqlite3.DataError):
            dbapi.execute("ROLLBACK")
            return self._insert_row_by_row(conn, rows)
        except sqlite3.Error as exc:
            _rollback_quietly(dbapi)
            raise _unavailable(exc) from exc
        try:
            dbapi.execute("COMMIT")
        except sqlite3.Error as exc:
            _rollback_quietly(dbapi)
            raise _unavailable(exc) from exc
        with self._cond:
            self._stats.commits += 1
        return [None] * len(rows)

    def _discard_connection(self) -> None:
        """After a failure: roll back what is open and start the next group afresh."""
        conn = self._conn
        if conn is not None:
            try:
                if conn.in_transaction() and not conn.invalidated:
                    conn.rollback()
            except SQLAlchemyError:
                pass
        self._close_connection()

    def _insert_row_by_row(self, conn: Connection, rows: list[dict[str, Any]]) -> list[_RowOutcome]:
        with self._cond:
            self._stats.row_by_row += 1
        outcomes: list[_RowOutcome] = []
        for row in rows:
            try:
                with conn.begin_nested():
                    conn.execute(sa.insert(_TABLE), row)
            except IntegrityError as exc:
                outcomes.append(_existing(conn, row, exc, self._parts_for))
            except DataError as exc:
                outcomes.append(
                    InvalidRecord(f"the database refused the evaluation: {_describe(exc)}")
                )
            else:
                outcomes.append(None)
        self._commit(conn)
        return outcomes

    def _commit(self, conn: Connection) -> None:
        self._committing = True
        conn.commit()
        self._committing = False
        with self._cond:
            self._stats.commits += 1


def _groups_of(batch: list[_Pending], max_rows: int) -> Iterable[list[_Pending]]:
    """The batch in groups of at most `max_rows` rows; a `save_many` batch is never split."""
    group: list[_Pending] = []
    size = 0
    for pending in batch:
        if group and size + len(pending.rows) > max_rows:
            yield group
            group, size = [], 0
        group.append(pending)
        size += len(pending.rows)
    if group:
        yield group


class _Checkpointer:
    """SQLite: copies the write-ahead log back into the database file from a thread of its
    own, a few times a second while there are writes, instead of SQLite doing it inside the
    COMMIT that crosses 1,000 log pages (that checkpoint writes and fsyncs megabytes; with
    commits on the event loop it would stall the server). Durability is the same: a commit
    is in the log either way (synchronous=NORMAL), and a PASSIVE checkpoint never blocks
    the writer."""

    INTERVAL_S = 0.25

    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine
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

    def _run(self) -> None:
        raw = None
        try:
            while not self._stopping:
                self._pending.wait()
                if not self._stopping:
                    time.sleep(self.INTERVAL_S)  # one checkpoint for many commits
                self._pending.clear()
                try:
                    raw = raw or self._engine.raw_connection()
                    raw.driver_connection.execute("PRAGMA wal_checkpoint(PASSIVE)")
                except (SQLAlchemyError, sqlite3.Error) as exc:
                    log.warning("audit checkpoint failed (tried again later): %s", exc)
                    if raw is not None:
                        raw.invalidate()
                        raw = None
        finally:
            if raw is not None:
                raw.close()


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
                    f"the audit database is unavailable (cannot open {self._path}: {exc.strerror})"
                ) from exc
        fcntl.flock(self._fd, fcntl.LOCK_EX)

    def __exit__(self, *exc_info: object) -> None:
        if self._fd >= 0:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


class _RowInserter:
    """A group's rows as a few multi-row INSERTs (`VALUES (…), (…), …`), each value bound by
    its column's own SQLAlchemy bind processor: the rows are stored exactly as
    `conn.execute(insert(table), rows)` stores them, without its per-row and per-statement
    work, and SQLite releases and retakes the GIL once per statement instead of once per row.
    Statements have power-of-two sizes (a group of 37 is 32 + 4 + 1), so the drivers' statement
    caches hold a handful of them."""

    SIZES = (256, 128, 64, 32, 16, 8, 4, 2, 1)

    def __init__(self, dialect: sa.Dialect) -> None:
        columns = list(_TABLE.columns)
        self._names = [c.name for c in columns]
        self._processors = [c.type._cached_bind_processor(dialect) for c in columns]
        mark = "?" if dialect.paramstyle in ("qmark", "numeric") else "%s"
        quote = dialect.identifier_preparer.quote
        one = "(" + ",".join([mark] * len(columns)) + ")"
        head = (f"INSERT INTO {dialect.identifier_preparer.format_table(_TABLE)} "
                f"({','.join(quote(n) for n in self._names)}) VALUES ")
        self._sql = {n: head + ",".join([one] * n) for n in self.SIZES}

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
            n = next(size for size in self.SIZES if size <= total - start)
            yield self._sql[n], tuple(bound[start * width:(start + n) * width])
            start += n

    def insert(self, conn: Connection, rows: list[dict[str, Any]]) -> None:
        for sql, params in self.statements(rows):
            conn.exec_driver_sql(sql, params)


def _rollback_quietly(dbapi: Any) -> None:
    try:
        dbapi.execute("ROLLBACK")
    except sqlite3.Error:
        pass  # no transaction open (SQLite rolled it back itself) or the connection is gone


def _has_repeated_request_id(rows: Iterable[dict[str, Any]]) -> bool:
    seen: set[str] = set()
    for row in rows:
        rid = row["request_id"]
        if rid is not None:
            if rid in seen:
                return True
            seen.add(rid)
    return False


def _existing(conn: Connection, row: dict[str, Any], exc: IntegrityError,
              parts_for: Callable[[str, Connection], ResultParts | None]) -> _RowOutcome:
    """The outcome for a row the unique constraint refused: replay or conflict."""
    request_id = row["request_id"]
    found = None
    if request_id is not None:
        with Session(bind=conn) as session:  # joins the open transaction, never commits it
            found = session.scalars(
                sa.select(EvaluationRow).where(EvaluationRow.request_id == request_id)
            ).one_or_none()
            if found is not None and found.request_digest == row["request_digest"]:
                return _stored(found, replayed=True, parts_for=lambda digest: parts_for(digest, conn))
    if found is None:
        return InvalidRecord(f"the database refused the evaluation: {_describe(exc)}")
    return RequestConflict(request_id, str(found.id))


def _settle(
    group: list[_Pending],
    *,
    outcomes: list[_RowOutcome] | None = None,
    error: BaseException | None = None,
) -> None:
    """Wake the waiters of a group: from the writer thread one hop per event loop (futures
    belong to their loop, and each hop is a write to the loop's wake-up pipe); on the loop
    that wrote the group (SQLite), directly."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[_Pending, list[_RowOutcome] | None]]] = {}
    start = 0
    for pending in group:
        end = start + len(pending.rows)
        part = None if outcomes is None else outcomes[start:end]
        by_loop.setdefault(pending.loop, []).append((pending, part))
        start = end

    def wake(items: list[tuple[_Pending, list[_RowOutcome] | None]]) -> None:
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

    try:
        here = asyncio.get_running_loop()
    except RuntimeError:  # the writer thread
        here = None
    for loop, items in by_loop.items():
        if loop is here:  # SQLite: written on the event loop itself, nothing to hop
            wake(items)
            continue
        try:
            loop.call_soon_threadsafe(wake, items)
        except RuntimeError:  # the loop is closed: nobody is waiting any more
            pass
