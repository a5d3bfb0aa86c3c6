"""What the domain hands out to be shown: a listing page (its images, with what wsimg knows of
each), a digest, and how a listing is cut into pages.

A page is what one Slack message can show (50 blocks): three blocks are kept for the summary,
the failures line and the page buttons; an image takes two (its section and its buttons), plus
one for its group's heading the first time the group shows on a page. The pages are decided
when the listing is stored, so every page button finds the same page again. A `/wsimg updates`
listing over one page starts each account and region on a page of its own, and answers first
with one line per account and region (``ListingPage.groups``), each opening its pages.

A digest names every image (one short line each) up to ``NAMED_MAX`` images; past that, one line
per account and region, each opening its images.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from storage.models import IN_FLIGHT, Listing, Offer, Snooze, State, UpdateRequest

PAGE_BLOCKS = 50
RESERVED_BLOCKS = 3
BLOCKS_PER_IMAGE = 2
OVERDUE_DAYS = 14  # a digest marks updates waiting longer than this at its top
NAMED_MAX = 200  # a digest names each image up to this many, then summarises per group


@dataclass(frozen=True)
class Entry:
    offer: Offer
    request: UpdateRequest | None  # the newest request for this image, if any
    snooze: Snooze | None = None  # an active snooze
    first_seen: datetime | None = None  # when wsimg first saw this update available
    # The request was made in another channel: what was said there (who, why) stays there.
    foreign: bool = False

    @property
    def approvable(self) -> bool:
        """Whether "Approve all" takes this image (bot/domain/bulk.py): it can be updated,
        nobody snoozed it, and no update of it is in flight or done."""
        offer, request = self.offer, self.request
        if offer.not_updatable_reason or offer.withdrawn_reason or self.snooze is not None:
            return False
        return request is None or request.state not in IN_FLIGHT | {State.available}


@dataclass(frozen=True)
class GroupSummary:
    account_id: str
    region: str
    count: int
    overdue: int
    in_flight: int
    first_key: str
    position: int
    snoozed: int = 0
    samples: tuple[str, ...] = ()  # the names of its first few images, to recognise it by
    approvable: int = 0  # images "Approve all" would take (bot/domain/bulk.py approvable)


@dataclass(frozen=True)
class ListingPage:
    listing: Listing
    page: int
    pages: int
    total_images: int
    total_regions: int
    entries: list[Entry]
    four_eyes: bool = False  # a click asks for the update; another approver approves it
    image_quota: int = 40  # images per account and region (WSIMG_IMAGE_QUOTA)
    # `/wsimg updates` over one page answers first with one line per account and region.
    groups: list[GroupSummary] | None = None
    filters: str = ""  # the command's filters in words ("" for none), for its first answer
    # A first answer over several pages of one account and region: the images of all its pages
    # that "Approve all" would take (None: not counted).
    approvable_total: int | None = None

    @property
    def failures(self) -> list[str]:
        return self.listing.failures

    @property
    def region(self) -> str | None:
        return self.listing.region

    def image_count(self, account_id: str, region: str) -> int | None:
        """How many images the account owned in the region when the listing was made."""
        return (self.listing.image_counts or {}).get(f"{account_id}:{region}")


@dataclass(frozen=True)
class Digest:
    page: ListingPage  # the listing's first page, and its totals
    groups: list[GroupSummary]
    overdue: list[Entry]
    snoozed: int
    quiet: bool = False
    overdue_days: int = OVERDUE_DAYS
    entries: list[Entry] = field(default_factory=list)  # every image, in listing order
    named_max: int = NAMED_MAX

    @property
    def names_each(self) -> bool:
        """Whether the digest names every image, or only counts them per account and region."""
        return self.page.total_images <= self.named_max


def assign_pages(groups: Sequence[tuple[str, str]], *, apart: bool = False) -> list[int]:
    """The page of each image, given its (account, region) in listing order; with ``apart``
    each group starts on a page of its own, so a group's pages hold only its images."""
    budget = PAGE_BLOCKS - RESERVED_BLOCKS
    pages: list[int] = []
    page, used, current = 1, 0, None
    for group in groups:
        need = BLOCKS_PER_IMAGE if group == current else BLOCKS_PER_IMAGE + 1
        if used + need > budget or (apart and used and group != current):
            page, used = page + 1, 0
            need = BLOCKS_PER_IMAGE + 1
        used += need
        current = group
        pages.append(page)
    return pages
