"""The database tables (SQLAlchemy 2.0 typed ORM): what a stored evaluation is as a row.

Rows are neither proto messages nor domain objects: `store.py` converts at the edge. Every
change here needs a hand-reviewed Alembic migration in `server/migrations/versions/`; a test
fails when autogenerate finds a difference between these models and the migrated schema.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import (
    JSON,
    Date,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

JsonDocument = JSON().with_variant(JSONB(), "postgresql")
"""JSONB on PostgreSQL (indexable, queryable), JSON (text) on SQLite."""


class UTCDateTime(TypeDecorator[dt.datetime]):
    """An aware UTC datetime both ways: `timestamptz` on PostgreSQL, UTC text on SQLite
    (which has no time zones and would otherwise hand back naive datetimes)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("a naive datetime has no place in the audit store; give it a zone")
        return value.astimezone(dt.UTC)

    def process_result_value(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        assert isinstance(value, dt.datetime)
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class EvaluationRow(Base):
    """One stored evaluation: append-only, the system of record for the audit."""

    __tablename__ = "evaluations"

    # UUIDv7 (ids.py): unique across replicas and ordered by creation time.
    id: Mapped[uuid.UUID] = mapped_column(Uuid(), primary_key=True)
    # The client's idempotency key; NULL when the client gave none (NULLs never collide).
    request_id: Mapped[str | None] = mapped_column(String())
    # SHA-256 (hex) of the canonical request, to tell a retry from a reuse of the id.
    request_digest: Mapped[str] = mapped_column(String(64))
    scorecard_id: Mapped[str] = mapped_column(String())
    scorecard_version: Mapped[str] = mapped_column(String())
    scorecard_digest: Mapped[str] = mapped_column(String())
    subject_kind: Mapped[str] = mapped_column(String(32))
    subject_id: Mapped[str] = mapped_column(String())
    as_of: Mapped[dt.date] = mapped_column(Date())
    grade: Mapped[str] = mapped_column(String())
    # Exact decimal text ("74.70"): SQLite's NUMERIC would round through a float.
    score: Mapped[str | None] = mapped_column(String())
    # The input as received and the result: whole (format 1, scorecards/codec.py shapes), or
    # without its scorecard's static text, which is in scorecard_parts (format 2, rowjson.py).
    input: Mapped[dict[str, Any]] = mapped_column(JsonDocument)
    result: Mapped[dict[str, Any]] = mapped_column(JsonDocument)
    caller: Mapped[str | None] = mapped_column(String())
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())

    __table_args__ = (
        UniqueConstraint("request_id"),
        # ListEvaluations: newest first within a subject or a scorecard (keyset on id).
        Index(None, "subject_id", "id"),
        Index(None, "scorecard_id", "id"),
    )


class ScorecardPartsRow(Base):
    """The static text of one scorecard version's results (rules' titles and provenance,
    groups, overrides, grades), once per scorecard digest. A result stored in format 2
    (rowjson.py) names its rules by id and takes this text from here; rows are only added."""

    __tablename__ = "scorecard_parts"

    digest: Mapped[str] = mapped_column(String(), primary_key=True)
    scorecard_id: Mapped[str] = mapped_column(String())
    version: Mapped[str] = mapped_column(String())
    parts: Mapped[dict[str, Any]] = mapped_column(JsonDocument)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class AccessRow(Base):
    """One call that touched a subject, or was refused (the query audit): append-only,
    written by the store's group writer in the same commit as the evaluations it concerns."""

    __tablename__ = "access_records"

    # UUIDv7 (ids.py), like evaluations: ordered by creation time, unique across replicas.
    id: Mapped[uuid.UUID] = mapped_column(Uuid(), primary_key=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    # The authenticated identity ("" when a refused call proved none) and how it was proven.
    caller: Mapped[str] = mapped_column(String())
    proven_by: Mapped[str] = mapped_column(String(16))
    key_id: Mapped[str | None] = mapped_column(String())
    method: Mapped[str] = mapped_column(String(64))
    subject_id: Mapped[str | None] = mapped_column(String())
    scorecard_id: Mapped[str | None] = mapped_column(String())
    purpose: Mapped[str | None] = mapped_column(String())
    purpose_note: Mapped[str | None] = mapped_column(String())
    evaluations_returned: Mapped[int] = mapped_column(Integer())
    request_id: Mapped[str | None] = mapped_column(String())
    code: Mapped[str] = mapped_column(String(32))  # the gRPC status code name
    reason: Mapped[str | None] = mapped_column(String())  # the ErrorInfo reason of a failure

    __table_args__ = (
        # ListAccessRecords / ListSubjectAccesses: newest first within a subject or a caller.
        Index(None, "subject_id", "id"),
        Index(None, "caller", "id"),
    )


class ApiKeyRow(Base):
    """An API key the service issued: its id and the SHA-256 of its secret, never the secret.
    Rows are never deleted: a revoked key keeps its row, so who held it stays known."""

    __tablename__ = "api_keys"

    key_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    caller: Mapped[str] = mapped_column(String())
    secret_sha256: Mapped[str] = mapped_column(String(64))
    description: Mapped[str] = mapped_column(String())
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())


