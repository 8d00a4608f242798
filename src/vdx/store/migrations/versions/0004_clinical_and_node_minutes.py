"""clinical organisations, node minutes and refused joins

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import vdx.store.db

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _key() -> list[sa.Column[object]]:
    return [
        sa.Column("node", sa.String(length=100), nullable=False),
        sa.Column("minute", vdx.store.db.UTCDateTime(), nullable=False),
    ]


def upgrade() -> None:
    with op.batch_alter_table("organisation", schema=None) as batch_op:
        batch_op.add_column(sa.Column("clinical", sa.Boolean(), server_default=sa.false(), nullable=False))
    op.create_table(
        "node_minute",
        *_key(),
        sa.Column("capacity", sa.Float(), nullable=False),
        sa.Column("units_in_use", sa.Float(), nullable=False),
        sa.Column("reserve", sa.Float(), nullable=False),
        sa.Column("participants", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("node", "minute"),
    )
    op.create_table(
        "node_minute_participants",
        *_key(),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("quality", sa.String(length=20), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("node", "minute", "kind", "quality"),
    )
    op.create_table(
        "node_minute_organisation",
        *_key(),
        sa.Column("organisation_code", sa.String(length=250), nullable=False),
        sa.Column("clinical", sa.Boolean(), nullable=False),
        sa.Column("participants", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("node", "minute", "organisation_code", "clinical"),
    )
    op.create_table(
        "refused_join",
        *_key(),
        sa.Column("reason", sa.String(length=40), nullable=False),
        sa.Column("organisation_code", sa.String(length=250), nullable=False),
        sa.Column("clinical", sa.Boolean(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("node", "minute", "reason", "organisation_code", "clinical"),
    )
    for table in ("node_minute", "node_minute_participants", "node_minute_organisation", "refused_join"):
        op.create_index(f"ix_{table}_minute", table, ["minute"], unique=False)


def downgrade() -> None:
    for table in ("refused_join", "node_minute_organisation", "node_minute_participants", "node_minute"):
        op.drop_table(table)
    with op.batch_alter_table("organisation", schema=None) as batch_op:
        batch_op.drop_column("clinical")
