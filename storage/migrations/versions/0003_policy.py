"""policy: who closed a request and why, the process holding it, withdrawn offers

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27 04:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlmodel.sql.sqltypes import AutoString

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _string(length: int) -> sa.types.TypeEngine:
    return AutoString(length=length)


def upgrade() -> None:
    with op.batch_alter_table("update_request", schema=None) as batch_op:
        batch_op.add_column(sa.Column("closed_by", _string(32), nullable=True))
        batch_op.add_column(sa.Column("close_reason", _string(512), nullable=True))
        batch_op.add_column(sa.Column("worker_id", _string(96), nullable=True))
    with op.batch_alter_table("offer", schema=None) as batch_op:
        batch_op.add_column(sa.Column("withdrawn_reason", _string(512), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("offer", schema=None) as batch_op:
        batch_op.drop_column("withdrawn_reason")
    with op.batch_alter_table("update_request", schema=None) as batch_op:
        batch_op.drop_column("worker_id")
        batch_op.drop_column("close_reason")
        batch_op.drop_column("closed_by")
