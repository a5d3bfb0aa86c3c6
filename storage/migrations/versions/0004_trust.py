"""trust: the event log refuses UPDATE and DELETE; who holds a follow-up's claim

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 06:00:00

The event table is append-only in the database itself, not only by the code's good manners:
a trigger refuses every UPDATE and DELETE (and TRUNCATE on PostgreSQL) whoever sends it. A
later migration that rebuilds the event table on SQLite (batch_alter_table copies it) must
create the triggers again.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlmodel.sql.sqltypes import AutoString

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MESSAGE = "event is append-only: rows are never updated or deleted"

SQLITE = [
    f"""CREATE TRIGGER event_no_{verb.lower()} BEFORE {verb} ON event
    BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END"""
    for verb in ("UPDATE", "DELETE")
]

POSTGRESQL = [
    f"""CREATE FUNCTION event_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN RAISE EXCEPTION '{MESSAGE}' USING ERRCODE = 'insufficient_privilege'; END $$""",
    """CREATE TRIGGER event_no_change BEFORE UPDATE OR DELETE ON event
    FOR EACH ROW EXECUTE FUNCTION event_append_only()""",
    """CREATE TRIGGER event_no_truncate BEFORE TRUNCATE ON event
    FOR EACH STATEMENT EXECUTE FUNCTION event_append_only()""",
]


def upgrade() -> None:
    with op.batch_alter_table("update_request", schema=None) as batch_op:
        batch_op.add_column(sa.Column("followup_claimed_by", _string(96), nullable=True))
    dialect = op.get_bind().dialect.name
    for statement in POSTGRESQL if dialect == "postgresql" else SQLITE:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER event_no_truncate ON event")
        op.execute("DROP TRIGGER event_no_change ON event")
        op.execute("DROP FUNCTION event_append_only()")
    else:
        op.execute("DROP TRIGGER event_no_delete")
        op.execute("DROP TRIGGER event_no_update")
    with op.batch_alter_table("update_request", schema=None) as batch_op:
        batch_op.drop_column("followup_claimed_by")


def _string(length: int) -> sa.types.TypeEngine:
    return AutoString(length=length)
