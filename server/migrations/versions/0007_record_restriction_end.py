"""Add records.restriction_end: the end of the ban a decision set on the record's subject
(a procurement or tendering debarment of 1 to 3 years), given at CreateRecord for a kind with
ban bounds and NULL for every other record, so the bans' end dates are read from records
instead of being submitted (issue 10).

Follows 0006 (record request ids). A nullable column: existing records keep NULL (no kind
they are of sets a ban).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("records", sa.Column("restriction_end", sa.Date(), nullable=True))


def downgrade() -> None:
    # The ban ends go with the column; downgrade only before records of a ban kind exist.
    with op.batch_alter_table("records") as batch:  # SQLite drops a column by copying the table
        batch.drop_column("restriction_end")
