"""audit trail

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import vdx.store.db

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "audit_record",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("at", vdx.store.db.UTCDateTime(), nullable=False),
        sa.Column("organisation_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("organisation_code", sa.String(length=250), nullable=True),
        sa.Column("resource", sa.String(length=40), nullable=False),
        sa.Column("operation", sa.String(length=40), nullable=False),
        sa.Column("identifier", sa.String(length=250), nullable=True),
        sa.Column("meeting_uuid", sa.String(length=36), nullable=True),
        sa.Column("actor", sa.String(length=250), nullable=True),
        sa.Column("data", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("audit_record", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_audit_record_at"), ["at"], unique=False)
        batch_op.create_index(batch_op.f("ix_audit_record_meeting_uuid"), ["meeting_uuid"], unique=False)
        batch_op.create_index("ix_audit_record_org_at", ["organisation_id", "at"], unique=False)


def downgrade() -> None:
    op.drop_table("audit_record")
