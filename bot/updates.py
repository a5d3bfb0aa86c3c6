"""The update flow: list images with updates, approve one, submit it exactly once, follow it.

Every state move is a compare-and-set in storage.crud.transition, so two clicks, two processes
or a Slack retry can never both move a request. A request is created with ``active_key`` set,
and the unique index on it allows one in-flight update per source image.
"""

from __future__ import annotations

import functools
import logging
import secrets
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import groupby
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session

from bot import blocks
from bot.errors import AwsError, WsimgError
from bot.gateway import Image
from bot.naming import update_tags, updated_image_description, updated_image_name
from bot.notify import Delivery
from bot.services import Services
from bot.worker import WORKER_ID, is_dead_here
from storage import crud
from storage.db import session_scope, unit_of_work
from storage.models import (
    IN_FLIGHT,
    Event,
    Listing,
    Offer,
    Snooze,
    State,
    UpdateRequest,
    image_key,
    utcnow,
)

log = logging.getLogger(__name__)

# A request left in `approved` or `submitting` longer than this is taken to be orphaned by a
# process that died. It must outlast the slowest call the gateway can make: 5 attempts x
# (5 s connect + 30 s read timeouts) plus at most 20 s back-off between them, about 4.5
# minutes, after an STS AssumeRole bounded the same way.
ORPHAN_AFTER = timedelta(minutes=15)
# Describe can miss an image created a moment ago; only after this is it taken as gone.
NOT_FOUND_GRACE = timedelta(minutes=5)
NAME_LOOKUPS, NAME_LOOKUP_PAUSE = 3, 2.0
SYSTEM = "wsimg"


class Refused(WsimgError):
    """A click that changes nothing. ``page``: the listing as it should now be shown."""

    def __init__(
        self, message: str, *, page: ListingPage | None = None, mrkdwn: str | None = None
    ) -> None:
        super().__init__(message, mrkdwn=mrkdwn)
        self.page = page


class NotAllowed(Refused):
    def __init__(self) -> None:
        super().__init__(
            "You may not approve WorkSpaces image updates. Ask an admin to add your Slack user "
            "or one of your user groups to WSIMG_APPROVERS."
        )


class NotAllowedToRequest(Refused):
    def __init__(self) -> None:
        super().__init__(
            "You may not request WorkSpaces image updates. Ask an admin to add your Slack user "
            "or one of your user groups to WSIMG_REQUESTERS."
        )


class StaleButton(Refused):
    def __init__(self) -> None:
        super().__init__(
            "That button is no longer valid. Run `/wsimg updates` again for a fresh list."
        )


class Expired(Refused):
    def __init__(self, what: str) -> None:
        super().__init__(
            f"{what} and has expired: nothing was started. Run `/wsimg updates` again."
        )


class AlreadyInFlight(Refused):
    def __init__(
        self, request: UpdateRequest, *, page: ListingPage | None = None, foreign: bool = False
    ) -> None:
        def say(name: str, who: Callable[[str], str]) -> str:
            if foreign:  # who asked and decided in another channel stays there
                how = f"{request.state}, asked for in another channel"
            elif request.state == State.requested:
                how = f"waiting for approval (requested by {who(request.requested_by)})"
            else:
                approver = who(request.approved_by or request.requested_by)
                how = f"{request.state}, approved by {approver}"
            return (
                f"An update of {name} is already in flight: {how}, request "
                f"{request.short_id}. Nothing new was started."
            )

        super().__init__(
            say(request.source_image_name, lambda user: user),
            page=page,
            mrkdwn=say(blocks.escape(request.source_image_name), lambda user: f"<@{user}>"),
        )
        self.request = request


class AlreadyUpdated(Refused):
    def __init__(self, request: UpdateRequest, *, page: ListingPage | None = None) -> None:
        super().__init__(
            f"{request.source_image_name} was already updated: {request.new_image_id} "
            f"(request {request.short_id}). Nothing new was started.",
            page=page,
        )
        self.request = request


