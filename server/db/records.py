"""The records store: credit records, their append-only events and their linked persons
(issue 10), on the audit database (SQLite file or PostgreSQL).

Writes are few (an officer's acts), so each runs in its own transaction on a reader thread,
not through the evaluations' group writer. A change names the version it read: the UPDATE
of `records.version` only matches that version, and the event's key (record_id, sequence)
is unique, so of two changes made from one version exactly one is committed and the other
raises `RecordChanged` (ABORTED), on SQLite and PostgreSQL alike. Rows are never deleted.
"""

from __future__ import annotations

import asyncio
import builtins
import datetime as dt
import uuid
from collections.abc import Callable, Collection, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any, TypeVar, cast

import sqlalchemy as sa
from sector_credit.scorecards.model import SubjectKind
from sector_credit.scorecards.records import (
    Event,
    EventType,
    LinkedPerson,
    LinkRole,
    Record,
    Severity,
)
from sqlalchemy.engine import URL, Connection
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from .engine import create_engine
from .errors import RecordChanged, RequestConflict, StoreError
from .failures import unavailable
from .ids import new_evaluation_id
from .models import RecordEventRow, RecordLinkRow, RecordRow
from .pages import DEFAULT_PAGE_SIZE, Listing
from .pages import page_size as _page_size

_RECORDS = cast(sa.Table, RecordRow.__table__)
_EVENTS = cast(sa.Table, RecordEventRow.__table__)
_LINKS = cast(sa.Table, RecordLinkRow.__table__)
T = TypeVar("T")
LOCK_TIMEOUT_MS = 2000  # the health check's wait for the records tables' write lock
CHUNK = 500  # subjects per query of touching_many (and so record ids per events query, about)


