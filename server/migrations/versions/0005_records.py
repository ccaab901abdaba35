"""Add records, record_events and record_links: credit records and their append-only events
(issue 10).

Follows 0004 (access_records).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "records",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("subject_kind", sa.String(length=32), nullable=False),
        sa.Column("subject_id", sa.String(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("authority", sa.String(), nullable=False),
        sa.Column("basis_regulation", sa.String(), nullable=False),
        sa.Column("basis_document", sa.String(), nullable=False),
        sa.Column("decision_date", sa.Date(), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("linked", _JSON, nullable=False),
        sa.Column("state", sa.String(length=32), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_records")),
    )
    op.create_index(op.f("ix_records_subject_id_id"), "records", ["subject_id", "id"])
    op.create_index(op.f("ix_records_kind_id"), "records", ["kind", "id"])
    op.create_table(
        "record_events",
        sa.Column("record_id", sa.Uuid(), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("action_date", sa.Date(), nullable=False),
        sa.Column("actor", sa.String(), nullable=False),
        sa.Column("reason", sa.String(), nullable=False),
        sa.Column("party", sa.String(), nullable=False),
        sa.Column("attachments", _JSON, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("record_id", "sequence", name=op.f("pk_record_events")),
    )
    op.create_table(
        "record_links",
        sa.Column("record_id", sa.Uuid(), nullable=False),
        sa.Column("person_id", sa.String(), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("record_id", "person_id", "role", name=op.f("pk_record_links")),
    )
    op.create_index(
        op.f("ix_record_links_person_id_record_id"), "record_links", ["person_id", "record_id"]
    )


def downgrade() -> None:
    # Records are a system of record: refuse to drop rows.
    count = op.get_bind().execute(sa.text("SELECT count(*) FROM records")).scalar_one()
    if count:
        raise RuntimeError(
            f"records holds {count} credit records; downgrading below 0005 would destroy them"
        )
    op.drop_index(op.f("ix_record_links_person_id_record_id"), table_name="record_links")
    op.drop_table("record_links")
    op.drop_table("record_events")
    op.drop_index(op.f("ix_records_kind_id"), table_name="records")
    op.drop_index(op.f("ix_records_subject_id_id"), table_name="records")
    op.drop_table("records")
