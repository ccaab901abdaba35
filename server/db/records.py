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
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
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
from .errors import RecordChanged, StoreError
from .failures import unavailable
from .ids import new_evaluation_id
from .models import RecordEventRow, RecordLinkRow, RecordRow
from .pages import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, Listing
from .pages import page_size as _page_size

_RECORDS = cast(sa.Table, RecordRow.__table__)
_EVENTS = cast(sa.Table, RecordEventRow.__table__)
_LINKS = cast(sa.Table, RecordLinkRow.__table__)
T = TypeVar("T")


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

    async def create(self, record: Record, event: Event) -> Record:
        """Store a new record with its CREATED event; returns it with its id and times."""
        rid, created = new_evaluation_id()
        stored = replace(
            record,
            id=str(rid),
            version=1,
            created_at=created,
            events=(replace(event, sequence=1, recorded_at=created),),
        )

        def write(conn: Connection) -> None:
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
                    linked=[
                        {"id": p.id, "role": p.role.value, "name": p.name} for p in record.linked
                    ],
                    state="ACTIVE",
                    version=1,
                    created_at=created,
                    created_by=event.actor,
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

        await self._run(write, write=True)
        return stored

    async def append(self, record: Record, event: Event, state: str) -> Record:
        """Append `event` to `record` as read (its version); RecordChanged when another
        change was committed since."""
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
            conn.execute(_EVENTS.insert().values(_event_row(rid, event)))

        try:
            await self._run(write, write=True)
        except IntegrityError:  # the same sequence appended by a concurrent change
            raise RecordChanged(record.id, record.version) from None
        return replace(record, events=(*record.events, event), version=record.version + 1)

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
    ) -> tuple[list[Record], str]:
        """Records newest first: of one subject (about it, or linking the person), of a kind,
        or (`under_objection`) those whose last event left them under objection."""
        size = _page_size(page_size)
        listing: Listing[uuid.UUID] = Listing(
            ("records", subject_id, kind, "objection" if under_objection else None),
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
        records: list[Record] = []
        token = None
        while True:
            page, token = await self.list(
                subject_id=subject_id, page_size=MAX_PAGE_SIZE, page_token=token
            )
            records += page
            if not token:
                return records


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
    for e in conn.execute(
        sa.select(_EVENTS)
        .where(_EVENTS.c.record_id.in_(ids))
        .order_by(_EVENTS.c.record_id, _EVENTS.c.sequence)
    ):
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
            )
        )
    return out
