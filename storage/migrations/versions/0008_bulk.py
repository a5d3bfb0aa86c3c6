"""bulk: "Approve all N" batches, the numbered build slots that cap concurrent updates, and
the filters a listing was made with

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 12:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlmodel.sql.sqltypes import AutoString, UTCDateTime

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "batch",
        sa.Column("id", AutoString(length=32), nullable=False),
        sa.Column("listing_id", AutoString(length=32), nullable=False),
        sa.Column("scope", AutoString(length=64), nullable=False),
        sa.Column("scope_text", AutoString(length=255), nullable=False),
        sa.Column("state", AutoString(length=16), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("created_by", AutoString(length=32), nullable=False),
        sa.Column("decided_by", AutoString(length=32), nullable=True),
        sa.Column("close_reason", AutoString(length=512), nullable=True),
        sa.Column("channel_id", AutoString(length=32), nullable=True),
        sa.Column("message_ts", AutoString(length=32), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("decided_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("listing_id", "scope"),
    )
    with op.batch_alter_table("listing", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("filters", AutoString(length=255), nullable=False, server_default="")
        )
    with op.batch_alter_table("update_request", schema=None) as batch_op:
        batch_op.add_column(sa.Column("batch_id", AutoString(length=32), nullable=True))
        batch_op.add_column(sa.Column("slot", sa.Integer(), nullable=True))
        batch_op.create_index("ix_update_request_batch_id", ["batch_id"], unique=False)
        batch_op.create_unique_constraint("uq_update_request_slot", ["slot"])
    # Updates already building hold a slot each, so the cap counts them as it counts new ones.
    bind = op.get_bind()
    building = bind.execute(
        sa.text(
            "SELECT id FROM update_request WHERE state IN ('submitting', 'pending') "
            "ORDER BY created_at, id"
        )
    ).fetchall()
    for number, (request_id,) in enumerate(building, start=1):
        bind.execute(
            sa.text("UPDATE update_request SET slot = :slot WHERE id = :id"),
            {"slot": number, "id": request_id},
        )


def downgrade() -> None:
    with op.batch_alter_table("update_request", schema=None) as batch_op:
        batch_op.drop_constraint("uq_update_request_slot", type_="unique")
        batch_op.drop_index("ix_update_request_batch_id")
        batch_op.drop_column("slot")
        batch_op.drop_column("batch_id")
    with op.batch_alter_table("listing", schema=None) as batch_op:
        batch_op.drop_column("filters")
    op.drop_table("batch")
