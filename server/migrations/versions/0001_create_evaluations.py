"""Create the evaluations table: the append-only audit record.

Revision ID: 0001
Revises:
Create Date: 2026-11-28
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copies of the model's types: a migration must not change when models.py does.
_json = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "evaluations",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("request_id", sa.String(), nullable=True),
        sa.Column("request_digest", sa.String(length=64), nullable=False),
        sa.Column("scorecard_id", sa.String(), nullable=False),
        sa.Column("scorecard_version", sa.String(), nullable=False),
        sa.Column("scorecard_digest", sa.String(), nullable=False),
        sa.Column("subject_kind", sa.String(length=32), nullable=False),
        sa.Column("subject_id", sa.String(), nullable=False),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("grade", sa.String(), nullable=False),
        sa.Column("score", sa.String(), nullable=True),
        sa.Column("input", _json, nullable=False),
        sa.Column("result", _json, nullable=False),
        sa.Column("caller", sa.String(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_evaluations")),
        sa.UniqueConstraint("request_id", name=op.f("uq_evaluations_request_id")),
    )
    op.create_index(
        op.f("ix_evaluations_subject_id_id"), "evaluations", ["subject_id", "id"], unique=False
    )
    op.create_index(
        op.f("ix_evaluations_scorecard_id_id"), "evaluations", ["scorecard_id", "id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_evaluations_scorecard_id_id"), table_name="evaluations")
    op.drop_index(op.f("ix_evaluations_subject_id_id"), table_name="evaluations")
    op.drop_table("evaluations")
