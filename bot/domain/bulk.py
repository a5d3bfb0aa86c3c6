"""Bulk approval: "Approve all N" on a listing makes one request per image it can still update,
each exactly once, under one batch shown in one message.

- The button carries an offer key (opaque, like every button) and its scope: the offer's
  account and region, or the whole listing (which is what the command's filters kept).
- Every click is checked again on the server: the clicker, the channel, the list's age, each
  image live against AWS, and each region's image count against WSIMG_IMAGE_QUOTA (a batch
  that would go over is refused with the numbers, and nothing is made).
- The batch and its requests commit in one transaction; the unique (listing, scope) of the
  batch and the one-in-flight-per-image index make a second click (another approver's, a
  retry) make nothing.
- With four eyes the click asks; one decision by a different approver approves (or rejects)
  every request of the batch at once.
- Approved requests are submitted through ``submit``: at most WSIMG_MAX_CONCURRENT_UPDATES
  build at once, the rest wait, queued, and a poller starts them as builds finish.
"""

from __future__ import annotations

import logging
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

from bot.aws.rollout import RolloutCalls
from bot.domain.approval import why_not_updatable, withdraw_offers
from bot.domain.context import Services
from bot.domain.decisions import BadReason, Clicked, NotAllowedToClose
from bot.domain.decisions import SelfApproval as SelfApproval
from bot.domain.identity import WORKER_ID
from bot.domain.listing import entries_for, listing_filters, offered_here
from bot.domain.ports import BatchView
from bot.domain.requests import (
    REASON_MAX,
    SYSTEM,
    Expired,
    NotAllowed,
    NotAllowedToRequest,
    Refused,
    StaleButton,
    batch_view,
    new_request,
    record_refusal,
    ttl,
    ttl_text,
)
from bot.domain.submit import submit
from storage import crud
from storage.db import session_scope, unit_of_work
from storage.models import (
    Batch,
    BatchState,
    Offer,
    State,
    UpdateRequest,
    utcnow,
)

log = logging.getLogger(__name__)

ALL = "all"  # the scope of a button that covers the whole listing


class NothingToApprove(Refused):
    pass


class OverQuota(Refused):
    pass


class AlreadyBatched(Refused):
    """This button already made a batch (another approver's click, a retry)."""

    def __init__(self, batch: Batch) -> None:
        self.batch = batch
        super().__init__(self.say(lambda user: user))

    def say(self, who: Callable[[str], str]) -> str:
        batch = self.batch
        return (
            f"{who(batch.created_by)} already clicked this: batch {batch.short_id}, "
            f"{batch.count} image{'s' if batch.count != 1 else ''}, {batch.state}. "
            "Nothing new was started."
        )


class BatchDecided(Refused):
    def __init__(self, batch: Batch) -> None:
        super().__init__(f"This batch is already {batch.state}; nothing was changed.")
        self.batch = batch


def scope_of(offer: Offer, whole: bool) -> str:
    return ALL if whole else f"{offer.account_id}:{offer.region}"


@dataclass(frozen=True)
class Outcome:
    view: BatchView
    left_out: int  # images of the scope that were not taken (in flight, snoozed, gone…)


