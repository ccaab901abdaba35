"""Add access_records: the query audit, one row per call that touched a subject or was
refused (issue 9 item 5).

Follows 0003 (api_keys).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "access_records",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("caller", sa.String(), nullable=False),
        sa.Column("proven_by", sa.String(length=16), nullable=False),
        sa.Column("key_id", sa.String(), nullable=True),
        sa.Column("method", sa.String(length=64), nullable=False),
        sa.Column("subject_id", sa.String(), nullable=True),
        sa.Column("scorecard_id", sa.String(), nullable=True),
        sa.Column("purpose", sa.String(), nullable=True),
        sa.Column("purpose_note", sa.String(), nullable=True),
        sa.Column("evaluations_returned", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.String(), nullable=True),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("reason", sa.String(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_access_records")),
    )
    op.create_index(op.f("ix_access_records_subject_id_id"), "access_records", ["subject_id", "id"])
    op.create_index(op.f("ix_access_records_caller_id"), "access_records", ["caller", "id"])


def downgrade() -> None:
    # The query audit is a record the law asks for: refuse to drop rows it holds.
    count = op.get_bind().execute(sa.text("SELECT count(*) FROM access_records")).scalar_one()
    if count:
        raise RuntimeError(
            f"access_records holds {count} access records (the query audit);"
            " downgrading below 0004 would destroy them"
        )
    op.drop_index(op.f("ix_access_records_caller_id"), table_name="access_records")
    op.drop_index(op.f("ix_access_records_subject_id_id"), table_name="access_records")
    op.drop_table("access_records")