def parse_id(text: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(text)
    except ValueError:
        return None


class RecordStore:
    def __init__(self, url: str | URL, threads: int = 2) -> None:
        self._engine = create_engine(url, pool_size=threads)
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="records")
        self.sqlite = self._engine.dialect.name == "sqlite"

    async def close(self) -> None:
        await asyncio.to_thread(self._pool.shutdown, True)
        self._engine.dispose()

    async def _run(self, work: Callable[[Connection], T], *, write: bool = False) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, self._now, work, write)

    def _now(self, work: Callable[[Connection], T], write: bool) -> T:
        try:
            conn = self._engine.connect()
            if write and self.sqlite:  # the write lock at BEGIN (engine.py)
                conn = conn.execution_options(sqlite_begin="IMMEDIATE")
            with conn, conn.begin():
                return work(conn)
        except (StoreError, IntegrityError):
            raise
        except SQLAlchemyError as exc:
            raise unavailable(exc) from exc

    # -- writes ------------------------------------------------------------------------------

    async def create(
        self, record: Record, event: Event, key: RequestKey | None = None
    ) -> tuple[Record, bool]:
        """Store a new record with its CREATED event; returns it with its id and times, and
        whether it is a replay: `key` (the creator's request id and digest) already stored
        with the same digest returns that record and stores nothing; with another digest,
        RequestConflict. The unique index on (created_by, request_id) settles a race."""
        rid, created = new_evaluation_id()
        stored = replace(
            record,
            id=str(rid),
            version=1,
            created_at=created,
            events=(replace(event, sequence=1, recorded_at=created),),
        )

        def earlier(conn: Connection) -> Record | None:
            if key is None:
                return None
            rows = conn.execute(
                sa.select(_RECORDS).where(
                    _RECORDS.c.created_by == event.actor, _RECORDS.c.request_id == key.request_id
                )
            ).all()
            if not rows:
                return None
            if rows[0].request_digest != key.digest:
                raise RequestConflict(key.request_id, str(rows[0].id), "records")
            return _with_events(conn, rows)[0]

        def write(conn: Connection) -> Record | None:
            found = earlier(conn)
            if found is not None:
                return found
            conn.execute(
                _RECORDS.insert().values(
                    id=rid,
                    subject_kind=record.subject_kind.value,
                    subject_id=record.subject_id,
                    kind=record.kind,
                    authority=record.authority,
                    basis_regulation=record.basis_regulation,
                    basis_document=record.basis_document,
                    decision_date=record.decision_date,
                    severity=record.severity.value,
                    restriction_end=record.restriction_end,
                    linked=[
                        {"id": p.id, "role": p.role.value, "name": p.name} for p in record.linked
                    ],
                    state="ACTIVE",
                    version=1,
                    created_at=created,
                    created_by=event.actor,
                    **_key_columns(key),
                )
            )
            conn.execute(_EVENTS.insert().values(_event_row(rid, stored.events[0])))
            links = {(p.id, p.role.value) for p in record.linked}
            if links:
                conn.execute(
                    _LINKS.insert(),
                    [
                        {"record_id": rid, "person_id": pid, "role": role}
                        for pid, role in sorted(links)
                    ],
                )
            return None

        try:
            found = await self._run(write, write=True)
        except IntegrityError:  # the same key stored by a concurrent call since `earlier`
            found = await self._run(earlier)
            if found is None:
                raise
        return (stored, False) if found is None else (found, True)

    async def prior_change(self, record_id: str, request_id: str) -> str | None:
        """The request digest of the event appended to the record with `request_id`, or None
        when no change of it came with that key."""
        key = parse_id(record_id)

        def read(conn: Connection) -> str | None:
            return conn.execute(
                sa.select(_EVENTS.c.request_digest).where(
                    _EVENTS.c.record_id == key, _EVENTS.c.request_id == request_id
                )
            ).scalar_one_or_none()

        return await self._run(read)

    async def append(
        self, record: Record, event: Event, state: str, key: RequestKey | None = None
    ) -> Record:
        """Append `event` to `record` as read (its version), with the change's request key;
        RecordChanged when another change was committed since (or the same key was)."""
        rid = uuid.UUID(record.id)
        now = dt.datetime.now(dt.UTC)
        event = replace(event, sequence=len(record.events) + 1, recorded_at=now)

        def write(conn: Connection) -> None:
            done = conn.execute(
                _RECORDS.update()
                .where(_RECORDS.c.id == rid, _RECORDS.c.version == record.version)
                .values(version=record.version + 1, state=state)
            )
            if done.rowcount != 1:
                raise RecordChanged(record.id, record.version)
            conn.execute(_EVENTS.insert().values({**_event_row(rid, event), **_key_columns(key)}))

        try:
            await self._run(write, write=True)
        except IntegrityError:  # the same sequence appended by a concurrent change
            raise RecordChanged(record.id, record.version) from None
        return replace(record, events=(*record.events, event), version=record.version + 1)

    def health_problem(self) -> str | None:
        """Why the records cannot be read or written now, or None (server/health.py runs it
        once a second in a thread): its three tables read on its own connections and, on
        PostgreSQL, the lock a write takes on them obtained (the SQLite file's disk and
        write lock are the audit store's check). Waits at most LOCK_TIMEOUT_MS for a lock."""
        try:
            with self._engine.connect() as conn, conn.begin():
                if not self.sqlite:
                    conn.execute(sa.text(f"SET LOCAL lock_timeout = {LOCK_TIMEOUT_MS}"))
                    conn.execute(
                        sa.text(
                            "LOCK TABLE records, record_events, record_links IN ROW EXCLUSIVE MODE"
                        )
                    )
                for table in (_RECORDS, _EVENTS, _LINKS):
                    conn.execute(sa.select(sa.literal(1)).select_from(table).limit(0))
                conn.rollback()
        except SQLAlchemyError as exc:
            return f"the records store cannot be used: {unavailable(exc)}"
        return None

    # -- reads -------------------------------------------------------------------------------

    async def get(self, record_id: str) -> Record | None:
        key = parse_id(record_id)
        if key is None:
            return None

        def read(conn: Connection) -> Record | None:
            rows = conn.execute(sa.select(_RECORDS).where(_RECORDS.c.id == key)).all()
            return _with_events(conn, rows)[0] if rows else None

        return await self._run(read)

    async def list(
        self,
        *,
        subject_id: str | None = None,
        kind: str | None = None,
        under_objection: bool = False,
        page_size: int = DEFAULT_PAGE_SIZE,
        page_token: str | None = None,
        kinds: frozenset[str] | None = None,
    ) -> tuple[list[Record], str]:
        """Records newest first: of one subject (about it, or linking the person), of a kind,
        or (`under_objection`) those whose last event left them under objection; only of
        `kinds` when given (a reader grant limited to some scorecards)."""
        size = _page_size(page_size)
        listing: Listing[uuid.UUID] = Listing(
            (
                "records",
                subject_id,
                kind,
                "objection" if under_objection else None,
                None if kinds is None else ",".join(sorted(kinds)),
            ),
            keep="subject_id, kind and overdue_only",
        )
        after = listing.after(page_token)

        def read(conn: Connection) -> tuple[list[Record], str]:
            t = _RECORDS.c
            stmt = sa.select(_RECORDS)
            if subject_id:
                linked = sa.select(_LINKS.c.record_id).where(_LINKS.c.person_id == subject_id)
                stmt = stmt.where(sa.or_(t.subject_id == subject_id, t.id.in_(linked)))
            if kind:
                stmt = stmt.where(t.kind == kind)
            if kinds is not None:
                stmt = stmt.where(t.kind.in_(sorted(kinds)))
            if under_objection:
                stmt = stmt.where(t.state == "UNDER_OBJECTION")
            if after is not None:
                stmt = stmt.where(t.id < after)
            rows = conn.execute(stmt.order_by(t.id.desc()).limit(size + 1)).all()
            page, token = listing.page(rows, size)
            return _with_events(conn, page), token

        return await self._run(read)

    async def touching(self, subject_id: str) -> builtins.list[Record]:
        """Every record about the subject or linking the person (what an evaluation reads)."""
        return (await self.touching_many([subject_id]))[subject_id]

    async def touching_many(self, subject_ids: Collection[str]) -> dict[str, builtins.list[Record]]:
        """`touching` for many subjects at once (a batch's): one query for the records and
        one for their events per `CHUNK` subjects, in one transaction; newest first."""
        wanted = sorted(set(subject_ids))

        def read(conn: Connection) -> dict[str, list[Record]]:
            found: dict[str, list[Record]] = {s: [] for s in wanted}
            for start in range(0, len(wanted), CHUNK):
                part = wanted[start : start + CHUNK]
                t = _RECORDS.c
                linked = sa.select(_LINKS.c.record_id).where(_LINKS.c.person_id.in_(part))
                rows = conn.execute(
                    sa.select(_RECORDS)
                    .where(sa.or_(t.subject_id.in_(part), t.id.in_(linked)))
                    .order_by(t.id.desc())
                ).all()
                for record in _with_events(conn, rows):
                    reached = {record.subject_id, *(p.id for p in record.linked)}
                    for subject in reached.intersection(part):
                        found[subject].append(record)
            return found

        return await self._run(read)