class NotUpdatable(Refused):
    pass


class UnknownRegion(WsimgError):
    pass


class NotFound(WsimgError):
    pass


@dataclass(frozen=True)
class Entry:
    offer: Offer
    request: UpdateRequest | None  # the newest request for this image, if any
    snooze: Snooze | None = None  # an active snooze
    first_seen: datetime | None = None  # when wsimg first saw this update available
    # The request was made in another channel: what was said there (who, why) stays there.
    foreign: bool = False


@dataclass(frozen=True)
class ListingPage:
    listing: Listing
    page: int
    pages: int
    total_images: int
    total_regions: int
    entries: list[Entry]
    four_eyes: bool = False  # a click asks for the update; another approver approves it

    @property
    def failures(self) -> list[str]:
        return self.listing.failures

    @property
    def region(self) -> str | None:
        return self.listing.region


def check_region(services: Services, region: str | None) -> None:
    if region is not None and region not in services.settings.regions:
        configured = ", ".join(services.settings.regions) or "none"
        raise UnknownRegion(
            f"`{region}` is not one of the configured regions ({configured}). "
            "Set WSIMG_REGIONS to add it."
        )


def list_updates(
    services: Services, *, user_id: str, channel_id: str | None, region: str | None = None
) -> ListingPage:
    """Every image with an update available, in every configured region and account."""
    check_region(services, region)
    listing = make_listing(
        services, kind="updates", user_id=user_id, channel_id=channel_id, region=region
    )
    return load_page(services, listing_id=listing.id, page=1)


def make_listing(
    services: Services,
    *,
    kind: str,
    user_id: str,
    channel_id: str | None,
    region: str | None = None,
    skip: Callable[[Image], bool] = lambda image: False,
) -> Listing:
    """Ask AWS, remember what it said (offers, first sightings), return the stored listing."""
    found = services.gateway.list_images(region=region)
    images = [image for image in found.images if image.update_available and not skip(image)]
    listing = Listing(
        id=uuid.uuid4().hex,
        kind=kind,
        created_by=user_id,
        channel_id=channel_id,
        region=region,
        failures=[
            f"{failure.target.region} ({failure.target.account_id}): {failure.error.user_message}"
            for failure in found.failures
        ],
    )
    pages = blocks.assign_pages([(image.account_id, image.region) for image in images])
    offers = [
        _offer(image, listing=listing, page=page, position=n)
        for n, (image, page) in enumerate(zip(images, pages, strict=True))
    ]
    with unit_of_work(services.engine) as session:
        crud.add_listing(session=session, listing=listing, offers=offers)
        crud.record_sightings(
            session=session,
            waiting=[_key(i) for i in found.images if i.update_available],
            current=[_key(i) for i in found.images if not i.update_available],
        )
        crud.record_event(
            session=session,
            kind="listed",
            actor=user_id,
            detail={
                "listing": listing.id,
                "kind": kind,
                "images": len(offers),
                "region": region,
                "failures": listing.failures,
            },
        )
    return listing


def _key(image: Image) -> str:
    return image_key(image.account_id, image.region, image.image_id)


def _offer(image: Image, *, listing: Listing, page: int, position: int) -> Offer:
    return Offer(
        key=secrets.token_urlsafe(18),
        listing_id=listing.id,
        page=page,
        position=position,
        account_id=image.account_id,
        region=image.region,
        image_id=image.image_id,
        image_name=image.name,
        platform=image.platform,
        update_description=image.update_description,
        not_updatable_reason=image.not_updatable_reason,
        listed_by=listing.created_by,
        channel_id=listing.channel_id,
    )


