"""The audit log cannot lose a step or be rewritten.

A state change and its event, a new request and its first events, commit together (one
``unit_of_work``) or not at all: with every event insert failing, a click moves nothing and
leaves no request behind. The event table refuses UPDATE and DELETE in the database itself,
on SQLite and PostgreSQL, whoever sends them.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import Engine, event, text
from sqlalchemy.exc import DBAPIError
from sqlmodel import select

from bot.domain.requests import move
from storage import crud
from storage.db import session_scope, unit_of_work
from storage.models import Event, State, UpdateRequest
from tests.conftest import APPROVER, World


@contextmanager
def events_refused(engine: Engine) -> Iterator[list[str]]:
    """Every INSERT into the event table fails, as a full disk or a revoked grant would make it
    fail; the statements refused are collected."""
    refused: list[str] = []

    def refuse(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO EVENT"):
            refused.append(statement)
            raise RuntimeError("injected: the event insert failed")

    event.listen(engine, "before_cursor_execute", refuse)
    try:
        yield refused
    finally:
        event.remove(engine, "before_cursor_execute", refuse)


def test_an_approval_whose_event_cannot_be_written_leaves_no_request_and_builds_nothing(
    world: World,
) -> None:
    image = world.simulator.add_image(region="us-east-1", name="Win-Audit")
    button = world.approve_button(world.listing(), image)

    with events_refused(world.services.engine) as refused:
        result = world.click(button)
        answer = world.slack.wait_for_response(
            result.response_url, lambda p: "went wrong" in str(p), timeout=15
        )
        assert refused  # the event insert really was attempted, and failed

    assert "Something went wrong" in str(answer)
    assert world.requests() == []  # no request row exists without its `requested` event
    world.poll()  # the poller finds nothing to build, now or later
    assert len(world.creates()) == 0

    # Once events can be written again, the same image is approved normally, with its trail.
    world.approve(image)
    [request] = world.requests()
    assert request.state == State.pending and len(world.creates()) == 1
    with session_scope(world.services.engine) as session:
        kinds = [e.kind for e in reversed(crud.events(session=session, request_id=request.id))]
    assert kinds[:4] == ["requested", "approved", "submitting", "created"]


def test_a_move_whose_event_cannot_be_written_does_not_move(world: World) -> None:
    image = world.simulator.add_image(region="us-east-1", name="Win-Move")
    world.approve(image)
    [request] = world.requests()
    assert request.state == State.pending

    with events_refused(world.services.engine), pytest.raises(RuntimeError, match="injected"):
        move(
            world.services,
            request.id,
            from_states=[State.pending],
            to=State.available,
            event="available",
            actor="wsimg",
            detail={},
        )

    [still] = world.requests()
    assert still.state == State.pending and still.completed_at is None


def test_every_request_row_has_its_requested_event(world: World) -> None:
    """Through the real click path, on both databases: the invariant the audit relies on."""
    for name in ("Win-A", "Win-B"):
        image = world.simulator.add_image(region="eu-west-1", name=name)
        world.approve(image)
    with session_scope(world.services.engine) as session:
        for request in session.exec(select(UpdateRequest)):
            kinds = {e.kind for e in crud.events(session=session, request_id=request.id)}
            assert {"requested", "approved"} <= kinds, request.id


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE event SET actor = 'UFORGED'",
        "UPDATE event SET detail = '{}' WHERE kind = 'approved'",
        "DELETE FROM event",
        "DELETE FROM event WHERE kind = 'requested'",
    ],
)
def test_the_database_refuses_to_change_or_delete_an_event(world: World, statement: str) -> None:
    image = world.simulator.add_image(region="us-east-1", name="Win-Forge")
    world.approve(image)
    with session_scope(world.services.engine) as session:
        before = [(e.id, e.actor, e.kind, e.detail) for e in session.exec(select(Event))]

    # The app's own connection, as an attacker holding its database credentials would use it.
    with pytest.raises(DBAPIError, match="append-only"), unit_of_work(world.services.engine) as s:
        s.execute(text(statement))

    with session_scope(world.services.engine) as session:
        after = [(e.id, e.actor, e.kind, e.detail) for e in session.exec(select(Event))]
    assert after == before and before
    # /wsimg status still names the real approver.
    status = str(world.answer(world.command(f"status {image}"))["blocks"])
    assert f"<@{APPROVER}>" in status and "UFORGED" not in status


def test_the_guard_is_part_of_the_schema(world: World) -> None:
    """Triggers, not code: present after migration; on PostgreSQL TRUNCATE is refused too
    (SQLite has no TRUNCATE: its DELETE, refused above, is the only way to empty a table)."""
    engine = world.services.engine
    with session_scope(engine) as session:
        if engine.dialect.name == "postgresql":
            query = "SELECT tgname FROM pg_trigger WHERE tgrelid = 'event'::regclass"
        else:
            query = "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'event'"
        names = set(session.execute(text(query)).scalars())
    if engine.dialect.name == "postgresql":
        assert {"event_no_change", "event_no_truncate"} <= names
        with pytest.raises(DBAPIError, match="append-only"), unit_of_work(engine) as s:
            s.execute(text("TRUNCATE event"))
    else:
        assert names == {"event_no_update", "event_no_delete"}


def test_appending_events_still_works(world: World) -> None:
    with unit_of_work(world.services.engine) as session:
        crud.record_event(session=session, kind="note", actor=APPROVER, detail={"n": 1})
        crud.record_event(session=session, kind="note", actor=APPROVER, detail={"n": 2})
    with session_scope(world.services.engine) as session:
        notes = [e.detail["n"] for e in session.exec(select(Event).where(Event.kind == "note"))]
    assert sorted(notes) == [1, 2]
