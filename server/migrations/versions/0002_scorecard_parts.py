"""Add scorecard_parts: the static text of a scorecard version's results, once per digest,
for result documents stored in format 2 (server/db/rowjson.py).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copies of the model's types: a migration must not change when models.py does.
_json = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "scorecard_parts",
        sa.Column("digest", sa.String(), nullable=False),
        sa.Column("scorecard_id", sa.String(), nullable=False),
        sa.Column("version", sa.String(), nullable=False),
        sa.Column("parts", _json, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("digest", name=op.f("pk_scorecard_parts")),
    )


def downgrade() -> None:
    # Results stored in format 2 cannot be read without their parts: refuse rather than
    # leave evaluations that can no longer be explained.
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        count = bind.execute(
            sa.text("SELECT count(*) FROM evaluations WHERE (result ->> 'format') = '2'")
        ).scalar_one()
    else:
        count = bind.execute(
            sa.text("SELECT count(*) FROM evaluations WHERE json_extract(result, '$.format') = 2")
        ).scalar_one()
    if count:
        raise RuntimeError(
            f"{count} stored evaluations keep their text in scorecard_parts (result format 2);"
            " downgrading below 0002 would leave them unreadable"
        )
    op.drop_table("scorecard_parts")
