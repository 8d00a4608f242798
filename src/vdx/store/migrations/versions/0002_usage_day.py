"""usage per organisation per day

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "usage_day",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("organisation_code", sa.String(length=250), nullable=False),
        sa.Column("participants", sa.Integer(), nullable=False),
        sa.Column("participant_seconds", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("day", "organisation_code"),
    )


def downgrade() -> None:
    op.drop_table("usage_day")