def load_page(services: Services, *, listing_id: str, page: int) -> ListingPage:
    with session_scope(services.engine) as session:
        listing = crud.get_listing(session=session, listing_id=listing_id)
        if listing is None:
            raise StaleButton()
        pages = crud.listing_page_count(session=session, listing_id=listing_id)
        page = min(max(page, 1), max(pages, 1))
        offers = crud.offers_on_page(session=session, listing_id=listing_id, page=page)
        entries = entries_for(session=session, offers=offers, channel_id=listing.channel_id)
        total, regions = crud.listing_totals(session=session, listing_id=listing_id)
    return ListingPage(
        listing=listing,
        page=page,
        pages=pages,
        total_images=total,
        total_regions=regions,
        entries=entries,
        four_eyes=services.settings.four_eyes,
    )


def entries_for(
    *, session: Session, offers: Sequence[Offer], channel_id: str | None
) -> list[Entry]:
    """The offers with what wsimg knows of each image, as seen from ``channel_id``."""
    keys = [offer.image_key for offer in offers]
    latest = crud.latest_requests(session=session, image_keys=keys)
    snoozes = crud.active_snoozes(session=session, image_keys=keys)
    seen = crud.first_sightings(session=session, image_keys=keys)
    entries = []
    for offer in offers:
        request = latest.get(offer.image_key)
        entries.append(
            Entry(
                offer=offer,
                request=request,
                snooze=snoozes.get(offer.image_key),
                first_seen=seen.get(offer.image_key),
                foreign=request is not None and request.channel_id != channel_id,
            )
        )
    return entries


def page_for_key(services: Services, *, key: str, page: int | None = None) -> ListingPage:
    """A page of the listing that the offer ``key`` belongs to (its own page by default)."""
    with session_scope(services.engine) as session:
        offer = crud.get_offer(session=session, key=key)
    if offer is None:
        raise StaleButton()
    return load_page(services, listing_id=offer.listing_id, page=page or offer.page)


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
    if offer is None:
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

    now = utcnow()
    direct = not policy.four_eyes
    request = UpdateRequest(
        id=uuid.uuid4().hex,
        state=(State.approved if direct else State.requested).value,
        active_key=offer.image_key,
        account_id=offer.account_id,
        region=offer.region,
        source_image_id=offer.image_id,
        source_image_name=offer.image_name,
        update_description=offer.update_description,
        requested_by=user_id,
        approved_by=user_id if direct else None,
        approved_at=now if direct else None,
        worker_id=WORKER_ID,
        channel_id=here,
        offer_key=offer.key,
    )
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


def purge_listings(services: Services) -> int:
    """Listings and offers older than the approval TTL go: their buttons answer "expired" by
    then, and a flood of `/wsimg updates` must not grow the database without bound. Events
    stay (the log is append-only)."""
    with unit_of_work(services.engine) as session:
        return crud.purge_listings(session=session, before=utcnow() - ttl(services))


def ttl(services: Services) -> timedelta:
    return timedelta(hours=services.settings.approval_ttl_hours)


def ttl_text(services: Services) -> str:
    hours = services.settings.approval_ttl_hours
    return f"{hours} hour{'s' if hours != 1 else ''}"


def record_refusal(
    services: Services, user_id: str, image: str, reason: str, request_id: str | None = None
) -> None:
    with unit_of_work(services.engine) as session:
        crud.record_event(
            session=session,
            kind="approval_refused",
            actor=user_id,
            request_id=request_id,
            detail={"image": image, "reason": reason},
        )


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


def expire_request(services: Services, request: UpdateRequest) -> int:
    """A request nobody decided in time ends as expired (and frees its image)."""
    reason = f"nobody approved it within {ttl_text(services)}"
    return int(close_request(services, request, State.expired, SYSTEM, reason))


def move(
    services: Services,
    request_id: str,
    *,
    from_states: Sequence[State],
    to: State,
    event: str,
    actor: str,
    detail: dict[str, Any],
    **values: Any,
) -> bool:
    """Compare-and-set the request (``values``: crud.transition's conditions and fields) and,
    only if it moved, record ``event`` in the same transaction. False when it had moved on."""
    with unit_of_work(services.engine) as session:
        moved = crud.transition(
            session=session, request_id=request_id, from_states=from_states, to=to, **values
        )
        if moved:
            crud.record_event(
                session=session, kind=event, actor=actor, request_id=request_id, detail=detail
            )
    return moved


