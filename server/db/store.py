"""The audit store: evaluations written durably before the reply, read back for the audit.

`EvaluationStore` owns the engine and is the only code that opens connections or sessions.
Its API is for asyncio (the grpc.aio servicer). Reads run in threads and writes in a writer
thread, on SQLite as on PostgreSQL: the event loop never waits for the disk, so a stalled
write holds only the calls that wait for it (see `_GroupWriter`).

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

The query audit. Access records (`AccessRecord`) go through the same writer: the one that
goes with an evaluation (`EvaluationRecord.access`) is inserted in the same transaction as
the evaluation, with the outcome the row got (a request id conflict is recorded as such), and
`record_access` commits records of calls that stored nothing (reads, refusals, bad input)
before it returns. A failed group loses its access records with its evaluations: nothing of
it was acknowledged.

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
import builtins  # `list` in the class body is EvaluationStore.list
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
from .models import AccessRow, EvaluationRow, ScorecardPartsRow
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
WAL_LIMIT_BYTES = 16 * 1024 * 1024  # SQLite: the write-ahead log is cut back past this (_Checkpointer)
WRITER_STALL_S = 2.0  # a group commit running longer than this makes the store unhealthy
MIN_FREE_BYTES = 4 * 1024 * 1024  # SQLite: less free space than this beside the file: unhealthy
CLOSE_TIMEOUT_S = 30.0  # the longest close() waits for a stalled writer to finish

_TABLE = cast(sa.Table, EvaluationRow.__table__)
_PARTS = cast(sa.Table, ScorecardPartsRow.__table__)
_ACCESS = cast(sa.Table, AccessRow.__table__)
_DIGEST = re.compile(r"[0-9a-f]{64}")
T = TypeVar("T")


# --------------------------------------------------------------------------------------------
# What goes in and what comes out


@dataclass(frozen=True, slots=True)
class AccessRecord:
    """One call that touched a subject, or was refused, for the query audit."""

    caller: str  # the authenticated identity; "" when a refused call proved none
    proven_by: str  # mtls | api_key | jwt | local; "" when none was
    method: str  # the RPC's name, e.g. "GetEvaluation"
    code: str  # the outcome: the gRPC status code name
    subject_id: str | None = None
    scorecard_id: str | None = None
    purpose: str | None = None
    purpose_note: str | None = None
    evaluations_returned: int = 0
    request_id: str | None = None
    reason: str | None = None  # the ErrorInfo reason of a failure
    key_id: str | None = None


@dataclass(frozen=True, slots=True)
class StoredAccess:
    """An access record as stored: its id and time, and the record."""

    id: str
    created_at: dt.datetime  # aware, UTC
    record: AccessRecord

    @property
    def name(self) -> str:
        return f"accessRecords/{self.id}"


AccessPage = tuple[list[StoredAccess], str]
"""Access records newest first, and the next page token ("" on the last page)."""


@dataclass(frozen=True, slots=True)
class EvaluationRecord:
    """One evaluation for the store to keep, as the servicer hands it in."""

    input: EvaluationInput  # as received (raw indicator values)
    result: EvaluationResult
    caller: str | None = None  # who asked, as authenticated
    request_id: str | None = None  # the client's idempotency key; "" counts as none
    request_digest: str | None = None  # sha256 hex of the request; None: codec.request_digest
    # the call's access record, committed with the evaluation; when the row is refused
    # (RequestConflict, InvalidRecord) it is stored with that outcome and 0 returned
    access: AccessRecord | None = None


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


@dataclass(frozen=True, slots=True)
class UnreadableEvaluation:
    """A stored row whose documents cannot be read back (written by another version of the
    service, or damaged): what its own columns say, and why the rest cannot be shown. Reads
    return it in place of the evaluation, so one such row never hides the rest of a page."""

    id: str
    created_at: dt.datetime
    scorecard_id: str
    scorecard_version: str
    scorecard_digest: str
    subject_kind: str
    subject_id: str
    as_of: dt.date | None
    grade: str
    score: str | None
    request_id: str | None
    caller: str | None
    why: str

    @property
    def name(self) -> str:
        return f"evaluations/{self.id}"


ReadEvaluation = StoredEvaluation | UnreadableEvaluation


SaveOutcome = StoredEvaluation | StoreError
"""Per record of `save_many`: the stored evaluation, or `RequestConflict` / `InvalidRecord`."""

Page = tuple[list[ReadEvaluation], str]
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
    `access_code(error)` names the status code of a row the store refused, for the access
    record that goes with it (the server passes the mapping of errors.py).
    """

    def __init__(
        self,
        url: str | URL,
        *,
        max_group_rows: int = DEFAULT_MAX_GROUP_ROWS,
        read_threads: int = 4,
        on_commit: Callable[[int, float], None] | None = None,
        scorecards: Iterable[Scorecard] = (),
        wal_limit_bytes: int = WAL_LIMIT_BYTES,
        access_code: Callable[[StoreError], str] | None = None,
    ) -> None:
        if max_group_rows < 1 or read_threads < 1:
            raise ValueError("max_group_rows and read_threads must be at least 1")
        self._engine = create_engine(url, pool_size=read_threads + 1)
        self._sessions = sessionmaker(self._engine, expire_on_commit=False)
        self._readers = ThreadPoolExecutor(read_threads, thread_name_prefix="audit-read")
        # the static text of results, by scorecard digest: results of these scorecards are
        # stored in format 2 (rowjson.py); others' parts are read from scorecard_parts
        self._parts: dict[str, ResultParts] = {c.digest: result_parts(c) for c in scorecards if c.digest}
        self._writer = _GroupWriter(self._engine, max_group_rows, on_commit, self._parts_for,
                                    access_code or _default_access_code, wal_limit_bytes)
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

    async def save_many(self, records: Sequence[EvaluationRecord],
                        access: Sequence[AccessRecord] = ()) -> list[SaveOutcome]:
        """Store a batch in one transaction; one outcome per record, in order. `access`: more
        access records to commit in the same transaction (those of a batch's failed items).
        Raises `StoreUnavailable` when the database fails (nothing acknowledged; see the
        module docstring), TypeError/ValueError for a record the codec cannot encode."""
        if not records and not access:
            return []
        parts = self._parts
        prepared = [_prepare(r, parts) for r in records]
        access_rows = [_access_row(r.access) for r in records if r.access is not None]
        links: list[int | None] = [i for i, r in enumerate(records) if r.access is not None]
        access_rows += [_access_row(a) for a in access]
        links += [None] * len(access)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[_RowOutcome]] = loop.create_future()
        self._submit(_Pending([row for row, _ in prepared], loop, future, access_rows, links))
        # Cancelling this await does not withdraw the rows: they are committed all the same,
        # and a retry with the same request id finds them.
        outcomes = await future
        return [
            stored if outcome is None else outcome
            for (_, stored), outcome in zip(prepared, outcomes, strict=True)
        ]

    async def record_access(self, *records: AccessRecord) -> None:
        """Commit access records of calls that stored no evaluation; returns once they are
        committed. Raises `StoreUnavailable` when the database fails."""
        await self.save_many((), records)

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

    async def get(self, evaluation_id: str | uuid.UUID) -> ReadEvaluation | None:
        """The evaluation with this id (`UnreadableEvaluation` when its documents cannot be
        read), or None (also for a string that is not an id)."""
        try:
            key = uuid.UUID(str(evaluation_id))
        except ValueError:
            return None

        def read(session: Session) -> ReadEvaluation | None:
            row = session.execute(sa.select(_TABLE).where(_TABLE.c.id == key)).first()
            return None if row is None else _read_row(row, self._parts_reader(session))

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
        filters = _list_fingerprint(subject_id, scorecard_id, caller)
        after = _decode_page_token(page_token, filters, "subject_id and scorecard") if page_token else None

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
            page = [_read_row(row, parts_for) for row in rows[:size]]
            token = _encode_page_token(rows[size - 1].id, filters) if len(rows) > size else ""
            return page, token

        return await self._read(read)

    @staticmethod
    def page_token_after(evaluation_id: str, *, subject_id: str | None = None,
                         scorecard_id: str | None = None, caller: str | None = None) -> str:
        """The token of the page that continues after `evaluation_id` in a listing with these
        filters (for a page the servicer cut short to fit the message limit)."""
        return _encode_page_token(uuid.UUID(evaluation_id),
                                  _list_fingerprint(subject_id or None, scorecard_id or None, caller))

    async def scan(self, after: str | None = None,
                   size: int = 500) -> tuple[builtins.list[ReadEvaluation], str | None]:
        """Every stored evaluation in id order, `size` at a time after the id `after`; the
        second item is the id to continue after (None at the end). For `check-store`."""

        def read(session: Session) -> tuple[list[ReadEvaluation], str | None]:
            stmt = sa.select(_TABLE)
            if after is not None:
                stmt = stmt.where(_TABLE.c.id > uuid.UUID(after))
            rows = session.execute(stmt.order_by(_TABLE.c.id).limit(size)).all()
            parts_for = self._parts_reader(session)
            page = [_read_row(row, parts_for) for row in rows]
            return page, (str(rows[-1].id) if len(rows) == size else None)

        return await self._read(read)

    def parts_for(self, digest: str) -> ResultParts | None:
        """The parts this store encodes format-2 results of `digest` with (None: format 1)."""
        return self._parts.get(digest)

    async def list_access(
        self,
        *,
        subject_id: str | None = None,
        caller: str | None = None,
        start_time: dt.datetime | None = None,
        end_time: dt.datetime | None = None,
        code: str | None = None,
        page_size: int = DEFAULT_PAGE_SIZE,
        page_token: str | None = None,
    ) -> AccessPage:
        """Access records newest first, filtered (None matches all; the time range is
        [start_time, end_time); `code` the outcome), paginated as `list`. Raises
        `InvalidListRequest`."""
        if page_size < 0:
            raise InvalidListRequest("page_size", "must not be negative")
        if start_time is not None and end_time is not None and end_time <= start_time:
            raise InvalidListRequest("end_time", "must be after start_time")
        size = min(page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
        filters = _filter_fingerprint(
            "access", subject_id, caller, start_time.isoformat() if start_time else None,
            end_time.isoformat() if end_time else None, code)
        after = _decode_page_token(page_token, filters, "the filters") if page_token else None

        def read(session: Session) -> AccessPage:
            t = _ACCESS.c
            stmt = sa.select(_ACCESS)
            if subject_id is not None:
                stmt = stmt.where(t.subject_id == subject_id)
            if caller is not None:
                stmt = stmt.where(t.caller == caller)
            if start_time is not None:
                stmt = stmt.where(t.created_at >= start_time)
            if end_time is not None:
                stmt = stmt.where(t.created_at < end_time)
            if code is not None:
                stmt = stmt.where(t.code == code)
            if after is not None:
                stmt = stmt.where(t.id < after)
            rows = session.execute(stmt.order_by(t.id.desc()).limit(size + 1)).all()
            page = [_stored_access(row) for row in rows[:size]]
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
        """True when the store can commit, as far as can be seen without writing: see
        `health_problem` (blocks; run it in a thread from async code)."""
        problem = self.health_problem()
        if problem is not None:
            log.warning("audit store health check failed: %s", problem)
        return problem is None

    def health_problem(self) -> str | None:
        """Why the store cannot commit now, or None: closed, its writer stuck in a commit for
        more than `WRITER_STALL_S`, the SQLite file removed or replaced, its disk (nearly)
        full, or the database not answering a query (blocks)."""
        try:
            self._ping()
        except StoreUnavailable as exc:
            return str(exc)
        return None

    def _ping(self) -> None:
        if self._closed or not self._writer.is_alive():
            raise StoreUnavailable("the audit store is closed")
        self._writer.check_health()
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
        await asyncio.to_thread(self._writer.join, CLOSE_TIMEOUT_S)
        if self._writer.is_alive():  # stalled (a frozen disk): its rows were never acknowledged
            log.error("audit writer still stuck in a commit after %.0f s; closing without it",
                      CLOSE_TIMEOUT_S)
            return
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


def _access_row(record: AccessRecord) -> dict[str, Any]:
    access_id, created = new_evaluation_id()
    return {"id": access_id, "created_at": created, "caller": record.caller,
            "proven_by": record.proven_by, "key_id": record.key_id, "method": record.method,
            "subject_id": record.subject_id or None, "scorecard_id": record.scorecard_id or None,
            "purpose": record.purpose or None, "purpose_note": record.purpose_note or None,
            "evaluations_returned": record.evaluations_returned,
            "request_id": record.request_id or None, "code": record.code,
            "reason": record.reason or None}


def _stored_access(row: sa.Row[Any]) -> StoredAccess:
    return StoredAccess(id=str(row.id), created_at=row.created_at, record=AccessRecord(
        caller=row.caller, proven_by=row.proven_by, key_id=row.key_id, method=row.method,
        subject_id=row.subject_id, scorecard_id=row.scorecard_id, purpose=row.purpose,
        purpose_note=row.purpose_note, evaluations_returned=row.evaluations_returned,
        request_id=row.request_id, code=row.code, reason=row.reason))


def _default_access_code(error: StoreError) -> str:
    """The store's row-level refusals are the client's errors (see errors.py)."""
    return "UNAVAILABLE" if isinstance(error, StoreUnavailable) else "INVALID_ARGUMENT"


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


def _read_row(row: sa.Row[Any], parts_for: Callable[[str], ResultParts | None]) -> ReadEvaluation:
    """The stored evaluation of a row, or what its columns say when its documents cannot be
    read (logged with the reason, for the operator; `check-store` lists them all)."""
    try:
        return _stored(row, parts_for=parts_for)
    except Exception as exc:  # any failure to read one row's documents is that row's alone
        log.warning("evaluation %s cannot be read back: %s", row.id, _describe(exc))
        return unreadable_row(row, "its stored documents cannot be read by this version of the service")


def unreadable_row(row: sa.Row[Any], why: str) -> UnreadableEvaluation:
    """What a row's own columns say (they are plain values, always readable)."""
    return UnreadableEvaluation(
        id=str(row.id), created_at=row.created_at, scorecard_id=row.scorecard_id,
        scorecard_version=row.scorecard_version, scorecard_digest=row.scorecard_digest,
        subject_kind=row.subject_kind, subject_id=row.subject_id, as_of=row.as_of, grade=row.grade,
        score=row.score, request_id=row.request_id, caller=row.caller, why=why)


def _describe(exc: BaseException) -> str:
    cause = getattr(exc, "orig", None) or exc
    first_line = (str(cause).strip().splitlines() or [""])[0]
    return f"{type(cause).__name__}: {first_line}"


def _unavailable(exc: BaseException) -> StoreUnavailable:
    """What the caller is told: no host, port, driver message or class name; those are the
    exception's `detail`, for the operator's log."""
    return StoreUnavailable("the audit database is unavailable; retry (with the same request_id)",
                            detail=_describe(exc))


# SQLSTATE classes of errors caused by one row's own data: 22 data exception (e.g. a value
# the column type cannot hold), 23 integrity constraint violation, 54 program limit exceeded
# (e.g. an index entry over 8 kB: a 12,000-character request_id)
_ROW_SQLSTATE = {"22": "a value the database cannot hold", "23": "it breaks a constraint of the audit table",
                 "54": "a value too large for the database"}


def _refused_row(exc: BaseException) -> str | None:
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


# --------------------------------------------------------------------------------------------
# Page tokens: base64url JSON {"v", "after": id hex, "f": fingerprint of the filters}


def _list_fingerprint(subject_id: str | None, scorecard_id: str | None, caller: str | None) -> str:
    """ListEvaluations' filters; a listing limited to one caller's own evaluations has its own
    tokens, and one without that limit keeps the tokens it always had."""
    if caller is None:
        return _filter_fingerprint(subject_id, scorecard_id)
    return _filter_fingerprint(subject_id, scorecard_id, caller)


def _filter_fingerprint(*filters: str | None) -> str:
    text = json.dumps(list(filters), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _encode_page_token(after: uuid.UUID, filters: str) -> str:
    data = json.dumps({"v": 1, "after": after.hex, "f": filters}, separators=(",", ":"))
    return base64.urlsafe_b64encode(data.encode("ascii")).decode("ascii").rstrip("=")


def _decode_page_token(token: str, filters: str, keep: str) -> uuid.UUID:
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
            f"the page token belongs to a listing with other filters; keep {keep} the same"
            " while paging",
        )
    return after


# --------------------------------------------------------------------------------------------
# The group-commit writer


@dataclass(slots=True)
class _Pending:
    rows: list[dict[str, Any]]
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[list[_RowOutcome]]
    access: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    access_links: list[int | None] = dataclasses.field(default_factory=list)  # index in rows

    @property
    def size(self) -> int:
        return len(self.rows) + len(self.access)


class _GroupWriter:
    """Commits whatever is pending as one group, in a thread of its own on either database:
    a COMMIT may wait for a round trip and the server's fsync (PostgreSQL) or for the disk
    (SQLite: a full or frozen filesystem, another process holding the write lock), and only
    the calls whose rows are in the group may wait with it; the event loop goes on serving
    health, scorecards, validation and reads.

    (SQLite groups were once written on the event loop itself, which saved the thread's
    GIL hand-overs at half load, but one stalled write then froze the whole server.)

    Around each SQLite group the database file is checked (`_DatabaseFile`): a file removed
    or replaced under the server fails the group as unavailable instead of acknowledging
    rows into a file nobody will read again.
    """

    def __init__(
        self,
        engine: sa.Engine,
        max_group_rows: int,
        on_commit: Callable[[int, float], None] | None,
        parts_for: Callable[[str, Connection], ResultParts | None],
        access_code: Callable[[StoreError], str],
        wal_limit_bytes: int = WAL_LIMIT_BYTES,
    ) -> None:
        self._engine = engine
        self._access_code = access_code
        self._access_inserter: _RowInserter | None = None
        self._parts_for = parts_for
        self._max_group_rows = max_group_rows
        self._on_commit = on_commit
        self._queue: collections.deque[_Pending] = collections.deque()
        self._cond = threading.Condition()
        self._stopping = False
        self._committing = False
        self._group_started: float | None = None  # monotonic start of the group being written
        self._conn: Connection | None = None
        self._inserter: _RowInserter | None = None
        self._process_lock = _WriterFileLock.for_engine(engine)
        self._file = _DatabaseFile.for_engine(engine)
        self._stats = StoreStats()
        self._sqlite = engine.dialect.name == "sqlite"
        self._wal_limit_bytes = wal_limit_bytes
        self._checkpointer = _Checkpointer(engine, wal_limit_bytes) if self._sqlite else None
        self._thread = threading.Thread(target=self._run, name="audit-writer", daemon=True)
        self._thread.start()

    def submit_all(self, batch: list[_Pending]) -> None:
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
        """Raise `StoreUnavailable` when a commit is stuck, or the SQLite file is gone or its
        disk full (cheap: a clock read, a stat and a statvfs)."""
        started = self._group_started
        if started is not None and time.monotonic() - started > WRITER_STALL_S:
            raise StoreUnavailable(
                f"the audit database has not finished a commit for {time.monotonic() - started:.0f} s")
        self._file.check()
        free = self._file.free_bytes()
        if free is not None and free < MIN_FREE_BYTES:
            raise StoreUnavailable(
                f"the audit database's disk is full ({free // 1024} KiB free)")

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
                size = group[0].size
                while self._queue and size + self._queue[0].size <= self._max_group_rows:
                    size += self._queue[0].size
                    group.append(self._queue.popleft())
            self._write(group)
            # not kept while waiting for the next group: up to a thousand rows of documents
            del group

    def _write(self, group: list[_Pending]) -> None:
        rows = [row for pending in group for row in pending.rows]
        started = time.perf_counter()
        self._group_started = time.monotonic()

        def access(outcomes: list[_RowOutcome] | None) -> list[dict[str, Any]]:
            """The group's access records; one whose evaluation row was refused gets the
            refusal as its outcome (outcomes None: every row was inserted)."""
            found: list[dict[str, Any]] = []
            start = 0
            for pending in group:
                for record, link in zip(pending.access, pending.access_links, strict=True):
                    outcome = None if outcomes is None or link is None else outcomes[start + link]
                    if isinstance(outcome, StoreError):
                        record = {**record, "code": self._access_code(outcome),
                                  "reason": outcome.reason, "evaluations_returned": 0}
                    found.append(record)
                start += len(pending.rows)
            return found

        try:
            self._file.check()  # before connecting: SQLite would create a new, empty file
            with self._process_lock:
                outcomes = self._insert(rows, access)
            # committed into a file removed meanwhile: lost with it, so not acknowledged
            self._file.check()
        except Exception as exc:  # every waiter must hear of it, whatever it is
            if not isinstance(exc, StoreError):
                log.exception("audit write failed unexpectedly")
                exc = _unavailable(exc)
            log.warning("audit group of %d rows failed: %s", len(rows), getattr(exc, "detail", "") or exc)
            with self._cond:
                self._stats.groups_failed += 1
            _settle(group, error=exc)
            return
        finally:
            self._group_started = None
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
            self._access_inserter = self._access_inserter or _RowInserter(conn.dialect, _ACCESS)
            if self._sqlite:
                dbapi = conn.connection.dbapi_connection
                assert dbapi is not None
                dbapi.execute("PRAGMA wal_autocheckpoint = 0")  # the checkpointer's job
                # a log restarted after a checkpoint is cut back to this size at the next commit
                dbapi.execute(f"PRAGMA journal_size_limit = {self._wal_limit_bytes}")
        return conn

    def _close_connection(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except SQLAlchemyError:
                pass
            self._conn = None

    def _insert(self, rows: list[dict[str, Any]], access: _AccessOf) -> list[_RowOutcome]:
        for attempt in (1, 2):
            self._committing = False
            try:
                conn = self._connection()
                if _has_repeated_request_id(rows):
                    return self._insert_row_by_row(conn, rows, access)
                if self._sqlite:
                    return self._insert_sqlite(conn, rows, access)
                try:
                    assert self._inserter is not None and self._access_inserter is not None
                    self._inserter.insert(conn, rows)
                except DBAPIError as exc:
                    if _refused_row(exc) is None:
                        raise
                    conn.rollback()
                    return self._insert_row_by_row(conn, rows, access)
                self._access_inserter.insert(conn, access(None))
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

    def _insert_sqlite(self, conn: Connection, rows: list[dict[str, Any]],
                       access: _AccessOf) -> list[_RowOutcome]:
        """SQLite: BEGIN IMMEDIATE, the INSERTs and COMMIT straight on the driver's connection.
        For the small groups of unary calls, SQLAlchemy's work per statement cost more than
        SQLite's own; the SQLAlchemy connection is left outside any transaction, ready for the
        row-by-row path."""
        assert self._inserter is not None and self._access_inserter is not None
        dbapi = conn.connection.dbapi_connection
        assert dbapi is not None
        try:
            dbapi.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise _unavailable(exc) from exc
        try:
            for sql, params in self._inserter.statements(rows):
                dbapi.execute(sql, params)
        except sqlite3.Error as exc:
            if _refused_row(exc) is None:
                _rollback_quietly(dbapi)
                raise _unavailable(exc) from exc
            dbapi.execute("ROLLBACK")
            return self._insert_row_by_row(conn, rows, access)
        try:
            for sql, params in self._access_inserter.statements(access(None)):
                dbapi.execute(sql, params)
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

    def _insert_row_by_row(self, conn: Connection, rows: list[dict[str, Any]],
                           access: _AccessOf) -> list[_RowOutcome]:
        with self._cond:
            self._stats.row_by_row += 1
        outcomes: list[_RowOutcome] = []
        for row in rows:
            try:
                with conn.begin_nested():
                    conn.execute(sa.insert(_TABLE), row)
            except IntegrityError as exc:
                outcomes.append(_existing(conn, row, exc, self._parts_for))
            except DBAPIError as exc:
                why = _refused_row(exc)
                if why is None:  # not this row's data: the database failed, the group fails
                    raise
                log.warning("audit row refused (%s): %s", why, _describe(exc))
                outcomes.append(InvalidRecord(f"the database refused this evaluation: {why}"))
            else:
                outcomes.append(None)
        records = access(outcomes)
        if records:
            conn.execute(sa.insert(_ACCESS), records)
        self._commit(conn)
        return outcomes

    def _commit(self, conn: Connection) -> None:
        self._committing = True
        conn.commit()
        self._committing = False
        with self._cond:
            self._stats.commits += 1


_AccessOf = Callable[[list[_RowOutcome] | None], list[dict[str, Any]]]
"""A group's access records given its rows' outcomes (None: every row inserted)."""


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
                    opened = raw is None
                    if raw is None:
                        raw = self._engine.raw_connection()
                    sqlite = raw.driver_connection
                    assert sqlite is not None  # a connection checked out of the pool is open
                    if opened:
                        sqlite.execute(f"PRAGMA journal_size_limit = {self._limit}")
                    busy = sqlite.execute(f"PRAGMA wal_checkpoint({mode})").fetchone()[0]
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
            log.error("audit database file %s: %s; writes are refused until a restart",
                      self._path, what)

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
                    detail=f"cannot open {self._path}: {exc.strerror}") from exc
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

    def __init__(self, dialect: sa.Dialect, table: sa.Table = _TABLE) -> None:
        columns = list(table.columns)
        self._names = [c.name for c in columns]
        self._processors = [c.type._cached_bind_processor(dialect) for c in columns]
        mark = "?" if dialect.paramstyle in ("qmark", "numeric") else "%s"
        quote = dialect.identifier_preparer.quote
        one = "(" + ",".join([mark] * len(columns)) + ")"
        head = (f"INSERT INTO {dialect.identifier_preparer.format_table(table)} "
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
        log.warning("audit row refused (a constraint): %s", _describe(exc))
        return InvalidRecord("the database refused this evaluation: it breaks a constraint of the audit table")
    return RequestConflict(request_id, str(found.id))


def _settle(
    group: list[_Pending],
    *,
    outcomes: list[_RowOutcome] | None = None,
    error: BaseException | None = None,
) -> None:
    """Wake the waiters of a group from the writer thread: one hop per event loop (futures
    belong to their loop, and each hop is a write to the loop's wake-up pipe)."""
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

    for loop, items in by_loop.items():
        try:
            loop.call_soon_threadsafe(wake, items)
        except RuntimeError:  # the loop is closed: nobody is waiting any more
            pass
