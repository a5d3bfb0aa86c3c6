"""error details: the ErrorDetails WorkSpaces gave an image that ended in ERROR

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04 09:00:00

A list of [code, message] pairs, empty for every request that did not end in ERROR with
details. The server default fills the existing rows (and any a process of the previous
version inserts during a rolling upgrade). Only update_request changes: the event table and
its append-only triggers are left as they are.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("update_request", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("error_details", sa.JSON(), nullable=False, server_default=sa.text("'[]'"))
        )


def downgrade() -> None:
    with op.batch_alter_table("update_request", schema=None) as batch_op:
        batch_op.drop_column("error_details")