def approve_all(
    services: Services,
    *,
    offer_key: str,
    whole: bool,
    confirmed: int | None,
    user_id: str,
    channel_id: str | None,
) -> Outcome:
    """A click on "Approve all N" (four eyes: "Request all N"). ``confirmed``: the N its
    confirm named (from the button): a batch is never larger than what was confirmed."""
    with session_scope(services.engine) as session:
        offer = crud.get_offer(session=session, key=offer_key)
        listing = crud.get_listing(session=session, listing_id=offer.listing_id) if offer else None
    if offer is None or listing is None or not offered_here(offer, channel_id):
        raise StaleButton()
    policy = services.policy
    four_eyes = policy.four_eyes
    if not (policy.can_request_in_bulk(user_id) if four_eyes else policy.can_approve(user_id)):
        record_refusal(services, user_id, f"batch of listing {listing.id}", "not an approver")
        if four_eyes:
            raise NotAllowedToRequest(
                "You may not request updates in bulk: only approvers and the people in "
                "WSIMG_REQUESTERS may. Ask for each image with its own Request update button, "
                "or ask an admin to add you to WSIMG_REQUESTERS."
            )
        raise NotAllowed()
    if utcnow() - offer.created_at > ttl(services):
        raise Expired(f"This list is more than {ttl_text(services)} old")
    if confirmed is None or confirmed < 1:
        raise StaleButton()  # not a button wsimg drew: it always names its count
    scope = scope_of(offer, whole)
    here = channel_id or offer.channel_id
    _refuse_if_batched(services, listing.id, scope)

    with session_scope(services.engine) as session:
        offers = crud.offers_of_listing(session=session, listing_id=listing.id)
        if scope != ALL:
            offers = [
                o for o in offers if (o.account_id, o.region) == (offer.account_id, offer.region)
            ]
        entries = entries_for(session=session, offers=offers, channel_id=here)
    if whole and not (listing.region or listing.filters) and len(_groups(offers)) > 1:
        raise StaleButton()  # an unfiltered fleet is approved a group at a time: never offered
    chosen = [entry.offer for entry in entries if entry.approvable]
    if len(chosen) > confirmed:
        raise NothingToApprove(
            f"The list changed since it was shown: {len(chosen)} images can be approved now, "
            f"not the {confirmed} you confirmed. Nothing was started. Run `/wsimg updates` "
            "again and confirm the new count."
        )
    if not chosen:
        raise NothingToApprove(
            f"Nothing to approve: each of the {len(entries)} images is already in flight, "
            "updated, snoozed or cannot be updated. Run `/wsimg updates` for a fresh list."
        )
    chosen = _recheck(services, chosen)
    if not chosen:
        raise NothingToApprove(
            "Nothing to approve: AWS no longer shows an update for any of these images. "
            "Run `/wsimg updates refresh` for a fresh list."
        )
    check_quota(services, [(o.account_id, o.region) for o in chosen])

    batch = Batch(
        id=uuid.uuid4().hex,
        listing_id=listing.id,
        scope=scope,
        scope_text=_scope_text(offer, whole, listing.region, listing_filters(listing)),
        state=(BatchState.requested if four_eyes else BatchState.approved).value,
        created_by=user_id,
        decided_by=None if four_eyes else user_id,
        decided_at=None if four_eyes else utcnow(),
        channel_id=here,
    )
    now = utcnow()
    with unit_of_work(services.engine) as session:
        if not crud.create_batch(session=session, batch=batch):
            made = 0
        else:
            made = 0
            for image in chosen:
                request = new_request(
                    image,
                    user_id=user_id,
                    channel_id=here,
                    approved=not four_eyes,
                    now=now,
                    batch_id=batch.id,
                )
                if not crud.create_request(session=session, request=request):
                    continue  # in flight already (another click, a moment ago)
                made += 1
                kinds = ("requested",) if four_eyes else ("requested", "approved")
                for kind in kinds:
                    crud.record_event(
                        session=session,
                        kind=kind,
                        actor=user_id,
                        request_id=request.id,
                        detail={
                            "image": image.image_key,
                            "name": image.image_name,
                            "batch": batch.id,
                        },
                    )
            crud.set_batch_fields(session=session, batch_id=batch.id, count=made)
            crud.record_event(
                session=session,
                kind="batch_requested" if four_eyes else "batch_approved",
                actor=user_id,
                detail={"batch": batch.id, "scope": scope, "images": made, "listing": listing.id},
            )
        if made == 0:
            session.rollback()
    if made == 0:
        _refuse_if_batched(services, listing.id, scope)
        raise NothingToApprove(
            "Nothing to approve: another click started these updates a moment ago. "
            "Run `/wsimg updates` to see them."
        )

    view = batch_view(services, batch.id)
    assert view is not None
    posted = services.notifier.announce_batch(view)
    if posted is not None:
        with unit_of_work(services.engine) as session:
            crud.set_batch_fields(
                session=session, batch_id=batch.id, channel_id=posted[0], message_ts=posted[1]
            )
            for request in view.requests:
                crud.set_fields(
                    session=session,
                    request_id=request.id,
                    channel_id=posted[0],
                    message_ts=posted[1],
                )
    elif four_eyes:
        reason = "wsimg could not post the batch in this channel"
        _close_all(services, batch.id, BatchState.cancelled, SYSTEM, reason)
        raise Refused(
            f"{reason}, so nobody could approve it; nothing was started. Invite wsimg to the "
            "channel (or use a channel it is in) and ask again."
        )
    if not four_eyes:
        _start(services, view.requests)
    final = batch_view(services, batch.id)
    assert final is not None
    services.notifier.refresh_batch(final)
    return Outcome(view=final, left_out=len(entries) - made)


