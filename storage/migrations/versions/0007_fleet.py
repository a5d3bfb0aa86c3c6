"""fleet: one shared scan of every image (fleet_image), and its single-flight claim

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlmodel.sql.sqltypes import AutoString, UTCDateTime

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "fleet_image",
        sa.Column("image_key", AutoString(length=160), nullable=False),
        sa.Column("account_id", AutoString(length=12), nullable=False),
        sa.Column("region", AutoString(length=32), nullable=False),
        sa.Column("image_id", AutoString(length=80), nullable=False),
        sa.Column("name", AutoString(length=255), nullable=False),
        sa.Column("description", AutoString(length=512), nullable=True),
        sa.Column("state", AutoString(length=32), nullable=False),
        sa.Column("platform", AutoString(length=32), nullable=True),
        sa.Column("update_available", sa.Boolean(), nullable=False),
        sa.Column("update_description", AutoString(length=512), nullable=True),
        sa.Column("created", UTCDateTime(), nullable=True),
        sa.Column("scanned_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("image_key"),
    )
    with op.batch_alter_table("fleet_image", schema=None) as batch_op:
        batch_op.create_index(
            "ix_fleet_image_region_update", ["region", "update_available"], unique=False
        )
    op.create_table(
        "fleet_scan",
        sa.Column("id", AutoString(length=16), nullable=False),
        sa.Column("running_by", AutoString(length=96), nullable=True),
        sa.Column("running_since", UTCDateTime(), nullable=True),
        sa.Column("started_at", UTCDateTime(), nullable=True),
        sa.Column("finished_at", UTCDateTime(), nullable=True),
        sa.Column("failures", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("listing", schema=None) as batch_op:
        batch_op.add_column(sa.Column("scanned_at", UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("listing", schema=None) as batch_op:
        batch_op.drop_column("scanned_at")
    op.drop_table("fleet_scan")
    with op.batch_alter_table("fleet_image", schema=None) as batch_op:
        batch_op.drop_index("ix_fleet_image_region_update")
    op.drop_table("fleet_image")