def close_request(
    services: Services,
    request: UpdateRequest,
    to: State,
    actor: str,
    reason: str,
    *,
    refresh: bool = True,
) -> bool:
    """requested → rejected | cancelled | expired, with who and why; False if it had moved."""
    moved = move(
        services,
        request.id,
        from_states=[State.requested],
        to=to,
        event=to.value,
        actor=actor,
        detail={"image": request.image_key, "reason": reason},
        closed_by=actor if actor != SYSTEM else None,
        close_reason=reason[: blocks.REASON_MAX],
    )
    if moved and refresh:
        services.notifier.refresh(reload_request(services, request.id))
    return moved


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
    with unit_of_work(services.engine) as session:
        crud.withdraw_offer(session=session, key=offer.key, reason=reason)
        crud.record_event(
            session=session,
            kind="offer_withdrawn",
            actor=SYSTEM,
            detail={"image": offer.image_key, "reason": reason},
        )
    raise NotUpdatable(reason, page=page())


def recheck_image(
    services: Services, *, account_id: str, region: str, image_id: str, name: str
) -> str | None:
    """Why the image can no longer be updated, from a fresh DescribeWorkspaceImages; or None."""
    found = services.gateway.describe_images(
        account_id=account_id, region=region, image_ids=[image_id]
    )
    image = next((i for i in found if i.image_id == image_id), None)
    if image is None:
        return f"{name} ({image_id}) no longer exists in {region}."
    if not image.update_available:
        return (
            f"{name} ({image_id}) has no WorkSpaces update available any more: it has been "
            "updated, or AWS withdrew the update."
        )
    return image.not_updatable_reason


def submit(services: Services, *, request_id: str) -> UpdateRequest:
    """approved → submitting → pending (or failed): at most one winner calls AWS."""
    request = reload_request(services, request_id)
    name = updated_image_name(request.source_image_name, request.id, request.created_at.date())
    if not move(
        services,
        request_id,
        from_states=[State.approved],
        to=State.submitting,
        event="submitting",
        actor=SYSTEM,
        detail={"name": name},
        new_image_name=name,
        submitted_at=utcnow(),
        worker_id=WORKER_ID,
    ):
        return reload_request(services, request_id)
    return _create(services, request_id=request_id)


def _create(services: Services, *, request_id: str) -> UpdateRequest:
    """Call CreateUpdatedWorkspaceImage for a request in `submitting` and record the outcome."""
    request = reload_request(services, request_id)
    assert request.new_image_name is not None
    tags = update_tags(
        request_id=request.id,
        source_image_id=request.source_image_id,
        requested_by=request.requested_by,
        approved_by=request.approved_by,
    )
    try:
        new_image_id = services.gateway.create_updated_image(
            account_id=request.account_id,
            region=request.region,
            source_image_id=request.source_image_id,
            name=request.new_image_name,
            description=updated_image_description(
                request.source_image_name, request.source_image_id, request.id
            ),
            tags=tags,
        )
        how = "created"
    except AwsError as exc:
        found = _already_created(services, request, exc)
        if found is None:
            return _fail(services, request, exc)
        new_image_id, how = found, "found_existing"
    moved = move(
        services,
        request.id,
        from_states=[State.submitting],
        to=State.pending,
        event=how,
        actor=SYSTEM,
        detail={"new_image_id": new_image_id, "name": request.new_image_name},
        new_image_id=new_image_id,
    )
    if not moved:  # another process settled the row meanwhile: keep what AWS said on record
        log.warning(
            "request %s: %s %s, but the request had moved on", request.short_id, how, new_image_id
        )
        _event(services, request.id, f"{how}_late", {"new_image_id": new_image_id})
    request = reload_request(services, request_id)
    if moved:
        services.notifier.refresh(request)
    return request


