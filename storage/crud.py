"""Queries. Keyword-only functions taking a session; every state move is a compare-and-set.

They flush and never commit: the caller's ``storage.db.unit_of_work`` commits a whole step (a
state change and its event, a new request and its first events) at once, or nothing of it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, Result, delete, func, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from storage.models import (
    TERMINAL,
    Batch,
    DigestSlot,
    Event,
    HomeViewer,
    Listing,
    Offer,
    Snooze,
    State,
    Subscription,
    UpdateRequest,
    utcnow,
)


def add_listing(*, session: Session, listing: Listing, offers: Sequence[Offer]) -> None:
    session.add(listing)
    session.add_all(offers)
    session.flush()


def get_listing(*, session: Session, listing_id: str) -> Listing | None:
    return session.get(Listing, listing_id)


def get_offer(*, session: Session, key: str) -> Offer | None:
    return session.exec(select(Offer).where(Offer.key == key)).first()


def withdraw_offer(*, session: Session, key: str, reason: str) -> None:
    """Mark an offer as no longer valid (the image is gone or was updated), saying why."""
    statement = update(Offer).where(col(Offer.key) == key).values(withdrawn_reason=reason[:512])
    session.execute(statement)


def offers_on_page(*, session: Session, listing_id: str, page: int) -> list[Offer]:
    query = (
        select(Offer)
        .where(Offer.listing_id == listing_id, Offer.page == page)
        .order_by(col(Offer.position))
    )
    return list(session.exec(query))


def offers_of_listing(*, session: Session, listing_id: str) -> list[Offer]:
    query = select(Offer).where(Offer.listing_id == listing_id).order_by(col(Offer.position))
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


def _rowcount(result: Result[Any]) -> int:
    """Rows an UPDATE or DELETE touched (a CursorResult's; Result's type does not say so)."""
    return int(cast(CursorResult[Any], result).rowcount)


def purge_listings(*, session: Session, before: datetime) -> int:
    """Delete listings (and their offers) made before ``before``; the number of listings.
    Their buttons have expired by then; what was done with them stays in the event log."""
    old = select(Listing.id).where(col(Listing.created_at) < before)
    session.execute(delete(Offer).where(col(Offer.listing_id).in_(old)))
    return _rowcount(session.execute(delete(Listing).where(col(Listing.created_at) < before)))


def create_request(*, session: Session, request: UpdateRequest) -> bool:
    """Insert; False when another request for the same image is already in flight.

    The insert runs in a savepoint, so a collision undoes only itself and the caller's unit of
    work goes on (to refuse the click, say)."""
    try:
        with session.begin_nested():
            session.add(request)
    except IntegrityError:
        return False
    return True


def get_request(*, session: Session, request_id: str) -> UpdateRequest | None:
    return session.get(UpdateRequest, request_id)


@dataclass(frozen=True)
class Scope:
    """Which requests a question may see: those of one channel (and one requester), or all."""

    channel_id: str | None = None
    requested_by: str | None = None

    def apply(self, query: Any) -> Any:
        if self.channel_id is not None:
            query = query.where(col(UpdateRequest.channel_id) == self.channel_id)
        if self.requested_by is not None:
            query = query.where(col(UpdateRequest.requested_by) == self.requested_by)
        return query


SHORT_ID = 8  # the request id as users see it (UpdateRequest.short_id)


def find_request(*, session: Session, identifier: str, scope: Scope) -> UpdateRequest | None:
    """The newest request in ``scope`` whose id (in full, or as shown), new image id or source
    image id is exactly ``identifier``. Never a prefix: `c` finds nothing."""
    matches = (col(UpdateRequest.new_image_id) == identifier) | (
        col(UpdateRequest.source_image_id) == identifier
    )
    if len(identifier) == SHORT_ID:
        matches |= func.substr(col(UpdateRequest.id), 1, SHORT_ID) == identifier
    else:
        matches |= col(UpdateRequest.id) == identifier
    query = scope.apply(select(UpdateRequest).where(matches))
    return session.exec(query.order_by(col(UpdateRequest.created_at).desc())).first()


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
    held_by: str | None = None,
    held_by_nobody: bool = False,
    **values: Any,
) -> bool:
    """Move a request only if it is still in one of ``from_states``: True for the one winner.

    With ``stale_before`` the row must also be untouched since then, with ``held_by`` still
    held by that worker: the ways two pollers agree on which of them takes over an orphan;
    with ``held_by_nobody`` held by none (queued for a build slot).
    """
    now = utcnow()
    values = {"state": to.value, "updated_at": now, **values}
    if to in TERMINAL:
        values.setdefault("completed_at", now)
        values["active_key"] = None
        values["slot"] = None  # its build slot is free for the next queued request
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
    if held_by is not None:
        statement = statement.where(col(UpdateRequest.worker_id) == held_by)
    if held_by_nobody:  # queued: no process is submitting it
        statement = statement.where(col(UpdateRequest.worker_id).is_(None))
    return _rowcount(session.execute(statement)) == 1


def take_slot(*, session: Session, request_id: str, slots: int, **values: Any) -> int | None:
    """approved → submitting holding one of the ``slots`` numbered build slots: the slot's
    number, or None when all are held (or the request is no longer approved).

    The unique index on ``slot`` is the claim: of two processes taking the same slot, one
    insert fails and that one tries the next free number. (Migration 0008 gave the updates
    building before slots existed one each.)"""
    held = set(session.exec(select(UpdateRequest.slot).where(col(UpdateRequest.slot).is_not(None))))
    if len(held) >= slots:
        return None
    for number in range(1, slots + 1):
        if number in held:
            continue
        try:
            with session.begin_nested():
                moved = transition(
                    session=session,
                    request_id=request_id,
                    from_states=[State.approved],
                    to=State.submitting,
                    slot=number,
                    **values,
                )
        except IntegrityError:
            continue  # another process took this number a moment ago
        return number if moved else None
    return None


def set_fields(*, session: Session, request_id: str, **values: Any) -> None:
    """Non-state bookkeeping (message ts): never used to move the state."""
    assert "state" not in values
    statement = (
        update(UpdateRequest)
        .where(col(UpdateRequest.id) == request_id)
        .values(updated_at=utcnow(), **values)
    )
    session.execute(statement)


def requests_in(
    *,
    session: Session,
    states: Iterable[State],
    updated_before: datetime | None = None,
    scope: Scope | None = None,
) -> list[UpdateRequest]:
    query = select(UpdateRequest).where(col(UpdateRequest.state).in_([s.value for s in states]))
    if updated_before is not None:
        query = query.where(col(UpdateRequest.updated_at) < updated_before)
    query = (scope or Scope()).apply(query)
    return list(session.exec(query.order_by(col(UpdateRequest.created_at))))


def recent_requests(
    *, session: Session, limit: int, scope: Scope | None = None
) -> list[UpdateRequest]:
    query = (scope or Scope()).apply(select(UpdateRequest))
    query = query.order_by(col(UpdateRequest.created_at).desc()).limit(limit)
    return list(session.exec(query))


def followups_due(*, session: Session) -> list[UpdateRequest]:
    """Finished builds whose follow-up is not posted yet, claimed or not: the caller decides
    whether a claim it finds was abandoned (bot/domain/poller.py)."""
    query = select(UpdateRequest).where(
        col(UpdateRequest.state).in_([State.available.value, State.error.value]),
        col(UpdateRequest.followup_posted_at).is_(None),
    )
    return list(session.exec(query.order_by(col(UpdateRequest.completed_at))))


def claim_followup(
    *, session: Session, request_id: str, held_by: str | None, claimant: str
) -> bool:
    """Claim the right to post a follow-up if it is still held by ``held_by`` (None: by
    nobody): compare-and-set, so of two pollers taking over the same claim one wins."""
    holder = col(UpdateRequest.followup_claimed_by)
    statement = (
        update(UpdateRequest)
        .where(
            col(UpdateRequest.id) == request_id,
            col(UpdateRequest.followup_posted_at).is_(None),
            holder.is_(None) if held_by is None else holder == held_by,
        )
        .values(followup_claimed_at=utcnow(), followup_claimed_by=claimant)
    )
    return _rowcount(session.execute(statement)) == 1


def finish_followup(*, session: Session, request_id: str, posted: bool, held_by: str) -> bool:
    """Record the follow-up posted (or free the claim), only if ``held_by`` still holds it:
    a poller whose claim was taken over records nothing. True when it was recorded."""
    values: dict[str, Any] = (
        {"followup_posted_at": utcnow()}
        if posted
        else {"followup_claimed_at": None, "followup_claimed_by": None}
    )
    statement = (
        update(UpdateRequest)
        .where(
            col(UpdateRequest.id) == request_id,
            col(UpdateRequest.followup_claimed_by) == held_by,
            col(UpdateRequest.followup_posted_at).is_(None),
        )
        .values(values)
    )
    return _rowcount(session.execute(statement)) == 1


def slots_held_since(*, session: Session, before: datetime) -> list[UpdateRequest]:
    """Pending requests holding a build slot, created (submitted) before ``before``."""
    query = select(UpdateRequest).where(
        col(UpdateRequest.state) == State.pending.value,
        col(UpdateRequest.slot).is_not(None),
        col(UpdateRequest.submitted_at) < before,
    )
    return list(session.exec(query))


def queued_requests(*, session: Session, limit: int) -> list[UpdateRequest]:
    """Approved requests nobody is submitting (they found every build slot held), oldest
    approval first: the next to start as slots free."""
    query = (
        select(UpdateRequest)
        .where(
            col(UpdateRequest.state) == State.approved.value,
            col(UpdateRequest.worker_id).is_(None),
        )
        .order_by(col(UpdateRequest.approved_at), col(UpdateRequest.created_at))
        .limit(limit)
    )
    return list(session.exec(query))


def release_to_queue(*, session: Session, request_id: str, held_by: str) -> bool:
    """An approved request its process found no slot for: nobody holds it now, so any poller
    may start it when a slot frees (``queued_requests``)."""
    statement = (
        update(UpdateRequest)
        .where(
            col(UpdateRequest.id) == request_id,
            col(UpdateRequest.state) == State.approved.value,
            col(UpdateRequest.worker_id) == held_by,
        )
        .values(worker_id=None, updated_at=utcnow())
    )
    return _rowcount(session.execute(statement)) == 1


# --- batches: one "Approve all N" click -------------------------------------------------------


def create_batch(*, session: Session, batch: Batch) -> bool:
    """Insert; False when this listing's button for this scope already made a batch."""
    try:
        with session.begin_nested():
            session.add(batch)
    except IntegrityError:
        return False
    return True