def confirm(services: Services, *, batch_id: str, user_id: str, message: Clicked) -> BatchView:
    """Four eyes: a different approver approves every request of the batch in one decision."""
    batch = _open_batch(services, batch_id, message)
    policy = services.policy
    if not policy.can_approve(user_id):
        record_refusal(services, user_id, f"batch {batch.id}", "not an approver")
        raise NotAllowed()
    if user_id == batch.created_by:
        record_refusal(services, user_id, f"batch {batch.id}", "four eyes: the requester")
        raise SelfApproval()
    with session_scope(services.engine) as session:
        waiting = [
            r
            for r in crud.batch_requests(session=session, batch_id=batch.id)
            if r.state == State.requested
        ]
    by_key = {r.image_key: r for r in waiting}
    live = {
        o.image_key for o in _recheck(services, [_as_offer(r) for r in waiting], withdraw=False)
    }
    keep = [r for r in waiting if r.image_key in live]
    if not keep:
        reason = "AWS no longer shows an update for any of its images"
        _close_all(services, batch.id, BatchState.rejected, SYSTEM, reason)
        raise NothingToApprove(f"Nothing was started: {reason}. Run `/wsimg updates refresh`.")
    check_quota(services, [(r.account_id, r.region) for r in keep])
    now = utcnow()
    with unit_of_work(services.engine) as session:
        if not crud.decide_batch(
            session=session,
            batch_id=batch.id,
            from_state=BatchState.requested.value,
            to=BatchState.approved.value,
            decided_by=user_id,
        ):
            raise BatchDecided(_reload(services, batch.id))
        for key, request in by_key.items():
            approved = key in live
            moved = crud.transition(
                session=session,
                request_id=request.id,
                from_states=[State.requested],
                to=State.approved if approved else State.rejected,
                **(
                    {"approved_by": user_id, "approved_at": now, "worker_id": WORKER_ID}
                    if approved
                    else {
                        "closed_by": None,
                        "close_reason": "AWS no longer shows an update for this image",
                    }
                ),
            )
            if moved:
                crud.record_event(
                    session=session,
                    kind="approved" if approved else "rejected",
                    actor=user_id if approved else SYSTEM,
                    request_id=request.id,
                    detail={"image": key, "requested_by": request.requested_by, "batch": batch.id},
                )
        crud.record_event(
            session=session,
            kind="batch_approved",
            actor=user_id,
            detail={"batch": batch.id, "images": len(keep), "requested_by": batch.created_by},
        )
    view = batch_view(services, batch.id)
    assert view is not None
    services.notifier.refresh_batch(view)
    _start(services, [r for r in view.requests if r.state == State.approved])
    final = batch_view(services, batch.id)
    assert final is not None
    services.notifier.refresh_batch(final)
    return final


def stop_queued(services: Services, *, batch_id: str, user_id: str, message: Clicked) -> BatchView:
    """Cancel the requests of an approved batch still waiting for a build slot (those building
    go on: their image is already being made). Its creator or an approver may."""
    with session_scope(services.engine) as session:
        batch = crud.get_batch(session=session, batch_id=batch_id) if batch_id else None
    if batch is None or message != (batch.channel_id, batch.message_ts):
        raise StaleButton()
    if not (services.policy.can_approve(user_id) or user_id == batch.created_by):
        record_refusal(services, user_id, f"batch {batch.id}", "may not stop")
        raise NotAllowedToClose(cancel=True)
    reason = "stopped before it started"
    stopped = 0
    with unit_of_work(services.engine) as session:
        for request in crud.batch_requests(session=session, batch_id=batch.id):
            # Only the queued (held by nobody): one a process is submitting is left to it.
            if request.state != State.approved or request.worker_id is not None:
                continue
            if crud.transition(
                session=session,
                request_id=request.id,
                from_states=[State.approved],
                to=State.cancelled,
                held_by_nobody=True,
                closed_by=user_id,
                close_reason=reason,
            ):
                stopped += 1
                crud.record_event(
                    session=session,
                    kind="cancelled",
                    actor=user_id,
                    request_id=request.id,
                    detail={"image": request.image_key, "reason": reason, "batch": batch.id},
                )
        crud.record_event(
            session=session,
            kind="batch_stopped",
            actor=user_id,
            detail={"batch": batch.id, "images": stopped},
        )
    if not stopped:
        raise NothingToApprove("Nothing was waiting to start: every update of it has begun.")
    view = batch_view(services, batch.id)
    assert view is not None
    services.notifier.refresh_batch(view)
    return view


