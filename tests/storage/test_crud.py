"""Storage itself, on SQLite and on a real PostgreSQL (the ``database_url`` fixture runs each
test on both): the schema, and the compare-and-set moves that keep several processes honest."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, TypeVar

import pytest
from sqlalchemy import Engine, inspect
from sqlalchemy.exc import StatementError
from sqlmodel import Session, col, select

from storage import crud
from storage.db import ensure_schema, make_engine, schema_status, unit_of_work, upgrade
from storage.models import IN_FLIGHT, State, UpdateRequest, image_key

RACERS = 20
T = TypeVar("T")


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    ensure_schema(engine)
    yield engine
    engine.dispose()


def _request(image_id: str = "wsi-0123456789", *, in_flight: bool = True) -> UpdateRequest:
    key = image_key("123456789012", "us-east-1", image_id)
    return UpdateRequest(
        id=uuid.uuid4().hex,
        account_id="123456789012",
        region="us-east-1",
        source_image_id=image_id,
        source_image_name="Win-Base",
        requested_by="UREQUESTER",
        active_key=key if in_flight else None,
        state=State.requested.value if in_flight else State.available.value,
    )


def _add(engine: Engine, request: UpdateRequest) -> UpdateRequest:
    with unit_of_work(engine) as session:
        assert crud.create_request(session=session, request=request)
    return request


def _reload(engine: Engine, request_id: str) -> UpdateRequest:
    with unit_of_work(engine) as session:
        found = crud.get_request(session=session, request_id=request_id)
    assert found is not None
    return found


def _race(engine: Engine, attempt: Callable[[Session, int], T], racers: int = RACERS) -> list[T]:
    """Run ``attempt`` in ``racers`` threads released at once, each with its own session."""
    start = threading.Barrier(racers, timeout=30)

    def run(i: int) -> T:
        with unit_of_work(engine) as session:
            start.wait()
            return attempt(session, i)

    with ThreadPoolExecutor(max_workers=racers) as pool:
        return list(pool.map(run, range(racers)))


# ---- schema ---------------------------------------------------------------------------------


def test_migrations_create_the_schema_and_ensure_schema_is_idempotent(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        current, head = schema_status(engine)
        assert current is None
        assert head

        ensure_schema(engine)
        assert schema_status(engine) == (head, head)
        schema = inspect(engine)
        assert {"alembic_version", "offer", "update_request", "event"} <= set(
            schema.get_table_names()
        )
        unique = {tuple(c["column_names"]) for c in schema.get_unique_constraints("update_request")}
        unique |= {
            tuple(i["column_names"])
            for i in schema.get_indexes("update_request")
            if i.get("unique")
        }
        assert ("active_key",) in unique
        if engine.dialect.name == "postgresql":
            columns = {c["name"]: c["type"] for c in schema.get_columns("update_request")}
            assert columns["created_at"].timezone, "timestamps must be timestamptz"

        ensure_schema(engine)
        upgrade(engine)
        assert schema_status(engine) == (head, head)
    finally:
        engine.dispose()


# ---- the state machine: compare-and-set -----------------------------------------------------


def test_of_twenty_racing_transitions_from_the_same_state_exactly_one_wins(engine: Engine) -> None:
    request = _add(engine, _request())
    targets = [State.approved if i % 2 else State.rejected for i in range(RACERS)]

    def attempt(session: Session, i: int) -> bool:
        return crud.transition(
            session=session,
            request_id=request.id,
            from_states=[State.requested],
            to=targets[i],
            approved_by=f"U{i:04d}",
        )

    won = _race(engine, attempt)

    assert won.count(True) == 1
    winner = won.index(True)
    final = _reload(engine, request.id)
    assert final.state == targets[winner].value
    assert final.approved_by == f"U{winner:04d}"
    if targets[winner] is State.rejected:
        assert final.active_key is None
        assert final.completed_at is not None
    else:
        assert final.active_key == request.image_key
        assert final.completed_at is None


def test_a_transition_from_another_state_changes_nothing(engine: Engine) -> None:
    request = _add(engine, _request())
    with unit_of_work(engine) as session:
        assert not crud.transition(
            session=session,
            request_id=request.id,
            from_states=[State.approved],
            to=State.submitting,
        )
        assert not crud.transition(
            session=session, request_id="no-such-id", from_states=IN_FLIGHT, to=State.failed
        )
    assert _reload(engine, request.id).state == State.requested.value


def test_stale_before_lets_a_poller_take_over_only_an_untouched_request(engine: Engine) -> None:
    request = _add(engine, _request())
    updated = _reload(engine, request.id).updated_at
    with unit_of_work(engine) as session:
        assert not crud.transition(
            session=session,
            request_id=request.id,
            from_states=[State.requested],
            to=State.approved,
            stale_before=updated - timedelta(seconds=1),
        )
        assert crud.transition(
            session=session,
            request_id=request.id,
            from_states=[State.requested],
            to=State.approved,
            stale_before=updated + timedelta(seconds=1),
        )
    assert _reload(engine, request.id).updated_at > updated


# ---- one in-flight request per image --------------------------------------------------------


def test_only_one_request_per_image_is_in_flight(engine: Engine) -> None:
    first = _add(engine, _request())
    with unit_of_work(engine) as session:
        assert not crud.create_request(session=session, request=_request())
        # The session is still usable after the refused insert.
        assert crud.create_request(session=session, request=_request("wsi-other"))
        assert crud.active_request(session=session, image_key=first.image_key).id == first.id

        assert crud.transition(
            session=session,
            request_id=first.id,
            from_states=[State.requested],
            to=State.available,
        )
        assert crud.active_request(session=session, image_key=first.image_key) is None
        again = _request()
        assert crud.create_request(session=session, request=again)
        assert crud.active_request(session=session, image_key=first.image_key).id == again.id


def test_finished_requests_of_one_image_do_not_collide(engine: Engine) -> None:
    for _ in range(3):
        _add(engine, _request(in_flight=False))
    with unit_of_work(engine) as session:
        query = select(UpdateRequest).where(col(UpdateRequest.source_image_id) == "wsi-0123456789")
        rows = list(session.exec(query))
    assert len(rows) == 3
    assert all(row.active_key is None for row in rows)


def test_of_twenty_racing_requests_for_one_image_exactly_one_is_created(engine: Engine) -> None:
    created = _race(
        engine, lambda session, _i: crud.create_request(session=session, request=_request())
    )
    assert created.count(True) == 1
    with unit_of_work(engine) as session:
        rows = crud.requests_in(session=session, states=list(IN_FLIGHT))
        assert len(rows) == 1


# ---- follow-ups -----------------------------------------------------------------------------


def test_a_follow_up_is_claimed_once(engine: Engine) -> None:
    request = _add(engine, _request())
    with unit_of_work(engine) as session:
        crud.transition(
            session=session, request_id=request.id, from_states=IN_FLIGHT, to=State.available
        )
        due = crud.followups_due(session=session)
        assert [r.id for r in due] == [request.id]

    def attempt(session: Session, i: int) -> bool:
        return crud.claim_followup(
            session=session, request_id=request.id, held_by=None, claimant=f"poller-{i}"
        )

    assert _race(engine, attempt).count(True) == 1
    holder = _reload(engine, request.id).followup_claimed_by
    assert holder is not None and holder.startswith("poller-")

    # Taking over a claim is a compare-and-set on its holder: of twenty, one wins.
    def take_over(session: Session, i: int) -> bool:
        return crud.claim_followup(
            session=session, request_id=request.id, held_by=holder, claimant=f"heir-{i}"
        )

    assert _race(engine, take_over).count(True) == 1
    with unit_of_work(engine) as session:
        heir = _reload(engine, request.id).followup_claimed_by
        assert heir is not None and heir.startswith("heir-")
        # Only the holder records: the poller it was taken from records nothing.
        assert not crud.finish_followup(
            session=session, request_id=request.id, posted=True, held_by=holder
        )
        assert crud.finish_followup(
            session=session, request_id=request.id, posted=False, held_by=heir
        )
        assert crud.claim_followup(
            session=session, request_id=request.id, held_by=None, claimant="again"
        )
        assert crud.finish_followup(
            session=session, request_id=request.id, posted=True, held_by="again"
        )
        assert not crud.claim_followup(
            session=session, request_id=request.id, held_by="again", claimant="late"
        )
        assert not crud.followups_due(session=session)
    assert _reload(engine, request.id).followup_posted_at is not None


# ---- values round-trip ----------------------------------------------------------------------


def test_events_round_trip_their_json_detail(engine: Engine) -> None:
    detail: dict[str, Any] = {
        "text": 'naïve ✓ «quoted» "double" \\ back\nslash',
        "count": 3,
        "ratio": 1.5,
        "ok": True,
        "nothing": None,
        "list": [1, "two", {"three": [3.0]}],
        "nested": {"a": {"b": []}, "empty": {}},
    }
    with unit_of_work(engine) as session:
        crud.record_event(session=session, kind="approved", actor="UAPPROVER", request_id="r1")
        crud.record_event(
            session=session, kind="created", actor="UAPPROVER", request_id="r1", detail=detail
        )
        crud.record_event(session=session, kind="other", actor="system")
    with unit_of_work(engine) as session:
        found = crud.events(session=session, request_id="r1")
        assert [e.kind for e in found] == ["created", "approved"]
        assert found[0].detail == detail
        assert found[1].detail == {}
        assert found[0].at.utcoffset() == timedelta(0)
        assert len(crud.events(session=session, limit=2)) == 2


def test_datetimes_come_back_as_the_same_aware_utc_instant(engine: Engine) -> None:
    kolkata = timezone(timedelta(hours=5, minutes=30))
    approved = datetime(2026, 3, 29, 2, 30, 15, 123456, tzinfo=kolkata)
    request = _add(engine, _request())
    with unit_of_work(engine) as session:
        crud.set_fields(session=session, request_id=request.id, approved_at=approved)

    stored = _reload(engine, request.id)
    assert stored.approved_at == approved
    assert stored.approved_at.utcoffset() == timedelta(0)
    assert stored.approved_at.replace(tzinfo=None) == datetime(2026, 3, 28, 21, 0, 15, 123456)
    for value in (stored.created_at, stored.updated_at):
        assert value.utcoffset() == timedelta(0)
        assert abs(datetime.now(UTC) - value) < timedelta(minutes=1)

    # Comparisons in SQL use the instant, whatever the zone of the bound value.
    later = datetime.now(kolkata) + timedelta(minutes=1)
    with unit_of_work(engine) as session:
        assert [
            r.id for r in crud.requests_in(session=session, states=IN_FLIGHT, updated_before=later)
        ] == [request.id]
        earlier = datetime.now(kolkata) - timedelta(minutes=1)
        assert not crud.requests_in(session=session, states=IN_FLIGHT, updated_before=earlier)


def test_a_naive_datetime_is_refused_not_silently_shifted(engine: Engine) -> None:
    request = _add(engine, _request())
    with unit_of_work(engine) as session, pytest.raises(StatementError, match="timezone"):
        crud.set_fields(session=session, request_id=request.id, approved_at=datetime(2026, 1, 1))
    assert _reload(engine, request.id).approved_at is None
