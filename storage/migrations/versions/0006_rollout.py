"""rollout: carrying an AVAILABLE update to the bundles, the WorkSpaces and the shares;
each listing's image count per account and region; who opened the Home tab lately

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 09:00:00

One rollout per update request, and one step per thing it does once (a bundle pointed, a
WorkSpace rebuilt, an account shared with or unshared from, the source deleted): the unique
(rollout_id, kind, target) key is what makes each of them happen at most once.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlmodel.sql.sqltypes import AutoString, UTCDateTime

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "home_viewer",
        sa.Column("user_id", AutoString(length=32), nullable=False),
        sa.Column("opened_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("user_id"),
    )
    with op.batch_alter_table("home_viewer", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_home_viewer_opened_at"), ["opened_at"], unique=False)
    with op.batch_alter_table("listing", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("image_counts", sa.JSON(), nullable=False, server_default="{}")
        )
    op.create_table(
        "rollout",
        sa.Column("id", AutoString(length=32), nullable=False),
        sa.Column("account_id", AutoString(length=12), nullable=False),
        sa.Column("region", AutoString(length=32), nullable=False),
        sa.Column("source_image_id", AutoString(length=80), nullable=False),
        sa.Column("new_image_id", AutoString(length=80), nullable=False),
        sa.Column("channel_id", AutoString(length=32), nullable=True),
        sa.Column("thread_ts", AutoString(length=32), nullable=True),
        sa.Column("progress_ts", AutoString(length=32), nullable=True),
        sa.Column("state", AutoString(length=16), nullable=False),
        sa.Column("bundles_by", AutoString(length=32), nullable=True),
        sa.Column("rebuild_by", AutoString(length=32), nullable=True),
        sa.Column("share_by", AutoString(length=32), nullable=True),
        sa.Column("retire_by", AutoString(length=32), nullable=True),
        sa.Column("wave", sa.Integer(), nullable=False),
        sa.Column("batch", sa.Integer(), nullable=False),
        sa.Column("idle_hours", sa.Integer(), nullable=False),
        sa.Column("paused_reason", AutoString(length=512), nullable=True),
        sa.Column("stalled", AutoString(length=512), nullable=True),
        sa.Column("progress_text", AutoString(length=512), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("rollout", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_rollout_state"), ["state"], unique=False)

    op.create_table(
        "rollout_step",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("rollout_id", AutoString(length=32), nullable=False),
        sa.Column("kind", AutoString(length=16), nullable=False),
        sa.Column("target", AutoString(length=80), nullable=False),
        sa.Column("label", AutoString(length=255), nullable=True),
        sa.Column("state", AutoString(length=16), nullable=False),
        sa.Column("wave", sa.Integer(), nullable=True),
        sa.Column("claimed_by", AutoString(length=96), nullable=True),
        sa.Column("claimed_at", UTCDateTime(), nullable=True),
        sa.Column("detail", AutoString(length=512), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("rollout_id", "kind", "target"),
    )
    with op.batch_alter_table("rollout_step", schema=None) as batch_op:
        batch_op.create_index(
            "ix_rollout_step_rollout_state", ["rollout_id", "state"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("home_viewer", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_home_viewer_opened_at"))
    op.drop_table("home_viewer")
    with op.batch_alter_table("rollout_step", schema=None) as batch_op:
        batch_op.drop_index("ix_rollout_step_rollout_state")
    op.drop_table("rollout_step")
    with op.batch_alter_table("rollout", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_rollout_state"))
    op.drop_table("rollout")
    with op.batch_alter_table("listing", schema=None) as batch_op:
        batch_op.drop_column("image_counts")
