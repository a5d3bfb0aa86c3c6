"""Digests name every image up to 200 (compact lines, every image one click from its
buttons) and summarise per account and region beyond; Block Kit limits hold throughout."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from sqlmodel import select

from bot.domain import digests
from bot.domain import listing as listings
from bot.domain.pages import (
    NAMED_MAX,
    Digest,
    Entry,
    GroupSummary,
    ListingPage,
    assign_pages,
)
from bot.fakes.slack import SlackUser, blocks_to_text, find_buttons, validate_blocks
from bot.runtime import Services, build_services
from bot.slack import digest_view
from bot.slack.blocks import section
from storage.db import session_scope
from storage.models import (
    Listing,
    Offer,
    Sighting,
    State,
    UpdateRequest,
    utcnow,
)
from tests.bot.digest_kit import digest_posts, following
from tests.conftest import APPROVER, SIGNING_SECRET, World, serve

# --- a digest names every image up to 200, and summarises past that ------------------------------


def _seen(messages: list) -> str:
    """What the channel sees of a digest: every message, as text."""
    return "\n".join(blocks_to_text(m.args["blocks"]) for m in messages)


def _line_of(seen: str, image_id: str) -> str:
    [line] = [line for line in seen.splitlines() if image_id in line]
    return line


def _buttons_behind(
    world: World, user: SlackUser, messages: list, channel_id: str
) -> dict[str, set[str]]:
    """Click every button of the digest that opens images (and every Next after it), like a
    person in the digest's channel would; the image IDs under an Approve and a Snooze button."""
    found: dict[str, set[str]] = {"approve": set(), "snooze": set()}
    for message in messages:
        for opener in find_buttons(message.args["blocks"]):
            if not opener["action_id"].startswith("wsimg.open"):
                continue
            result = user.click(
                opener["action_id"], opener["value"], user_id=APPROVER, channel_id=channel_id
            )
            first = world.slack.wait_for_response(result.response_url, timeout=30)
            for page in [first, *following(world, user, first, channel_id)]:
                for kind, ids in found.items():
                    ids |= {
                        i for i in _ids_in(page) if world.image_button(page, i, kind) is not None
                    }
    return found


def _ids_in(page: dict) -> set[str]:
    return set(re.findall(r"wsi-[0-9a-z]+", blocks_to_text(page["blocks"])))


@contextmanager
def _fleet(world: World, regions: list[str]) -> Iterator[tuple[Services, SlackUser]]:
    settings = world.services.settings.model_copy(update={"regions": regions})
    services = build_services(settings)
    url, server = serve(services)
    try:
        yield services, SlackUser(url, SIGNING_SECRET, world.slack)
    finally:
        server.stop()
        services.engine.dispose()


def test_a_digest_of_23_images_in_two_regions_names_every_image_with_its_id(
    world: World,
) -> None:
    images = {
        world.simulator.add_image(region=region, name=f"Win-{region}-{n}"): f"Win-{region}-{n}"
        for region, count in (("us-east-1", 12), ("eu-west-1", 11))
        for n in range(count)
    }

    assert digests.post_digest(world.services, channel_id="C0DIGEST", user_id=APPROVER) == 1

    messages = digest_posts(world)
    assert all(m.ok for m in messages)
    seen = _seen(messages)
    assert "23 images have a WorkSpaces update available in 2 regions" in seen
    for image_id, name in images.items():
        assert name in _line_of(seen, image_id)  # one line each: its name and its ID
    assert "us-east-1 · account 123456789012 — 12 images" in seen
    assert "eu-west-1 · account 123456789012 — 11 images" in seen
    assert "with an update" not in seen  # no group collapsed into a count
    reachable = _buttons_behind(world, world.user, messages, "C0DIGEST")
    assert reachable == {"approve": set(images), "snooze": set(images)}


def test_a_digest_line_says_how_long_an_image_waited_and_where_its_update_stands(
    world: World,
) -> None:
    images = [world.simulator.add_image(region="us-east-1", name=f"Win-M-{n}") for n in range(30)]
    old, busy = images[0], images[1]
    world.listing()  # the first sighting of all
    with session_scope(world.services.engine) as session:
        sighting = session.get(Sighting, f"123456789012:us-east-1:{old}")
        assert sighting is not None
        sighting.first_seen_at = utcnow() - timedelta(days=20)
        session.add(sighting)
        session.commit()
    world.answer(world.click(world.approve_button(world.listing(), busy)))

    digests.post_digest(world.services, channel_id="C0DIGEST", user_id=APPROVER)

    seen = _seen(digest_posts(world))
    assert "waiting 20 days :warning:" in _line_of(seen, old)
    assert "building" in _line_of(seen, busy)
    assert "new today" in _line_of(seen, images[2])
    heading = "us-east-1 · account 123456789012 — 30 images, 1 waiting over the limit, 1 in flight"
    assert heading in seen
    assert seen.splitlines()[1].startswith(":warning: 1 waiting more than 14 days: Win-M-0 ")