def _already_created(services: Services, request: UpdateRequest, exc: AwsError) -> str | None:
    """ResourceAlreadyExists for our own deterministic Name means an earlier try got through."""
    if exc.code != "ResourceAlreadyExists" or request.new_image_name is None:
        return None
    # Describe can lag a moment behind a create: look a few times before calling it a failure.
    for attempt in range(NAME_LOOKUPS):
        if attempt:
            time.sleep(NAME_LOOKUP_PAUSE)
        image = services.gateway.find_owned_image_by_name(
            account_id=request.account_id, region=request.region, name=request.new_image_name
        )
        if image is not None:
            return image.image_id
    return None


def _fail(services: Services, request: UpdateRequest, exc: AwsError) -> UpdateRequest:
    moved = move(  # if not, another process settled the request; its record stands
        services,
        request.id,
        from_states=[State.submitting],
        to=State.failed,
        event="api_error",
        actor=SYSTEM,
        detail={"code": exc.code, "message": exc.aws_message, "action": exc.action},
        error_code=exc.code,
        error_message=exc.user_message,
    )
    request = reload_request(services, request.id)
    if moved:
        services.notifier.refresh(request)
    return request


def reload_request(services: Services, request_id: str) -> UpdateRequest:
    with session_scope(services.engine) as session:
        request = crud.get_request(session=session, request_id=request_id)
    assert request is not None
    return request


# --- the poller: resume orphans, follow pending images, post follow-ups ---------------------


@dataclass
class PollReport:
    resumed: int = 0
    checked: int = 0
    finished: int = 0
    followups: int = 0


def poll(services: Services) -> PollReport:
    """One pass of the follow-up job. Safe to run in several processes at once.

    Each request (and each region's check) is handled on its own: one that fails, however it
    fails, is logged and retried on the next pass and does not hold up the others.
    """
    report = PollReport()
    _resume_orphans(services, report)
    _check_pending(services, report)
    _post_followups(services, report)
    return report


@contextmanager
def _on_its_own(what: str) -> Iterator[None]:
    try:
        yield
    except WsimgError as exc:
        log.warning("%s failed: %s", what, exc.user_message)
    except Exception:  # logged with its traceback; the next pass tries this one again
        log.exception("%s failed", what)


def _resume_orphans(services: Services, report: PollReport) -> None:
    """Requests a dead process left in `approved` or `submitting`: the holder is known dead
    (a process of this host that no longer runs) or has not touched the row in ORPHAN_AFTER."""
    cutoff = utcnow() - ORPHAN_AFTER
    with session_scope(services.engine) as session:
        held = crud.requests_in(session=session, states=[State.approved, State.submitting])
    for request in held:
        stale = request.updated_at < cutoff
        if not (stale or is_dead_here(request.worker_id)):
            continue
        report.resumed += 1
        with _on_its_own(f"resuming request {request.short_id}"):
            if request.state == State.approved:
                submit(services, request_id=request.id)
            else:
                _reconcile_submitting(services, request, cutoff if stale else None)


def _reconcile_submitting(
    services: Services, request: UpdateRequest, stale_before: datetime | None
) -> None:
    """A process died during the call: look our Name up before anything is called again."""
    # Take the orphan over: the row becomes fresh and ours, so a second poller that read the
    # same orphan fails this compare-and-set and leaves it alone.
    if not move(
        services,
        request.id,
        from_states=[State.submitting],
        to=State.submitting,
        event="reconciling",
        actor=SYSTEM,
        detail={"name": request.new_image_name, "held_by": request.worker_id},
        stale_before=stale_before,
        held_by=None if stale_before else request.worker_id,
        worker_id=WORKER_ID,
    ):
        return
    assert request.new_image_name is not None
    try:
        image = services.gateway.find_owned_image_by_name(
            account_id=request.account_id, region=request.region, name=request.new_image_name
        )
    except AwsError as exc:
        log.warning("could not reconcile request %s: %s", request.short_id, exc.user_message)
        return
    if image is None:
        _event(services, request.id, "resubmitted", {"name": request.new_image_name})
        _create(services, request_id=request.id)
        return
    move(
        services,
        request.id,
        from_states=[State.submitting],
        to=State.pending,
        event="reconciled",
        actor=SYSTEM,
        detail={"new_image_id": image.image_id, "name": request.new_image_name},
        new_image_id=image.image_id,
    )


