"""Listings: every image with an update available, stored as offers behind opaque keys, and
the pages a listing is shown in."""

from __future__ import annotations

import dataclasses
import fnmatch
import logging
import re
import secrets
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import Session

from bot.aws.gateway import Image
from bot.domain import fleet
from bot.domain.context import Services
from bot.domain.pages import OVERDUE_DAYS, Entry, GroupSummary, ListingPage, assign_pages
from bot.domain.requests import StaleButton, UnknownRegion, ttl
from bot.errors import WsimgError
from storage import crud
from storage import fleet as fleet_store
from storage import listings as listing_store
from storage.db import session_scope, unit_of_work
from storage.models import (
    IN_FLIGHT,
    Listing,
    Offer,
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


SAMPLES = 3  # image names a summary line shows for its account and region
GLOB_MAX = 64  # WorkSpaces image names are at most 64 characters
_ACCOUNT = re.compile(r"[0-9]{12}")
# What reads as a region (configured or not): `eu-west-1`, `us-gov-west-1`, `mars-north-1`.
_REGION = re.compile(r"[a-z]+(-[a-z]+)+-[0-9]{1,2}")


class BadFilter(WsimgError):
    pass


@dataclass(frozen=True)
class Filters:
    """`/wsimg updates [region] [account] [name-glob] [refresh]`, in any order."""

    region: str | None = None
    account_id: str | None = None
    name_glob: str | None = None
    refresh: bool = False

    def matches(self, image: Image) -> bool:
        if self.account_id is not None and image.account_id != self.account_id:
            return False
        return self.name_glob is None or fnmatch.fnmatchcase(
            image.name.lower(), self.name_glob.lower()
        )

    def words(self) -> list[str]:
        """The filters other than the region as the command's words (what a listing keeps)."""
        return [word for word in (self.account_id, self.name_glob) if word is not None]

    def describe(self) -> str:
        """The filters other than the region, in words ("" for none)."""
        parts = []
        if self.name_glob is not None:
            parts.append(f"named `{self.name_glob}`")
        if self.account_id is not None:
            parts.append(f"in account {self.account_id}")
        return " ".join(parts)


def parse_filters(words: Sequence[str], *, regions: Sequence[str] = ()) -> Filters:
    """The words after `updates`: a 12-digit account, a region (anything shaped like one, or a
    configured one), `refresh`, and otherwise a name glob; at most one of each."""
    region: str | None = None
    account: str | None = None
    glob: str | None = None
    refresh = False
    for word in words:
        if word.lower() == "refresh":
            refresh = True
        elif word.isascii() and _ACCOUNT.fullmatch(word):
            if account is not None and account != word:
                raise BadFilter("Give at most one account (a 12-digit account ID).")
            account = word
        elif word.lower() in regions or _REGION.fullmatch(word):
            if region is not None and region != word.lower():
                raise BadFilter("Give at most one region.")
            region = word.lower()
        else:
            if len(word) > GLOB_MAX:
                raise BadFilter(f"An image name pattern is at most {GLOB_MAX} characters.")
            if glob is not None and glob != word:
                raise BadFilter("Give at most one image name pattern (such as `Win11-*`).")
            glob = word
    return Filters(region=region, account_id=account, name_glob=glob, refresh=refresh)


def list_updates(
    services: Services,
    *,
    user_id: str,
    channel_id: str | None,
    region: str | None = None,
    refresh: bool = False,
    filters: Filters | None = None,
) -> ListingPage:
    """Every image with an update available, in every configured region and account (or those
    the filters keep), as the shared fleet scan saw it (scanned again first with ``refresh``,
    or when it is too old). Over one page in several accounts or regions: the first answer is
    one line per account and region (``groups``), each opening that group's pages."""
    filters = filters or Filters(region=region, refresh=refresh)
    check_region(services, filters.region)
    listing, offers = make_listing(
        services,
        kind="updates",
        user_id=user_id,
        channel_id=channel_id,
        region=filters.region,
        skip=lambda image: not filters.matches(image),
        max_age=timedelta(0) if filters.refresh else None,
        apart=True,
        filters=" ".join(filters.words()),
    )
    first = load_page(services, listing_id=listing.id, page=1)
    first = dataclasses.replace(first, filters=filters.describe())
    if first.pages <= 1:
        return first
    with session_scope(services.engine) as session:
        entries = entries_for(session=session, offers=offers, channel_id=channel_id)
    groups = group_summaries(entries, samples=SAMPLES)
    if len(groups) > 1:
        return dataclasses.replace(first, groups=groups)
    # One account and region: its pages as they are (a summary of one line would only delay),
    # the first with how many of all its pages' images "Approve all" would take.
    return dataclasses.replace(first, approvable_total=sum(1 for e in entries if e.approvable))


def refresh_listing(
    services: Services, *, key: str, user_id: str, channel_id: str | None
) -> ListingPage:
    """A listing's Refresh button: the same command (region and filters) after a new scan."""
    with session_scope(services.engine) as session:
        offer = crud.get_offer(session=session, key=key)
        listing = crud.get_listing(session=session, listing_id=offer.listing_id) if offer else None
    if offer is None or listing is None or not offered_here(offer, channel_id):
        raise StaleButton()
    words = [*listing.filters.split(), *([listing.region] if listing.region else []), "refresh"]
    filters = parse_filters(words, regions=services.settings.regions)
    return list_updates(
        services, user_id=user_id, channel_id=channel_id or listing.channel_id, filters=filters
    )


def listing_filters(listing: Listing) -> str:
    """The filters (other than the region) a listing was made with, in words."""
    return parse_filters(listing.filters.split()).describe() if listing.filters else ""


def group_summaries(
    entries: Sequence[Entry],
    *,
    overdue_days: int = OVERDUE_DAYS,
    now: datetime | None = None,
    samples: int = 0,
) -> list[GroupSummary]:
    """One summary per account and region, in listing order: how many images, how many
    waiting over ``overdue_days``, in flight, snoozed, the names of its first ``samples``
    images; ``first_key`` opens its first page."""
    limit, now = timedelta(days=overdue_days), now or utcnow()
    groups: dict[tuple[str, str], list[Entry]] = {}
    for entry in entries:
        groups.setdefault((entry.offer.account_id, entry.offer.region), []).append(entry)
    return [
        GroupSummary(
            account_id=account,
            region=region,
            count=len(members),
            overdue=sum(1 for e in members if e.first_seen and now - e.first_seen > limit),
            in_flight=sum(1 for e in members if e.request and e.request.state in IN_FLIGHT),
            first_key=members[0].offer.key,
            position=n,
            snoozed=sum(1 for e in members if e.snooze is not None),
            samples=tuple(e.offer.image_name for e in members[:samples]),
            approvable=sum(1 for e in members if e.approvable),
        )
        for n, ((account, region), members) in enumerate(groups.items())
    ]


def make_listing(
    services: Services,
    *,
    kind: str,
    user_id: str,
    channel_id: str | None,
    region: str | None = None,
    skip: Callable[[Image], bool] = lambda image: False,
    max_age: timedelta | None = None,
    apart: bool = False,
    filters: str = "",
) -> tuple[Listing, list[Offer]]:
    """Read the fleet scan (bot/domain/fleet.py; scanned again when older than ``max_age``,
    default WSIMG_SCAN_SECONDS), remember what it showed (offers, first sightings), return the
    stored listing and its offers in listing order (built from the rows written, without their
    database ``id``, rather than read back: a sixth of a summary's time at 750 offers). With
    ``apart``, a listing over one page starts each account and region on a page of its own.

    Only the images with an update are read, as plain rows, and the offers are written as
    plain rows too (storage/fleet.py, storage/listings.py): at 10 regions x 250 images the ORM
    objects of the whole snapshot and of 750 offers took most of a listing's half second."""
    if max_age is None:
        max_age = timedelta(seconds=services.settings.scan_seconds)
    fleet.fresh(services, max_age=max_age)
    with session_scope(services.engine) as session:
        scan = fleet_store.scan_row(session=session)
        rows = fleet_store.updates(session=session, region=region)
        counts = fleet_store.image_counts(session=session, region=region)
    images = [image for image in (Image(**row._mapping) for row in rows) if not skip(image)]
    listing = Listing(
        id=uuid.uuid4().hex,
        kind=kind,
        created_by=user_id,
        channel_id=channel_id,
        region=region,
        failures=[f for f in scan.failures if region is None or f.startswith(f"{region} ")],
        scanned_at=scan.started_at,
        image_counts=counts,
        filters=filters[:255],
    )
    groups = [(image.account_id, image.region) for image in images]
    pages = assign_pages(groups)
    if apart and pages and pages[-1] > 1:
        pages = assign_pages(groups, apart=True)
    now = utcnow()
    offers = [
        _offer(image, listing=listing, page=page, position=n, now=now)
        for n, (image, page) in enumerate(zip(images, pages, strict=True))
    ]
    with unit_of_work(services.engine) as session:
        crud.add_listing(session=session, listing=listing, offers=())
        listing_store.add_offers(session=session, rows=offers)
        fleet_store.record_sightings(session=session, now=now, region=region)
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
    return listing, [Offer.model_construct(**row) for row in offers]


def _offer(
    image: Image, *, listing: Listing, page: int, position: int, now: datetime
) -> dict[str, Any]:
    """The offer row of ``image`` (storage/listings.py): every Offer column but its id."""
    return {
        "key": secrets.token_urlsafe(18),
        "listing_id": listing.id,
        "page": page,
        "position": position,
        "account_id": image.account_id,
        "region": image.region,
        "image_id": image.image_id,
        "image_name": image.name,
        "platform": image.platform,
        "update_description": image.update_description,
        "not_updatable_reason": image.not_updatable_reason,
        "listed_by": listing.created_by,
        "channel_id": listing.channel_id,
        "withdrawn_reason": None,
        "created_at": now,
    }


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
    seen = fleet_store.first_seen(session=session, image_keys=keys)
    entries = []
    for offer, key in zip(offers, keys, strict=True):
        request = latest.get(key)
        entries.append(
            Entry(
                offer=offer,
                request=request,
                snooze=snoozes.get(key),
                first_seen=seen.get(key),
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
