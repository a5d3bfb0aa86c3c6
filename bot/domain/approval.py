"""An Approve (or Request update) click: re-checked against policy, the database and AWS, then
a request created with its first events and, without four eyes, submitted at once."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass

from bot.aws.gateway import Image
from bot.domain.context import Services
from bot.domain.listing import load_page, offered_here
from bot.domain.pages import ListingPage
from bot.domain.requests import (
    SYSTEM,
    AlreadyInFlight,
    AlreadyUpdated,
    Expired,
    NotAllowed,
    NotAllowedToRequest,
    NotUpdatable,
    Refused,
    StaleButton,
    close_request,
    expire_request,
    new_request,
    record_refusal,
    reload_request,
    ttl,
    ttl_text,
)
from bot.domain.submit import submit
from storage import crud
from storage.db import session_scope, unit_of_work
from storage.models import (
    Offer,
    State,
    UpdateRequest,
    utcnow,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Approval:
    request: UpdateRequest
    page: ListingPage


def approve(
    services: Services, *, offer_key: str, user_id: str, channel_id: str | None
) -> Approval:
    """A click on a listing's Approve button.

    Four-eyes off: an approver's click creates the request, announces it and submits it
    exactly once. Four-eyes on: a requester's (or approver's) click creates the request and
    announces it with Approve / Reject / Cancel buttons, for a different approver to decide.
    Every refusal says why, and where it changes what the listing should show, carries the
    page to show instead (``Refused.page``).
    """
    with session_scope(services.engine) as session:
        offer = crud.get_offer(session=session, key=offer_key)
    if offer is None or not offered_here(offer, channel_id):
        raise StaleButton()
    policy = services.policy
    allowed = policy.can_request(user_id) if policy.four_eyes else policy.can_approve(user_id)
    if not allowed:
        record_refusal(services, user_id, offer.image_key, "not an approver")
        raise NotAllowedToRequest() if policy.four_eyes else NotAllowed()
    if utcnow() - offer.created_at > ttl(services):
        raise Expired(f"This list is more than {ttl_text(services)} old")
    if offer.not_updatable_reason:
        raise NotUpdatable(offer.not_updatable_reason)
    page = functools.partial(load_page, services, listing_id=offer.listing_id, page=offer.page)
    here = channel_id or offer.channel_id
    _refuse_if_taken(services, offer.image_key, page, here)
    _recheck_offer(services, offer, page)

    direct = not policy.four_eyes
    request = new_request(offer, user_id=user_id, channel_id=here, approved=direct, now=utcnow())
    # The request and its first events commit together: no request without its record.
    with unit_of_work(services.engine) as session:
        created = crud.create_request(session=session, request=request)
        for kind in (("requested", "approved") if direct else ("requested",)) if created else ():
            crud.record_event(
                session=session,
                kind=kind,
                actor=user_id,
                request_id=request.id,
                detail={"image": offer.image_key, "name": offer.image_name},
            )
    if not created:
        _refuse_if_taken(services, offer.image_key, page, here)
        raise StaleButton()  # the other request ended in between: a fresh list will tell

    posted = services.notifier.announce(request)
    if posted is not None:
        with unit_of_work(services.engine) as session:
            crud.set_fields(
                session=session, request_id=request.id, channel_id=posted[0], message_ts=posted[1]
            )
    elif not direct:
        # Its Approve button lives on the announcement: without one, nobody could decide it.
        reason = "wsimg could not post the request in this channel"
        close_request(services, request, State.cancelled, SYSTEM, reason)
        raise Refused(
            f"{reason}, so nobody could approve it; nothing was started. Invite wsimg to the "
            "channel (or use a channel it is in) and ask again."
        )
    final = (
        submit(services, request_id=request.id) if direct else reload_request(services, request.id)
    )
    return Approval(request=final, page=page())


def _refuse_if_taken(
    services: Services, image_key: str, page: Callable[[], ListingPage], here: str | None
) -> None:
    """An update of this image already in flight, or already done: refuse, and show it (who
    did it only when it was done in this channel, ``here``)."""
    with session_scope(services.engine) as session:
        active = crud.active_request(session=session, image_key=image_key)
        latest = crud.latest_requests(session=session, image_keys=[image_key]).get(image_key)
    # The page is read in a session of its own, after this one has ended (on SQLite each
    # transaction holds the write lock: a second one inside it would wait on itself).
    if (
        active is not None
        and active.state == State.requested
        and utcnow() - active.created_at > ttl(services)
        and expire_request(services, active)
    ):
        active = None  # nobody decided it in time: it no longer holds the image
    if active is not None:
        raise AlreadyInFlight(active, page=page(), foreign=active.channel_id != here)
    if latest is not None and latest.state == State.available:
        raise AlreadyUpdated(latest, page=page())


def _recheck_offer(services: Services, offer: Offer, page: Callable[[], ListingPage]) -> None:
    """Ask AWS again: the image may be gone, or already updated, since the list was made."""
    reason = recheck_image(
        services,
        account_id=offer.account_id,
        region=offer.region,
        image_id=offer.image_id,
        name=offer.image_name,
    )
    if reason is None:
        return
    withdraw_offers(services, [(offer, reason)])
    raise NotUpdatable(reason, page=page())


def withdraw_offers(services: Services, gone: list[tuple[Offer, str]]) -> None:
    """Mark offers as no longer offered, each with why, and record it."""
    with unit_of_work(services.engine) as session:
        for offer, reason in gone:
            crud.withdraw_offer(session=session, key=offer.key, reason=reason)
            crud.record_event(
                session=session,
                kind="offer_withdrawn",
                actor=SYSTEM,
                detail={"image": offer.image_key, "reason": reason},
            )


def recheck_image(
    services: Services, *, account_id: str, region: str, image_id: str, name: str
) -> str | None:
    """Why the image can no longer be updated, from a fresh DescribeWorkspaceImages; or None."""
    found = services.gateway.describe_images(
        account_id=account_id, region=region, image_ids=[image_id]
    )
    image = next((i for i in found if i.image_id == image_id), None)
    return why_not_updatable(image, name=name, image_id=image_id, region=region)


def why_not_updatable(image: Image | None, *, name: str, image_id: str, region: str) -> str | None:
    """Why ``image`` (None: not found) can no longer be updated by wsimg; None if it can."""
    if image is None:
        return f"{name} ({image_id}) no longer exists in {region}."
    if not image.update_available:
        return (
            f"{name} ({image_id}) has no WorkSpaces update available any more: it has been "
            "updated, or AWS withdrew the update."
        )
    return image.not_updatable_reason
