"""The audit store: evaluations written durably before the reply, read back for the audit.

`EvaluationStore` owns the engine and is the only code that opens connections or sessions.
Its API is for asyncio (the grpc.aio servicer). Reads run in threads and writes in a writer
thread, on SQLite as on PostgreSQL: the event loop never waits for the disk, so a stalled
write holds only the calls that wait for it. Where the rest lives:

- rows.py: what goes in and comes out (`EvaluationRecord`, `StoredEvaluation`, …) and their
  rows; rowjson.py: the JSON documents in them (formats 1 and 2); parts.py: the static text
  of results (format 2) by scorecard digest.
- groupcommit.py: the group-commit writer; dbwriter.py: the interface it writes through,
  with sqlite_writer.py and postgres_writer.py behind it; failures.py: driver errors as the
  store's errors.
- pages.py: page tokens, one scheme for every List.

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
import builtins
import datetime as dt
import logging
import uuid
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Self, TypeVar

import sqlalchemy as sa
from sector_credit.scorecards.model import Scorecard
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from .engine import create_engine
from .errors import InvalidListRequest, StoreError, StoreUnavailable
from .failures import unavailable
from .groupcommit import GroupWriter, Pending, StoreStats, database_writer
from .models import EvaluationRow
from .pages import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, Listing
from .pages import page_size as _page_size
from .parts import ScorecardParts
from .rowjson import ResultParts
from .rows import (
    ACCESS,
    EVALUATIONS,
    AccessPage,
    AccessRecord,
    EvaluationRecord,
    Page,
    ReadEvaluation,
    RowOutcome,
    SaveOutcome,
    StoredAccess,
    StoredEvaluation,
    UnreadableEvaluation,
    access_row,
    default_access_code,
    evaluation_row,
    read_row,
    stored,
    stored_access,
)
from .sqlite_writer import WAL_LIMIT_BYTES

__all__ = [
    "DEFAULT_PAGE_SIZE",
    "MAX_PAGE_SIZE",
    "AccessPage",
    "AccessRecord",
    "EvaluationRecord",
    "EvaluationStore",
    "Page",
    "ReadEvaluation",
    "SaveOutcome",
    "StoreStats",
    "StoredAccess",
    "StoredEvaluation",
    "UnreadableEvaluation",
]

log = logging.getLogger(__name__)

DEFAULT_MAX_GROUP_ROWS = 1000
CLOSE_TIMEOUT_S = 30.0  # the longest close() waits for a stalled writer to finish

T = TypeVar("T")


def _evaluations(
    subject_id: str | None, scorecard_id: str | None, caller: str | None
) -> Listing[uuid.UUID]:
    """ListEvaluations' tokens; a listing limited to one caller's own evaluations has its own
    tokens, and one without that limit keeps the tokens it always had."""
    filters = (subject_id, scorecard_id) if caller is None else (subject_id, scorecard_id, caller)
    return Listing(filters, keep="subject_id and scorecard")


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
        # results of these scorecards are stored in format 2 (rowjson.py); others' parts are
        # read from scorecard_parts
        self._parts = ScorecardParts(scorecards)
        self._writer = GroupWriter(
            database_writer(self._engine, self._parts.get, wal_limit_bytes),
            max_group_rows,
            on_commit,
            access_code or default_access_code,
        )
        self._turn: dict[asyncio.AbstractEventLoop, list[Pending]] = {}  # see _submit
        self._closed = False

    @classmethod
    async def open(cls, url: str | URL, **options: Any) -> Self:
        """A store whose database answered and has the evaluations table: start-up fails
        here, with `StoreUnavailable`, rather than at the first request."""
        store = cls(url, **options)
        try:
            await asyncio.to_thread(store._ping)
            await asyncio.to_thread(store._parts.store, store._engine)
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

    async def save_many(
        self, records: Sequence[EvaluationRecord], access: Sequence[AccessRecord] = ()
    ) -> list[SaveOutcome]:
        """Store a batch in one transaction; one outcome per record, in order. `access`: more
        access records to commit in the same transaction (those of a batch's failed items).
        Raises `StoreUnavailable` when the database fails (nothing acknowledged; see the
        module docstring), TypeError/ValueError for a record the codec cannot encode."""
        if not records and not access:
            return []
        parts = self._parts.by_digest
        prepared = [evaluation_row(r, parts) for r in records]
        access_rows = [access_row(r.access) for r in records if r.access is not None]
        links: list[int | None] = [i for i, r in enumerate(records) if r.access is not None]
        access_rows += [access_row(a) for a in access]
        links += [None] * len(access)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[RowOutcome]] = loop.create_future()
        self._submit(Pending([row for row, _ in prepared], loop, future, access_rows, links))
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

    def _submit(self, pending: Pending) -> None:
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
            row = session.execute(sa.select(EVALUATIONS).where(EVALUATIONS.c.id == key)).first()
            return None if row is None else read_row(row, self._parts.reader(session))

        return await self._read(read)

    async def find_by_request_id(self, request_id: str) -> StoredEvaluation | None:
        """The evaluation stored under this request id, or None."""

        def read(session: Session) -> StoredEvaluation | None:
            row = session.scalars(
                sa.select(EvaluationRow).where(EvaluationRow.request_id == request_id)
            ).one_or_none()
            return None if row is None else stored(row, parts_for=self._parts.reader(session))

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
        size = _page_size(page_size)
        listing = _evaluations(subject_id, scorecard_id, caller)
        after = listing.after(page_token)

        def read(session: Session) -> Page:
            # Core rows, not ORM objects: a page has up to a thousand, read once.
            t = EVALUATIONS.c
            stmt = sa.select(EVALUATIONS)
            if subject_id is not None:
                stmt = stmt.where(t.subject_id == subject_id)
            if scorecard_id is not None:
                stmt = stmt.where(t.scorecard_id == scorecard_id)
            if caller is not None:  # a reader limited to its own evaluations
                stmt = stmt.where(t.caller == caller)
            if after is not None:
                stmt = stmt.where(t.id < after)
            stmt = stmt.order_by(t.id.desc()).limit(size + 1)
            rows, token = listing.page(session.execute(stmt).all(), size)
            parts_for = self._parts.reader(session)
            return [read_row(row, parts_for) for row in rows], token

        return await self._read(read)

    @staticmethod
    def page_token_after(
        evaluation_id: str,
        *,
        subject_id: str | None = None,
        scorecard_id: str | None = None,
        caller: str | None = None,
    ) -> str:
        """The token of the page that continues after `evaluation_id` in a listing with these
        filters (for a page the servicer cut short to fit the message limit)."""
        listing = _evaluations(subject_id or None, scorecard_id or None, caller)
        return listing.token_after(uuid.UUID(evaluation_id))

    async def scan(
        self, after: str | None = None, size: int = 500
    ) -> tuple[builtins.list[ReadEvaluation], str | None]:
        """Every stored evaluation in id order, `size` at a time after the id `after`; the
        second item is the id to continue after (None at the end). For `check-store`."""

        def read(session: Session) -> tuple[list[ReadEvaluation], str | None]:
            stmt = sa.select(EVALUATIONS)
            if after is not None:
                stmt = stmt.where(EVALUATIONS.c.id > uuid.UUID(after))
            rows = session.execute(stmt.order_by(EVALUATIONS.c.id).limit(size)).all()
            parts_for = self._parts.reader(session)
            page = [read_row(row, parts_for) for row in rows]
            return page, (str(rows[-1].id) if len(rows) == size else None)

        return await self._read(read)

    def parts_for(self, digest: str) -> ResultParts | None:
        """The parts this store encodes format-2 results of `digest` with (None: format 1)."""
        return self._parts.by_digest.get(digest)

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
        size = _page_size(page_size)
        if start_time is not None and end_time is not None and end_time <= start_time:
            raise InvalidListRequest("end_time", "must be after start_time")
        listing: Listing[uuid.UUID] = Listing(
            (
                "access",
                subject_id,
                caller,
                start_time.isoformat() if start_time else None,
                end_time.isoformat() if end_time else None,
                code,
            ),
            keep="the filters",
        )
        after = listing.after(page_token)

        def read(session: Session) -> AccessPage:
            t = ACCESS.c
            stmt = sa.select(ACCESS)
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
            rows, token = listing.page(
                session.execute(stmt.order_by(t.id.desc()).limit(size + 1)).all(), size
            )
            return [stored_access(row) for row in rows], token

        return await self._read(read)

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
                raise unavailable(exc) from exc
            except SQLAlchemyError as exc:
                raise unavailable(exc) from exc
        raise AssertionError("unreachable")

    # -- life cycle --------------------------------------------------------------------------

    def health_problem(self) -> str | None:
        """Why the store cannot commit now, or None (the check server/health.py runs for
        grpc.health.v1, once a second in a thread): closed, its writer stuck in a commit for
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
            raise unavailable(exc) from exc

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
            log.error(
                "audit writer still stuck in a commit after %.0f s; closing without it",
                CLOSE_TIMEOUT_S,
            )
            return
        await asyncio.to_thread(self._readers.shutdown, True)
        self._engine.dispose()
