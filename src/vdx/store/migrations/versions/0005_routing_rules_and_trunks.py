"""gateway routing rules and outbound trunks

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import vdx.store.db

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "routing_rule",
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("match", sa.String(length=500), nullable=False),
        sa.Column("replace", sa.String(length=500), nullable=False),
        sa.Column("target", sa.String(length=20), nullable=False),
        sa.Column("trunk", sa.String(length=100), nullable=True),
        sa.Column("source_domains", sa.Text(), nullable=False),
        sa.Column("source_networks", sa.Text(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("updated_time", vdx.store.db.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "trunk",
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("proxy", sa.String(length=300), nullable=False),
        sa.Column("transport", sa.String(length=10), nullable=False),
        sa.Column("username", sa.String(length=200), nullable=True),
        sa.Column("password", sa.String(length=200), nullable=True),
        sa.Column("from_domain", sa.String(length=253), nullable=True),
        sa.Column("max_calls", sa.Integer(), nullable=False),
        sa.Column("updated_time", vdx.store.db.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )


def downgrade() -> None:
    op.drop_table("trunk")
    op.drop_table("routing_rule")