def is_batch(services: Services, identifier: str) -> bool:
    with session_scope(services.engine) as session:
        return bool(identifier) and crud.get_batch(session=session, batch_id=identifier) is not None


def may_close(
    services: Services, *, batch_id: str, user_id: str, message: Clicked | None, cancel: bool
) -> Batch:
    """Whether this click may reject (or cancel) the whole batch: asked before the modal opens
    and again when it is submitted."""
    batch = _open_batch(services, batch_id, message)
    if not (services.policy.can_approve(user_id) or (cancel and user_id == batch.created_by)):
        record_refusal(
            services, user_id, f"batch {batch.id}", "may not cancel" if cancel else "may not reject"
        )
        raise NotAllowedToClose(cancel)
    return batch


def close(
    services: Services,
    *,
    batch_id: str,
    user_id: str,
    cancel: bool,
    reason: str,
    refresh: bool = True,
) -> BatchView:
    """Reject (or cancel) every request of the batch still waiting, with the modal's reason."""
    reason = " ".join(reason.split())
    if len(reason) < 3:
        raise BadReason("Say in a few words why, so the others know.")
    if len(reason) > REASON_MAX:
        raise BadReason(f"Keep the reason under {REASON_MAX} characters.")
    may_close(services, batch_id=batch_id, user_id=user_id, message=None, cancel=cancel)
    to = BatchState.cancelled if cancel else BatchState.rejected
    if not _close_all(services, batch_id, to, user_id, reason, refresh=refresh):
        raise BatchDecided(_reload(services, batch_id))
    view = batch_view(services, batch_id)
    assert view is not None
    return view


def show_batch(services: Services, *, batch_id: str) -> None:
    view = batch_view(services, batch_id)
    if view is not None:
        services.notifier.refresh_batch(view)


def check_quota(services: Services, targets: list[tuple[str, str]]) -> None:
    """Refuse, with the numbers, a batch that would take an account and region over
    WSIMG_IMAGE_QUOTA: the images AWS shows there now (building ones included), those approved
    but not created yet, and this batch's."""
    wanted: dict[tuple[str, str], int] = defaultdict(int)
    for target in targets:
        wanted[target] += 1
    quota = services.settings.image_quota
    calls = RolloutCalls(services.gateway)
    over = []
    for (account_id, region), adding in sorted(wanted.items()):
        existing = calls.image_count(account_id=account_id, region=region)
        with session_scope(services.engine) as session:
            waiting = crud.waiting_builds(session=session, account_id=account_id, region=region)
        if existing + waiting + adding > quota:
            room = max(quota - existing - waiting, 0)
            waiting_text = f" and {waiting} approved but not created yet" if waiting else ""
            over.append(
                f"{region} in account {account_id} holds {existing} images{waiting_text}; "
                f"these {adding} updates would make {existing + waiting + adding}, over its quota "
                f"of {quota} (room for {room})"
            )
    if over:
        raise OverQuota(
            "Nothing was started: " + "; ".join(over) + ". Each update adds an image and keeps "
            "its source. Delete images you no longer need, or ask AWS for a higher quota and "
            "set WSIMG_IMAGE_QUOTA, or approve fewer (narrow the listing with "
            "`/wsimg updates [region] [account] [name-glob]`)."
        )


# --- the parts ------------------------------------------------------------------------------


def _refuse_if_batched(services: Services, listing_id: str, scope: str) -> None:
    with session_scope(services.engine) as session:
        existing = crud.batch_of(session=session, listing_id=listing_id, scope=scope)
    if existing is not None:
        raise AlreadyBatched(existing)


def _scope_text(offer: Offer, whole: bool, region: str | None, filters: str) -> str:
    if not whole:
        return f"{offer.region} · account {offer.account_id}"
    where = f" in {region}" if region else ""
    return f"every image listed{' ' + filters if filters else ''}{where}"


def _groups(offers: list[Offer]) -> set[tuple[str, str]]:
    return {(offer.account_id, offer.region) for offer in offers}


def _as_offer(request: UpdateRequest) -> Offer:
    return Offer(
        key="",
        listing_id="",
        account_id=request.account_id,
        region=request.region,
        image_id=request.source_image_id,
        image_name=request.source_image_name,
        listed_by=request.requested_by,
    )