def _event(services: Services, request_id: str, kind: str, detail: dict[str, object]) -> None:
    with unit_of_work(services.engine) as session:
        crud.record_event(
            session=session, kind=kind, actor=SYSTEM, request_id=request_id, detail=detail
        )


def _check_pending(services: Services, report: PollReport) -> None:
    with session_scope(services.engine) as session:
        pending = crud.requests_in(session=session, states=[State.pending])
    by_target = groupby(
        sorted(pending, key=lambda r: (r.account_id, r.region)),
        key=lambda r: (r.account_id, r.region),
    )
    for (account_id, region), group in by_target:
        requests = {r.new_image_id: r for r in group if r.new_image_id}
        try:
            images = services.gateway.describe_images(
                account_id=account_id, region=region, image_ids=list(requests)
            )
        except WsimgError as exc:
            log.warning("could not check pending images in %s: %s", region, exc.user_message)
            continue
        report.checked += len(requests)
        found = {image.image_id: image for image in images}
        for image_id, request in requests.items():
            image = found.get(image_id)
            if image is not None and image.state == "PENDING":
                continue
            if image is None and not _long_gone(request):
                continue  # a brand-new image can be missing from Describe for a moment
            with _on_its_own(f"finishing request {request.short_id}"):
                report.finished += _finish(services, request, image)


def _long_gone(request: UpdateRequest) -> bool:
    since = request.submitted_at or request.updated_at
    return since is None or utcnow() - since > NOT_FOUND_GRACE


def _finish(services: Services, request: UpdateRequest, image: Image | None) -> int:
    if image is None:
        to, values = (
            State.error,
            {
                "error_code": "ImageNotFound",
                "error_message": f"{request.new_image_id} no longer exists in {request.region}.",
            },
        )
    elif image.state == "AVAILABLE":
        to, values = State.available, {}
    else:
        to, values = (
            State.error,
            {
                "error_code": image.error_code or "Unknown",
                "error_message": image.error_message or "WorkSpaces gave no reason.",
            },
        )
    detail = {"new_image_id": request.new_image_id, **values}
    moved = move(
        services,
        request.id,
        from_states=[State.pending],
        to=to,
        event=to.value,
        actor=SYSTEM,
        detail=detail,
        **values,
    )
    return int(moved)


def _post_followups(services: Services, report: PollReport) -> None:
    stale = utcnow() - ORPHAN_AFTER
    with session_scope(services.engine) as session:
        due = crud.followups_due(session=session)
    for request in due:
        claimed_at = request.followup_claimed_at
        if not (
            claimed_at is None or claimed_at < stale or is_dead_here(request.followup_claimed_by)
        ):
            continue  # a live poller is posting it
        with _on_its_own(f"follow-up of request {request.short_id}"):
            report.followups += _follow_up(services, request, taken_over=claimed_at is not None)


def _follow_up(services: Services, request: UpdateRequest, *, taken_over: bool) -> int:
    """Post the follow-up once: claimed first; when the claim was taken over from a poller
    that died, its thread is read first, since that poller may have posted before dying."""
    with unit_of_work(services.engine) as session:
        if not crud.claim_followup(
            session=session,
            request_id=request.id,
            held_by=request.followup_claimed_by,
            claimant=WORKER_ID,
        ):
            return 0
    if taken_over and services.notifier.followed_up(request):
        with unit_of_work(services.engine) as session:
            crud.finish_followup(session=session, request_id=request.id, posted=True)
            crud.record_event(
                session=session,
                kind="followup_found",
                actor=SYSTEM,
                request_id=request.id,
                detail={"held_by": request.followup_claimed_by},
            )
        return 0
    delivery = services.notifier.follow_up(request)
    services.notifier.refresh(request)
    with unit_of_work(services.engine) as session:
        crud.finish_followup(
            session=session, request_id=request.id, posted=delivery is not Delivery.retry
        )
        if delivery is Delivery.undeliverable:
            detail = {"channel": request.channel_id, "approver": request.approved_by}
            crud.record_event(
                session=session,
                kind="followup_undeliverable",
                actor=SYSTEM,
                request_id=request.id,
                detail=detail,
            )
    return int(delivery is Delivery.posted)