@dataclass(frozen=True)
class RequestKey:
    """A call's idempotency key (AIP-155) and the SHA-256 (hex) of what it asked for."""

    request_id: str
    digest: str


def _key_columns(key: RequestKey | None) -> dict[str, str | None]:
    return {
        "request_id": key.request_id if key else None,
        "request_digest": key.digest if key else None,
    }


def _event_row(rid: uuid.UUID, e: Event) -> dict[str, Any]:
    return {
        "record_id": rid,
        "sequence": e.sequence,
        "type": e.type.value,
        "action_date": e.action_date,
        "actor": e.actor,
        "reason": e.reason,
        "party": e.party,
        "attachments": list(e.attachments),
        "created_at": e.recorded_at,
    }


def _with_events(conn: Connection, rows: Sequence[sa.Row[Any]]) -> list[Record]:
    if not rows:
        return []
    ids = [r.id for r in rows]
    events: dict[uuid.UUID, list[Event]] = {i: [] for i in ids}
    found = (
        conn.execute(
            sa.select(_EVENTS)
            .where(_EVENTS.c.record_id.in_(ids[start : start + CHUNK]))
            .order_by(_EVENTS.c.record_id, _EVENTS.c.sequence)
        )
        for start in range(0, len(ids), CHUNK)
    )
    for e in (e for part in found for e in part):
        created = e.created_at
        if isinstance(created, dt.datetime) and created.tzinfo is None:
            created = created.replace(tzinfo=dt.UTC)
        events[e.record_id].append(
            Event(
                e.sequence,
                EventType(e.type),
                e.action_date,
                e.actor,
                e.reason,
                tuple(e.attachments or ()),
                created,
                e.party,
            )
        )
    out = []
    for r in rows:
        created = r.created_at if r.created_at.tzinfo else r.created_at.replace(tzinfo=dt.UTC)
        out.append(
            Record(
                id=str(r.id),
                subject_kind=SubjectKind(r.subject_kind),
                subject_id=r.subject_id,
                kind=r.kind,
                authority=r.authority,
                basis_regulation=r.basis_regulation,
                basis_document=r.basis_document,
                decision_date=r.decision_date,
                severity=Severity(r.severity),
                linked=tuple(
                    LinkedPerson(p["id"], LinkRole(p["role"]), p.get("name", "")) for p in r.linked
                ),
                events=tuple(events[r.id]),
                version=r.version,
                created_at=created,
                restriction_end=r.restriction_end,
            )
        )
    return out
