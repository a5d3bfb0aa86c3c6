"""Listings: every image with an update available, stored as offers behind opaque keys, and
the pages a listing is shown in."""

from __future__ import annotations

import logging
import secrets
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import timedelta

from sqlmodel import Session

from bot.aws.gateway import Image
from bot.domain import fleet
from bot.domain.context import Services
from bot.domain.pages import Entry, ListingPage, assign_pages
from bot.domain.requests import StaleButton, UnknownRegion, ttl
from storage import crud
from storage.db import session_scope, unit_of_work
from storage.models import (
    Listing,
    Offer,
    image_key,
    utcnow,
)

log = logging.getLogger(__name__)


def offered_here(offer: Offer, channel_id: str | None) -> bool:
    """A button acts only in the channel its list was shown in: a click naming another
    channel (a forged payload) would act there, where the clicker may not even be."""
    return not (channel_id and offer.channel_id and channel_id != offer.channel_id)


def check_region(services: Services, region: str | None) -> None:
    if region is not None and region not in services.settings.regions:
        configured = ", ".join(services.settings.regions) or "none"
        raise UnknownRegion(
            f"`{region}` is not one of the configured regions ({configured}). "
            "Set WSIMG_REGIONS to add it."
        )


def list_updates(
    services: Services,
    *,
    user_id: str,
    channel_id: str | None,
    region: str | None = None,
    refresh: bool = False,
) -> ListingPage:
    """Every image with an update available, in every configured region and account, as the
    shared fleet scan saw it (scanned again first with ``refresh``, or when it is too old)."""
    check_region(services, region)
    listing = make_listing(
        services,
        kind="updates",
        user_id=user_id,
        channel_id=channel_id,
        region=region,
        max_age=timedelta(0) if refresh else None,
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
    max_age: timedelta | None = None,
) -> Listing:
    """Read the fleet scan (bot/domain/fleet.py; scanned again when older than ``max_age``),
    remember what it showed (offers, first sightings), return the stored listing."""
    found = fleet.snapshot(services, region=region, max_age=max_age)
    images = [image for image in found.images if image.update_available and not skip(image)]
    listing = Listing(
        id=uuid.uuid4().hex,
        kind=kind,
        created_by=user_id,
        channel_id=channel_id,
        region=region,
        failures=found.failures,
        scanned_at=found.scanned_at,
        image_counts=dict(Counter(f"{i.account_id}:{i.region}" for i in found.images)),
    )
    pages = assign_pages([(image.account_id, image.region) for image in images])
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
        image_quota=services.settings.image_quota,
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


def purge_listings(services: Services) -> int:
    """Listings and offers older than the approval TTL go: their buttons answer "expired" by
    then, and a flood of `/wsimg updates` must not grow the database without bound. Events
    stay (the log is append-only)."""
    with unit_of_work(services.engine) as session:
        return crud.purge_listings(session=session, before=utcnow() - ttl(services))