def get_batch(*, session: Session, batch_id: str) -> Batch | None:
    return session.get(Batch, batch_id)


def batch_of(*, session: Session, listing_id: str, scope: str) -> Batch | None:
    query = select(Batch).where(Batch.listing_id == listing_id, Batch.scope == scope)
    return session.exec(query).first()


def batch_requests(*, session: Session, batch_id: str) -> list[UpdateRequest]:
    query = select(UpdateRequest).where(UpdateRequest.batch_id == batch_id)
    return list(session.exec(query.order_by(col(UpdateRequest.created_at), col(UpdateRequest.id))))


def decide_batch(
    *, session: Session, batch_id: str, from_state: str, to: str, **values: Any
) -> bool:
    """Compare-and-set a batch's state: True for the one decision that counts."""
    statement = (
        update(Batch)
        .where(col(Batch.id) == batch_id, col(Batch.state) == from_state)
        .values(state=to, decided_at=utcnow(), **values)
    )
    return _rowcount(session.execute(statement)) == 1


def set_batch_fields(*, session: Session, batch_id: str, **values: Any) -> None:
    assert "state" not in values
    session.execute(update(Batch).where(col(Batch.id) == batch_id).values(**values))


def batches_waiting(*, session: Session, before: datetime) -> list[Batch]:
    """Batches still waiting for a decision, made before ``before``."""
    query = select(Batch).where(col(Batch.state) == "requested", col(Batch.created_at) < before)
    return list(session.exec(query.order_by(col(Batch.created_at))))


