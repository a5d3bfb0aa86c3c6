"""update_request.error_details (migration 0005), on SQLite and PostgreSQL: rows written
before it get an empty list, new rows keep their [code, message] pairs, and it goes back. And
its build slot (0008): each update building when it came gets one."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from importlib import resources

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, inspect, text

from storage import crud
from storage.db import make_engine, session_scope, unit_of_work
from storage.models import State, UpdateRequest


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


def _migrate(engine: Engine, to: str, *, down: bool = False) -> None:
    cfg = Config()
    cfg.set_main_option("script_location", str(resources.files("storage") / "migrations"))
    with engine.begin() as connection:
        cfg.attributes["connection"] = connection
        (command.downgrade if down else command.upgrade)(cfg, to)


def _old_row(engine: Engine) -> str:
    """A request as the schema of 0004 stores it, before error_details existed."""
    request_id = uuid.uuid4().hex
    now = datetime.now(UTC)
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO update_request (id, state, account_id, region, source_image_id, "
                "source_image_name, requested_by, created_at, updated_at) VALUES (:id, 'error', "
                "'123456789012', 'us-east-1', 'wsi-0123456789', 'Win', 'UREQ', :now, :now)"
            ),
            {"id": request_id, "now": now},
        )
    return request_id


def test_requests_from_before_the_column_have_no_details(engine: Engine) -> None:
    _migrate(engine, "0004")
    request_id = _old_row(engine)

    _migrate(engine, "head")  # 0005, and the later ones the models also need

    with session_scope(engine) as session:
        request = crud.get_request(session=session, request_id=request_id)
        assert request is not None and request.error_details == []
    assert not next(
        c for c in inspect(engine).get_columns("update_request") if c["name"] == "error_details"
    )["nullable"]


def test_details_are_stored_in_order_and_the_migration_goes_back(engine: Engine) -> None:
    _migrate(engine, "head")
    request_id = _old_row(engine)
    pairs = [["AntiVirusInstalled", "Antivirus found"], ["UnknownError", "ünïcode & <odd>"]]
    with unit_of_work(engine) as session:
        assert crud.transition(
            session=session,
            request_id=request_id,
            from_states=[State.error],
            to=State.error,
            error_details=pairs,
        )
    with session_scope(engine) as session:
        request = session.get(UpdateRequest, request_id)
        assert request is not None and request.error_details == pairs

    _migrate(engine, "0004", down=True)
    columns = {c["name"] for c in inspect(engine).get_columns("update_request")}
    assert "error_details" not in columns and "followup_claimed_by" in columns


def test_updates_building_before_the_build_slots_each_get_one(engine: Engine) -> None:
    _migrate(engine, "0007")
    ids = [_old_row(engine) for _ in range(3)]
    with engine.begin() as connection:
        connection.execute(
            text("UPDATE update_request SET state = 'pending' WHERE id IN (:a, :b)"),
            {"a": ids[0], "b": ids[1]},
        )

    _migrate(engine, "0008")

    with engine.connect() as connection:
        slots = dict(connection.execute(text("SELECT id, slot FROM update_request")).fetchall())
    assert sorted(slots[i] for i in ids[:2]) == [1, 2] and slots[ids[2]] is None