class RecordRow(Base):
    """A credit record's fixed facts (issue 10). Rows are never deleted; `version` grows by
    one with each event (optimistic concurrency: a change names the version it read), and
    `state` is the state its last event left, for listings (the state on a date is computed
    from the events, scorecards/records.py)."""

    __tablename__ = "records"

    id: Mapped[uuid.UUID] = mapped_column(Uuid(), primary_key=True)  # UUIDv7
    subject_kind: Mapped[str] = mapped_column(String(32))
    subject_id: Mapped[str] = mapped_column(String())
    kind: Mapped[str] = mapped_column(String())
    authority: Mapped[str] = mapped_column(String())
    basis_regulation: Mapped[str] = mapped_column(String())
    basis_document: Mapped[str] = mapped_column(String())
    decision_date: Mapped[dt.date] = mapped_column(Date())
    severity: Mapped[str] = mapped_column(String(16))
    # The end of the ban the decision set on the subject (a kind with ban bounds); NULL else.
    restriction_end: Mapped[dt.date | None] = mapped_column(Date())
    linked: Mapped[list[Any]] = mapped_column(JsonDocument)
    state: Mapped[str] = mapped_column(String(32))
    version: Mapped[int] = mapped_column(Integer())
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    created_by: Mapped[str] = mapped_column(String())
    # The creator's idempotency key (AIP-155) and the SHA-256 (hex) of what it asked for, to
    # tell a retry from a reuse of the key; NULL when it gave none (NULLs never collide).
    request_id: Mapped[str | None] = mapped_column(String())
    request_digest: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (
        Index(None, "subject_id", "id"),
        Index(None, "kind", "id"),
        Index(None, "created_by", "request_id", unique=True),  # a key is unique per caller
    )


class RecordEventRow(Base):
    """One event of a record: append-only. (record_id, sequence) is the key, so two changes
    made from the same version cannot both be appended."""

    __tablename__ = "record_events"

    record_id: Mapped[uuid.UUID] = mapped_column(Uuid(), primary_key=True)
    sequence: Mapped[int] = mapped_column(Integer(), primary_key=True)
    type: Mapped[str] = mapped_column(String(32))
    action_date: Mapped[dt.date] = mapped_column(Date())
    actor: Mapped[str] = mapped_column(String())
    reason: Mapped[str] = mapped_column(String())
    party: Mapped[str] = mapped_column(String())
    attachments: Mapped[list[Any]] = mapped_column(JsonDocument)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    # The change's idempotency key and request digest, as on RecordRow; unique per record.
    request_id: Mapped[str | None] = mapped_column(String())
    request_digest: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (Index(None, "record_id", "request_id", unique=True),)


class RecordLinkRow(Base):
    """A person linked to an organization's record, to find the records that reach a person."""

    __tablename__ = "record_links"

    record_id: Mapped[uuid.UUID] = mapped_column(Uuid(), primary_key=True)
    person_id: Mapped[str] = mapped_column(String(), primary_key=True)
    role: Mapped[str] = mapped_column(String(32), primary_key=True)

    __table_args__ = (Index(None, "person_id", "record_id"),)