def waiting_builds(*, session: Session, account_id: str, region: str) -> int:
    """Requests of an account and region approved or being submitted: images AWS does not
    show yet that will count against the region's quota once created."""
    query = select(func.count()).where(
        col(UpdateRequest.account_id) == account_id,
        col(UpdateRequest.region) == region,
        col(UpdateRequest.state).in_([State.approved.value, State.submitting.value]),
    )
    return int(session.exec(query).one())


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
    session.flush()  # now, so a refused insert fails the step it belongs to
    return event


def events(*, session: Session, request_id: str | None = None, limit: int = 100) -> list[Event]:
    query = select(Event)
    if request_id is not None:
        query = query.where(Event.request_id == request_id)
    return list(session.exec(query.order_by(col(Event.id).desc()).limit(limit)))


# --- digests: first sightings, snoozes, subscriptions, slots -----------------------------------


def _insert(session: Session, table: type) -> Any:
    """INSERT with the dialect's ON CONFLICT support (SQLite and PostgreSQL)."""
    dialect = session.get_bind().dialect.name
    return (postgresql if dialect == "postgresql" else sqlite).insert(table)


def add_snooze(*, session: Session, snooze: Snooze) -> None:
    session.add(snooze)
    session.flush()


def active_snoozes(*, session: Session, image_keys: Iterable[str]) -> dict[str, Snooze]:
    keys = set(image_keys)
    if not keys:
        return {}
    query = (
        select(Snooze)
        .where(col(Snooze.image_key).in_(keys), col(Snooze.until) > utcnow())
        .order_by(col(Snooze.until))
    )
    return {row.image_key: row for row in session.exec(query)}