# --- what happened: status and history --------------------------------------------------------

HISTORY_DEFAULT, HISTORY_MAX = 10, 50


@dataclass(frozen=True)
class Viewer:
    """Who asks about requests, and where: what they may see follows from it.

    A request belongs to the channel it was made in. In a channel, ``status`` and ``history``
    show that channel's requests; in a direct message with wsimg (a D… channel), the requests
    the caller made there. An approver may ask for every request (``all``); the answer is
    shown only to them. Anything else is as if it did not exist.
    """

    user_id: str
    channel_id: str
    everything: bool = False

    @property
    def in_dm(self) -> bool:
        return self.channel_id.startswith("D")


class NotAllowedToSeeAll(Refused):
    def __init__(self) -> None:
        super().__init__(
            "Only approvers (WSIMG_APPROVERS) may see every channel's requests. Without `all`, "
            "you see the requests made in the channel you ask in."
        )


def viewer(services: Services, *, user_id: str, channel_id: str, everything: bool) -> Viewer:
    """The caller's view; asking for everything needs an approver (refused and recorded)."""
    if everything and not services.policy.can_approve(user_id):
        record_refusal(services, user_id, "", "not an approver: asked for all requests")
        raise NotAllowedToSeeAll()
    return Viewer(user_id=user_id, channel_id=channel_id, everything=everything)


def _scope(who: Viewer) -> crud.Scope:
    if who.everything:
        return crud.Scope()
    if who.in_dm:
        return crud.Scope(channel_id=who.channel_id, requested_by=who.user_id)
    return crud.Scope(channel_id=who.channel_id)


@dataclass(frozen=True)
class Status:
    request: UpdateRequest
    events: list[Event]


def status(services: Services, *, query: str | None, who: Viewer) -> list[Status]:
    """One request (by its id, as shown or in full, or a source or new image id, exactly) or
    every request in flight: only those ``who`` may see."""
    scope = _scope(who)
    with session_scope(services.engine) as session:
        if query:
            found = crud.find_request(session=session, identifier=query, scope=scope)
            if found is None:
                raise NotFound(
                    f"No update request here matches `{query[:80]}`. Use a request id from "
                    "`/wsimg history` in the channel where it was asked for, or a source or "
                    "new image id (wsi-…)."
                )
            requests = [found]
        else:
            requests = crud.requests_in(session=session, states=IN_FLIGHT, scope=scope)
        return [
            Status(request=r, events=crud.events(session=session, request_id=r.id, limit=20))
            for r in requests
        ]


def history(
    services: Services, *, who: Viewer, limit: int = HISTORY_DEFAULT
) -> list[UpdateRequest]:
    limit = min(max(limit, 1), HISTORY_MAX)
    with session_scope(services.engine) as session:
        return crud.recent_requests(session=session, limit=limit, scope=_scope(who))


def audit_trail(engine: Engine, *, limit: int) -> list[dict[str, Any]]:
    """The last ``limit`` requests, each with every event recorded about it, oldest first:
    what `wsimg history --json` exports."""
    with session_scope(engine) as session:
        requests = crud.recent_requests(session=session, limit=max(limit, 1))
        return [
            {
                **request.model_dump(mode="json", exclude={"active_key", "worker_id"}),
                "events": [
                    event.model_dump(mode="json", exclude={"request_id"})
                    for event in reversed(
                        crud.events(session=session, request_id=request.id, limit=1000)
                    )
                ],
            }
            for request in requests
        ]
