"""Queries. Keyword-only functions taking a session; every state move is a compare-and-set."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from storage.models import IN_FLIGHT, TERMINAL, Event, Offer, State, UpdateRequest, utcnow


def add_offers(*, session: Session, offers: Sequence[Offer]) -> None:
    session.add_all(offers)
    session.commit()


def get_offer(*, session: Session, key: str) -> Offer | None:
    return session.exec(select(Offer).where(Offer.key == key)).first()


def offers_on_page(*, session: Session, listing_id: str, page: int) -> list[Offer]:
    query = (
        select(Offer)
        .where(Offer.listing_id == listing_id, Offer.page == page)
        .order_by(col(Offer.position))
    )
    return list(session.exec(query))


def listing_page_count(*, session: Session, listing_id: str) -> int:
    query = select(func.max(Offer.page)).where(Offer.listing_id == listing_id)
    return session.exec(query).one() or 0


def listing_totals(*, session: Session, listing_id: str) -> tuple[int, int]:
    """(images listed, distinct regions) of a listing."""
    query = select(func.count(), func.count(func.distinct(Offer.region))).where(
        Offer.listing_id == listing_id
    )
    total, regions = session.exec(query).one()
    return total, regions


def create_request(*, session: Session, request: UpdateRequest) -> bool:
    """Insert; False when another request for the same image is already in flight."""
    session.add(request)
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        return False
    return True


def get_request(*, session: Session, request_id: str) -> UpdateRequest | None:
    return session.get(UpdateRequest, request_id)


def find_request(*, session: Session, id_or_prefix: str) -> UpdateRequest | None:
    """By full id, id prefix (the short id users see), or new/source image id."""
    found = session.get(UpdateRequest, id_or_prefix)
    if found is not None:
        return found
    query = (
        select(UpdateRequest)
        .where(
            col(UpdateRequest.id).startswith(id_or_prefix)
            | (UpdateRequest.new_image_id == id_or_prefix)
            | (UpdateRequest.source_image_id == id_or_prefix)
        )
        .order_by(col(UpdateRequest.created_at).desc())
    )
    return session.exec(query).first()


def active_request(*, session: Session, image_key: str) -> UpdateRequest | None:
    return session.exec(select(UpdateRequest).where(UpdateRequest.active_key == image_key)).first()


def latest_requests(*, session: Session, image_keys: Iterable[str]) -> dict[str, UpdateRequest]:
    """The newest request of each image (in flight or not), keyed by account:region:image."""
    keys = set(image_keys)
    if not keys:
        return {}
    source_ids = {key.rsplit(":", 1)[1] for key in keys}
    query = (
        select(UpdateRequest)
        .where(col(UpdateRequest.source_image_id).in_(source_ids))
        .order_by(col(UpdateRequest.created_at))
    )
    latest: dict[str, UpdateRequest] = {}
    for request in session.exec(query):
        if request.image_key in keys:
            latest[request.image_key] = request
    return latest


def transition(
    *,
    session: Session,
    request_id: str,
    from_states: Iterable[State],
    to: State,
    stale_before: datetime | None = None,
    **values: Any,
) -> bool:
    """Move a request only if it is still in one of ``from_states``: True for the one winner.

    With ``stale_before`` the row must also be untouched since then: the way two pollers agree
    on which of them takes over an orphaned request.
    """
    now = utcnow()
    values = {"state": to.value, "updated_at": now, **values}
    if to in TERMINAL:
        values.setdefault("completed_at", now)
        values["active_key"] = None
    statement = (
        update(UpdateRequest)
        .where(
            col(UpdateRequest.id) == request_id,
            col(UpdateRequest.state).in_([s.value for s in from_states]),
        )
        .values(**values)
    )
    if stale_before is not None:
        statement = statement.where(col(UpdateRequest.updated_at) < stale_before)
    result = session.execute(statement)
    session.commit()
    return result.rowcount == 1


def set_fields(*, session: Session, request_id: str, **values: Any) -> None:
    """Non-state bookkeeping (message ts): never used to move the state."""
    assert "state" not in values
    statement = (
        update(UpdateRequest)
        .where(col(UpdateRequest.id) == request_id)
        .values(updated_at=utcnow(), **values)
    )
    session.execute(statement)
    session.commit()


def requests_in(
    *, session: Session, states: Iterable[State], updated_before: datetime | None = None
) -> list[UpdateRequest]:
    query = select(UpdateRequest).where(col(UpdateRequest.state).in_([s.value for s in states]))
    if updated_before is not None:
        query = query.where(col(UpdateRequest.updated_at) < updated_before)
    return list(session.exec(query.order_by(col(UpdateRequest.created_at))))


def recent_requests(*, session: Session, limit: int) -> list[UpdateRequest]:
    query = select(UpdateRequest).order_by(col(UpdateRequest.created_at).desc()).limit(limit)
    return list(session.exec(query))


def in_flight_count(*, session: Session) -> int:
    query = select(func.count()).where(col(UpdateRequest.state).in_([s.value for s in IN_FLIGHT]))
    return session.exec(query).one()


def followups_due(*, session: Session, stale_before: datetime) -> list[UpdateRequest]:
    """Finished builds whose follow-up is not posted, and not claimed by a live poller."""
    query = select(UpdateRequest).where(
        col(UpdateRequest.state).in_([State.available.value, State.error.value]),
        col(UpdateRequest.followup_posted_at).is_(None),
        col(UpdateRequest.followup_claimed_at).is_(None)
        | (col(UpdateRequest.followup_claimed_at) < stale_before),
    )
    return list(session.exec(query.order_by(col(UpdateRequest.completed_at))))


def claim_followup(*, session: Session, request_id: str, stale_before: datetime) -> bool:
    """Claim the right to post a follow-up; a claim older than ``stale_before`` is abandoned."""
    statement = (
        update(UpdateRequest)
        .where(
            col(UpdateRequest.id) == request_id,
            col(UpdateRequest.followup_posted_at).is_(None),
            col(UpdateRequest.followup_claimed_at).is_(None)
            | (col(UpdateRequest.followup_claimed_at) < stale_before),
        )
        .values(followup_claimed_at=utcnow())
    )
    result = session.execute(statement)
    session.commit()
    return result.rowcount == 1


def finish_followup(*, session: Session, request_id: str, posted: bool) -> None:
    values = {"followup_posted_at": utcnow()} if posted else {"followup_claimed_at": None}
    session.execute(update(UpdateRequest).where(col(UpdateRequest.id) == request_id).values(values))
    session.commit()


def record_event(
    *,
    session: Session,
    kind: str,
    actor: str,
    request_id: str | None = None,
    detail: dict[str, Any] | None = None,
) -> Event:
    event = Event(kind=kind, actor=actor, request_id=request_id, detail=detail or {})
    session.add(event)
    session.commit()
    return event


def events(*, session: Session, request_id: str | None = None, limit: int = 100) -> list[Event]:
    query = select(Event)
    if request_id is not None:
        query = query.where(Event.request_id == request_id)
    return list(session.exec(query.order_by(col(Event.id).desc()).limit(limit)))