def snoozed_keys(*, session: Session) -> set[str]:
    query = select(Snooze.image_key).where(col(Snooze.until) > utcnow())
    return set(session.exec(query))


def get_subscription(*, session: Session, channel_id: str) -> Subscription | None:
    return session.exec(select(Subscription).where(Subscription.channel_id == channel_id)).first()


def save_subscription(*, session: Session, subscription: Subscription) -> Subscription:
    subscription.updated_at = utcnow()
    session.add(subscription)
    session.flush()
    session.refresh(subscription)
    return subscription


def active_subscriptions(*, session: Session) -> list[Subscription]:
    query = select(Subscription).where(col(Subscription.active).is_(True))
    return list(session.exec(query.order_by(col(Subscription.id))))


def last_slot(*, session: Session, subscription_id: int) -> datetime | None:
    query = select(func.max(DigestSlot.slot_at)).where(
        DigestSlot.subscription_id == subscription_id
    )
    return session.exec(query).one()


def claim_slot(
    *,
    session: Session,
    subscription_id: int,
    slot_local: str,
    slot_at: datetime,
    state: str,
    claimed_by: str,
    detail: str | None = None,
) -> bool:
    """INSERT … ON CONFLICT DO NOTHING on (subscription, slot): True for the one claimant."""
    statement = (
        _insert(session, DigestSlot)
        .values(
            subscription_id=subscription_id,
            slot_local=slot_local,
            slot_at=slot_at,
            state=state,
            claimed_by=claimed_by,
            claimed_at=utcnow(),
            detail=detail,
        )
        .on_conflict_do_nothing(index_elements=["subscription_id", "slot_local"])
        .returning(col(DigestSlot.id))
    )
    # RETURNING, not rowcount: psycopg does not report the row count of this INSERT reliably.
    return session.execute(statement).first() is not None


def finish_slot(
    *,
    session: Session,
    subscription_id: int,
    slot_local: str,
    state: str,
    messages: int,
    detail: str | None = None,
) -> None:
    statement = (
        update(DigestSlot)
        .where(
            col(DigestSlot.subscription_id) == subscription_id,
            col(DigestSlot.slot_local) == slot_local,
        )
        .values(state=state, messages=messages, finished_at=utcnow(), detail=detail)
    )
    session.execute(statement)


def slots(*, session: Session, subscription_id: int | None = None) -> list[DigestSlot]:
    query = select(DigestSlot)
    if subscription_id is not None:
        query = query.where(DigestSlot.subscription_id == subscription_id)
    return list(session.exec(query.order_by(col(DigestSlot.slot_at))))


# --- the Home tab ---------------------------------------------------------------------------


def home_opened(*, session: Session, user_id: str) -> None:
    now = utcnow()
    statement = _insert(session, HomeViewer).values(user_id=user_id, opened_at=now)
    session.execute(
        statement.on_conflict_do_update(index_elements=["user_id"], set_={"opened_at": now})
    )


def home_viewers(*, session: Session, since: datetime, limit: int) -> list[str]:
    query = (
        select(HomeViewer.user_id)
        .where(col(HomeViewer.opened_at) >= since)
        .order_by(col(HomeViewer.opened_at).desc())
        .limit(limit)
    )
    return list(session.exec(query))
