"""Add request ids to records and record_events: the caller's idempotency key of a
CreateRecord (unique per caller) and of a state change (unique per record), with the digest
of the request it came with, so a retried call returns what it did then instead of creating
a second record or appending a second event (issue 10).

Follows 0005 (records). Unique indexes, not constraints: SQLite adds an index in place, a
constraint only by copying the table. NULLs (no key) never collide, on SQLite and PostgreSQL.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_KEYS = (
    ("records", "ix_records_created_by_request_id", ["created_by", "request_id"]),
    ("record_events", "ix_record_events_record_id_request_id", ["record_id", "request_id"]),
)


def upgrade() -> None:
    for table, index, columns in _KEYS:
        op.add_column(table, sa.Column("request_id", sa.String(), nullable=True))
        op.add_column(table, sa.Column("request_digest", sa.String(length=64), nullable=True))
        op.create_index(index, table, columns, unique=True)


def downgrade() -> None:
    # Only the keys go; every record and event stays (a retry then is no longer recognised).
    for table, index, _ in reversed(_KEYS):
        op.drop_index(index, table_name=table)
        with op.batch_alter_table(table) as batch:  # SQLite drops a column by copying the table
            batch.drop_column("request_digest")
            batch.drop_column("request_id")