def test_a_digest_of_200_images_names_every_one_and_breaks_no_block_kit_limit(
    world: World,
) -> None:
    regions = [f"eu-test-{n}" for n in range(1, 6)]
    # Names as long as WorkSpaces allows (64), so that a page's lines need several sections.
    images = {
        world.simulator.add_image(region=region, name=name): name
        for region in regions
        for n in range(40)
        for name in [f"Win11-{region}-{n:02d}-".ljust(64, "x")]
    }
    with _fleet(world, regions) as (services, user):
        listings.list_updates(services, user_id=APPROVER, channel_id=None)  # first sightings
        with session_scope(services.engine) as session:
            for sighting in session.exec(select(Sighting)).all():
                sighting.first_seen_at = utcnow() - timedelta(days=30)
                session.add(sighting)
            session.commit()

        posted = digests.post_digest(services, channel_id="C0BIG", user_id=APPROVER)

        messages = digest_posts(world, "C0BIG")
        assert posted == len(messages) >= 1
        assert all(m.ok for m in messages)  # the stand-in refuses any Block Kit limit break
        seen = _seen(messages)
        for image_id, name in images.items():
            assert name in _line_of(seen, image_id)
        assert "More than 200" not in seen
        reachable = _buttons_behind(world, user, messages, "C0BIG")
    assert reachable["approve"] == set(images)


def test_a_digest_of_over_200_images_summarises_each_region_and_says_so(world: World) -> None:
    regions = [f"eu-test-{n}" for n in range(1, 4)]
    images = {
        world.simulator.add_image(region=region, name=f"Win-{region}-{n}")
        for region, count in zip(regions, (67, 67, 67), strict=True)
        for n in range(count)
    }
    assert len(images) == 201
    with _fleet(world, regions) as (services, user):
        digests.post_digest(services, channel_id="C0BIG", user_id=APPROVER)

        messages = digest_posts(world, "C0BIG")
        assert all(m.ok for m in messages)
        seen = _seen(messages)
        assert "More than 200 images: one line per account and region" in seen
        for region in regions:
            assert f"{region} · account 123456789012: 67 images with an update" in seen
        openers = [b for m in messages for b in find_buttons(m.args["blocks"])]
        assert [b["text"] for b in openers] == ["List them"] * 3
        reachable = _buttons_behind(world, user, messages, "C0BIG")
    assert reachable["approve"] == images


def test_200_images_with_the_longest_lines_each_in_its_own_account_still_fit_block_kit() -> None:
    """The worst case for the named digest, without Slack: 200 groups of one image, names of
    255 characters that escaping makes longer, each with an update building."""
    count = NAMED_MAX
    name = "Win&<Finance>&" * 18
    accounts = [f"{n:012d}" for n in range(count)]
    pages = assign_pages([(account, "eu-west-1") for account in accounts])
    listing = Listing(id="l" * 32, kind="digest", created_by=APPROVER)
    entries = []
    for n, (account, page) in enumerate(zip(accounts, pages, strict=True)):
        image_id = f"wsi-{n:09d}"
        offer = Offer(
            key=f"key{n}",
            listing_id=listing.id,
            page=page,
            position=n,
            account_id=account,
            region="eu-west-1",
            image_id=image_id,
            image_name=f"{n:03d}-{name}"[:255],
            listed_by=APPROVER,
        )
        request = UpdateRequest(
            id=f"r{n:031d}",
            account_id=account,
            region="eu-west-1",
            source_image_id=image_id,
            source_image_name=offer.image_name,
            requested_by=APPROVER,
            state=State.pending,
            new_image_id=f"wsi-new{n:09d}",
        )
        entries.append(Entry(offer=offer, request=request, first_seen=utcnow()))
    report = Digest(
        page=ListingPage(
            listing=listing,
            page=1,
            pages=max(pages),
            total_images=count,
            total_regions=1,
            entries=[e for e in entries if e.offer.page == 1],
        ),
        groups=[
            GroupSummary(
                account_id=account,
                region="eu-west-1",
                count=1,
                overdue=0,
                in_flight=1,
                first_key=f"key{n}",
                position=n,
            )
            for n, account in enumerate(accounts)
        ],
        overdue=[],
        snoozed=0,
        entries=entries,
    )

    messages = digest_view.digest(report)

    assert all(validate_blocks(m["blocks"]) == [] for m in messages)
    sections = [b for m in messages for b in m["blocks"] if b.get("accessory")]
    assert len(sections) > max(pages)  # pages too long for one section went into several
    seen = "\n".join(blocks_to_text(m["blocks"]) for m in messages)
    for entry in entries:
        line = _line_of(seen, f"{entry.offer.image_id}`")
        assert entry.offer.image_name[:99] in line and "building" in line


def test_a_digest_longer_than_50_blocks_goes_out_in_numbered_messages() -> None:
    body = [section(f"block {n}") for n in range(120)]
    messages = digest_view._split([section("head")], body, "digest")
    assert [len(m["blocks"]) for m in messages] == [50, 50, 23]
    assert (
        blocks_to_text(messages[1]["blocks"][:1]) == "WorkSpaces image digest, continued (2 of 3)"
    )
    shown = [b for m in messages for b in m["blocks"] if b["type"] == "section"]
    assert shown == [section("head"), *body]