def _recheck(services: Services, offers: list[Offer], *, withdraw: bool = True) -> list[Offer]:
    """The offers AWS still shows with an update that wsimg can make: one
    DescribeWorkspaceImages per 25 images of an account and region. The others are withdrawn
    from the listing (with ``withdraw``), saying why."""
    groups: dict[tuple[str, str], list[Offer]] = defaultdict(list)
    for offer in offers:
        groups[(offer.account_id, offer.region)].append(offer)
    keep: list[Offer] = []
    gone: list[tuple[Offer, str]] = []
    for (account_id, region), members in groups.items():
        found = {
            image.image_id: image
            for image in services.gateway.describe_images(
                account_id=account_id, region=region, image_ids=[o.image_id for o in members]
            )
        }
        for offer in members:
            reason = why_not_updatable(
                found.get(offer.image_id),
                name=offer.image_name,
                image_id=offer.image_id,
                region=region,
            )
            if reason is None:
                keep.append(offer)
            else:
                gone.append((offer, reason))
    if withdraw and gone:
        withdraw_offers(services, gone)
    return keep


def _start(services: Services, requests: list[UpdateRequest]) -> None:
    """Submit each approved request: up to the free build slots start now, the rest queue."""
    for request in requests:
        try:
            submit(services, request_id=request.id)
        except Exception:  # logged; the poller resumes it (its worker is this process)
            log.exception("submitting request %s of a batch failed", request.short_id)


def _open_batch(services: Services, batch_id: str, message: Clicked | None) -> Batch:
    with session_scope(services.engine) as session:
        batch = crud.get_batch(session=session, batch_id=batch_id) if batch_id else None
    if batch is None:
        raise StaleButton()
    if message is not None and message != (batch.channel_id, batch.message_ts):
        raise StaleButton()  # not a click on the batch's own message: forged or pasted
    if batch.state != BatchState.requested:
        show_batch(services, batch_id=batch.id)
        raise BatchDecided(_reload(services, batch.id))
    if utcnow() - batch.created_at > ttl(services):
        _close_all(
            services,
            batch.id,
            BatchState.expired,
            SYSTEM,
            f"nobody approved it within {ttl_text(services)}",
        )
        raise Expired(f"This batch is more than {ttl_text(services)} old")
    return batch


def _reload(services: Services, batch_id: str) -> Batch:
    with session_scope(services.engine) as session:
        batch = crud.get_batch(session=session, batch_id=batch_id)
    assert batch is not None
    return batch


def expire_batches(services: Services) -> int:
    """Batches nobody decided within the time to live end as expired, all their requests with
    them (the poller's job, beside ``decisions.expire_requests``)."""
    with session_scope(services.engine) as session:
        waiting = crud.batches_waiting(session=session, before=utcnow() - ttl(services))
    reason = f"nobody approved it within {ttl_text(services)}"
    return sum(
        _close_all(services, batch.id, BatchState.expired, SYSTEM, reason) for batch in waiting
    )


def _close_all(
    services: Services,
    batch_id: str,
    to: BatchState,
    actor: str,
    reason: str,
    *,
    refresh: bool = True,
) -> bool:
    """requested → rejected | cancelled | expired: the batch and every request of it still
    waiting, in one transaction. False if the batch had been decided already."""
    request_state = State(to.value)
    with unit_of_work(services.engine) as session:
        if not crud.decide_batch(
            session=session,
            batch_id=batch_id,
            from_state=BatchState.requested.value,
            to=to.value,
            decided_by=actor if actor != SYSTEM else None,
            close_reason=reason[:REASON_MAX],
        ):
            return False
        for request in crud.batch_requests(session=session, batch_id=batch_id):
            if crud.transition(
                session=session,
                request_id=request.id,
                from_states=[State.requested],
                to=request_state,
                closed_by=actor if actor != SYSTEM else None,
                close_reason=reason[:REASON_MAX],
            ):
                crud.record_event(
                    session=session,
                    kind=request_state.value,
                    actor=actor,
                    request_id=request.id,
                    detail={"image": request.image_key, "reason": reason, "batch": batch_id},
                )
        crud.record_event(
            session=session,
            kind=f"batch_{to.value}",
            actor=actor,
            detail={"batch": batch_id, "reason": reason},
        )
    if refresh:
        show_batch(services, batch_id=batch_id)
    return True
