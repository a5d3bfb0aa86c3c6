"""Digests: schedules and their time zones, exactly one post per slot, snoozes, large fleets."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import select

from bot.domain import digests
from bot.domain import listing as listings
from bot.domain.digests import (
    Schedule,
    due_slots,
    ensure_default_subscription,
    run_due,
    shortest_gap,
)
from bot.domain.pages import (
    NAMED_MAX,
    Digest,
    Entry,
    GroupSummary,
    ListingPage,
    assign_pages,
)
from bot.domain.policy import ApproverPolicy
from bot.fakes.slack import SlackUser, blocks_to_text, find_buttons, validate_blocks
from bot.runtime import Services, build_services
from bot.slack import blocks
from bot.slack.blocks import section
from bot.slack.groups import SlackGroups
from storage import crud
from storage.db import session_scope
from storage.models import (
    DigestSlot,
    Event,
    Listing,
    Offer,
    Sighting,
    State,
    Subscription,
    UpdateRequest,
    utcnow,
)
from tests.conftest import APPROVER, OUTSIDER, SIGNING_SECRET, World, serve

BERLIN = "Europe/Berlin"


def _utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_half_past_eight_in_berlin_is_0730_utc_in_winter_and_0630_utc_in_summer() -> None:
    schedule = Schedule("30 8 * * *", BERLIN)
    winter = due_slots(schedule, after=_utc(2026, 1, 14, 12), now=_utc(2026, 1, 15, 12))
    summer = due_slots(schedule, after=_utc(2026, 7, 14, 12), now=_utc(2026, 7, 15, 12))
    assert winter == [_utc(2026, 1, 15, 7, 30)]
    assert summer == [_utc(2026, 7, 15, 6, 30)]


@pytest.mark.parametrize(
    ("cron", "day"),
    [
        ("30 2 * * *", (2026, 10, 25)),  # 02:30 happens twice in Berlin that night
        ("30 2 * * *", (2026, 3, 29)),  # and not at all on this one
        ("30 8 * * *", (2026, 10, 25)),
        ("30 8 * * *", (2026, 3, 29)),
    ],
)
def test_a_daily_slot_comes_once_on_a_dst_change_day(cron: str, day: tuple[int, int, int]) -> None:
    start = datetime(*day, tzinfo=UTC) - timedelta(hours=3)
    slots = due_slots(Schedule(cron, BERLIN), after=start, now=start + timedelta(hours=24))
    assert len(slots) == 1


def _subscribe(world: World, text: str, *, channel_id: str = "C0DIGEST") -> dict:
    return world.answer(world.command(text, channel_id=channel_id))


def _subscription(world: World, channel_id: str = "C0DIGEST") -> Subscription | None:
    with session_scope(world.services.engine) as session:
        return crud.get_subscription(session=session, channel_id=channel_id)


def _backdate(world: World, channel_id: str, when: datetime) -> None:
    with session_scope(world.services.engine) as session:
        subscription = crud.get_subscription(session=session, channel_id=channel_id)
        assert subscription is not None
        subscription.updated_at = when
        session.add(subscription)
        session.commit()


def _digest_posts(world: World, channel_id: str = "C0DIGEST") -> list:
    return [
        c for c in world.slack.calls_to("chat.postMessage") if c.args.get("channel") == channel_id
    ]


def test_a_dst_change_day_posts_once(world: World) -> None:
    world.simulator.add_image(region="us-east-1", name="Win-Dst")
    _subscribe(world, "subscribe 30 2 * * * Europe/Berlin")
    _backdate(world, "C0DIGEST", _utc(2026, 10, 24, 12))
    # Ticks every 10 minutes through the night the clocks go back.
    moment = _utc(2026, 10, 24, 23)
    while moment < _utc(2026, 10, 25, 4):
        run_due(world.services, now=moment, worker_id="a")
        run_due(world.services, now=moment, worker_id="b")
        moment += timedelta(minutes=10)
    assert len(_digest_posts(world)) == 1


def test_after_two_hours_down_the_last_missed_slot_is_posted_once_inside_the_grace(
    world: World,
) -> None:
    world.simulator.add_image(region="us-east-1", name="Win-Down")
    _subscribe(world, "subscribe 0 * * * * UTC")
    _backdate(world, "C0DIGEST", _utc(2026, 11, 20, 8, 30))

    back_up = _utc(2026, 11, 20, 10, 40)  # down through the 09:00 and 10:00 slots
    first = run_due(world.services, now=back_up, worker_id="first")
    second = run_due(world.services, now=back_up, worker_id="second")

    assert first.posted == ["2026-11-20T10:00:00"]
    assert first.skipped == ["2026-11-20T09:00:00"]
    assert second.posted == []
    assert len(_digest_posts(world)) == 1


def test_a_slot_missed_by_more_than_the_grace_is_recorded_as_skipped(world: World) -> None:
    world.simulator.add_image(region="us-east-1", name="Win-Late")
    _subscribe(world, "subscribe 09:00 UTC")
    _backdate(world, "C0DIGEST", _utc(2026, 11, 20, 7, 30))

    report = run_due(world.services, now=_utc(2026, 11, 20, 11, 30))

    assert report.posted == [] and report.skipped == ["2026-11-20T09:00:00"]
    assert _digest_posts(world) == []
    with session_scope(world.services.engine) as session:
        [slot] = session.exec(select(DigestSlot)).all()
    assert slot.state == "skipped"


@pytest.mark.parametrize(
    "text",
    [
        "subscribe 99 * * * *",
        "subscribe every tuesday",
        "subscribe 08:00 Mars/Olympus_Mons",
        "subscribe 25:00",
        "subscribe 30 8 * * * Europe/Nowhere quiet",
    ],
)
def test_bad_subscribe_input_answers_the_accepted_forms_and_stores_nothing(
    world: World, text: str
) -> None:
    answer = blocks_to_text(_subscribe(world, text)["blocks"])
    assert "Accepted forms" in answer
    assert _subscription(world) is None


def test_a_subscription_made_in_one_process_is_honoured_by_another(world: World) -> None:
    world.simulator.add_image(region="us-east-1", name="Win-Shared")
    other = build_services(world.services.settings)  # a second process on the same database
    try:
        answer = blocks_to_text(_subscribe(world, "subscribe 07:15 UTC")["blocks"])
        assert "subscribed this channel" in answer
        _backdate(world, "C0DIGEST", _utc(2026, 11, 20, 7))

        assert run_due(other, now=_utc(2026, 11, 20, 7, 16)).posted == ["2026-11-20T07:15:00"]

        world.answer(world.command("unsubscribe", channel_id="C0DIGEST"))
        assert run_due(other, now=_utc(2026, 11, 21, 7, 16)).posted == []
    finally:
        other.engine.dispose()
    assert len(_digest_posts(world)) == 1


def test_snooze_hides_an_image_from_digests_and_updates_shows_who_snoozed_it(
    world: World,
) -> None:
    snoozed = world.simulator.add_image(region="us-east-1", name="Win-Sleepy")
    awake = world.simulator.add_image(region="us-east-1", name="Win-Awake")
    digests.post_digest(world.services, channel_id="C0DIGEST", user_id=APPROVER)
    [post] = _digest_posts(world)
    snooze = world.image_button(post.args, snoozed, "snooze")
    assert snooze is not None
    # Clicked where the digest was posted: Slack names that channel in the payload.
    world.user.click(snooze["action_id"], snooze["value"], user_id=OUTSIDER, channel_id="C0DIGEST")
    refused = world.slack.wait_for_response(timeout=10)
    assert "may not" in blocks_to_text(refused["blocks"])

    world.answer(
        world.user.click(
            snooze["action_id"], snooze["value"], user_id=APPROVER, channel_id="C0DIGEST"
        )
    )

    digests.post_digest(world.services, channel_id="C0DIGEST", user_id=APPROVER)
    second = blocks_to_text(_digest_posts(world)[-1].args["blocks"])
    assert awake in second and snoozed not in second
    assert "1 snoozed" in second
    listing = blocks_to_text(world.listing()["blocks"])
    assert snoozed in listing
    assert f"Snoozed by @{APPROVER} until" in listing


def test_the_digest_marks_long_waits_at_the_top_and_in_flight_updates_as_such(
    world: World,
) -> None:
    old = world.simulator.add_image(region="us-east-1", name="Win-Old")
    busy = world.simulator.add_image(region="us-east-1", name="Win-Busy")
    world.listing()  # first sighting of both
    with session_scope(world.services.engine) as session:
        sighting = session.get(Sighting, f"123456789012:us-east-1:{old}")
        assert sighting is not None
        sighting.first_seen_at = utcnow() - timedelta(days=20)
        session.add(sighting)
        session.commit()
    world.answer(world.click(world.approve_button(world.listing(), busy)))

    digests.post_digest(world.services, channel_id="C0DIGEST", user_id=APPROVER)

    blocks = _digest_posts(world)[-1].args["blocks"]
    top = blocks_to_text(blocks[:2])
    assert "waiting more than 14 days" in top and "Win-Old" in top
    text = blocks_to_text(blocks)
    assert "waiting 20 days" in text
    busy_part = text.split("Win-Busy")[1].split("Win-Old")[0]
    assert "building" in busy_part
    assert world.image_button({"blocks": blocks}, busy, "approve") is None
    assert world.image_button({"blocks": blocks}, old, "approve") is not None


def test_a_digest_with_nothing_to_do_is_one_line_or_nothing_when_quiet(world: World) -> None:
    world.simulator.add_image(region="us-east-1", name="Win-Fine", update_available=False)
    assert digests.post_digest(world.services, channel_id="C0DIGEST", user_id=APPROVER) == 1
    assert "No WorkSpaces image needs an update" in str(_digest_posts(world)[0].args)
    quiet = digests.post_digest(world.services, channel_id="C0DIGEST", user_id=APPROVER, quiet=True)
    assert quiet == 0 and len(_digest_posts(world)) == 1


def test_posting_to_many_channels_waits_out_rate_limits(world: World) -> None:
    world.simulator.add_image(region="us-east-1", name="Win-Busy-Channels")
    channels = [f"C0MANY{n}" for n in range(6)]
    for channel in channels:
        _subscribe(world, "subscribe 10:00 UTC", channel_id=channel)
        _backdate(world, channel, _utc(2026, 11, 20, 9))
    world.slack.rate_limit("chat.postMessage", times=3, retry_after=1)

    report = run_due(world.services, now=_utc(2026, 11, 20, 10, 1))

    assert len(report.posted) == len(channels) and report.failed == []
    for channel in channels:
        assert len(_digest_posts(world, channel)) == 1


def test_a_digest_over_1200_images_in_10_regions_breaks_no_limit_and_reaches_every_image(
    world: World,
) -> None:
    regions = [f"eu-test-{n}" for n in range(1, 11)]
    expected = {
        world.simulator.add_image(region=region, name=f"Win-{region}-{n}")
        for region in regions
        for n in range(120)
    }
    settings = world.services.settings.model_copy(update={"regions": regions})
    services = build_services(settings)
    url, server = serve(services)
    try:
        user = SlackUser(url, SIGNING_SECRET, world.slack)
        posted = digests.post_digest(services, channel_id="C0BIG", user_id=APPROVER)
        messages = _digest_posts(world, "C0BIG")
        assert posted == len(messages) >= 1
        assert all(m.ok for m in messages)  # the stand-in refuses any Block Kit limit break
        reached: set[str] = set()
        for message in messages:
            for opener in find_buttons(message.args["blocks"]):
                if not opener["action_id"].startswith("wsimg.open"):
                    continue
                result = user.click(
                    opener["action_id"], opener["value"], user_id=APPROVER, channel_id="C0BIG"
                )
                page = world.slack.wait_for_response(result.response_url, timeout=30)
                pages = [page, *_following(world, user, page, "C0BIG")]
                for listed in pages:
                    text = blocks_to_text(listed["blocks"])
                    reached |= {i for i in expected if i in text}
    finally:
        server.stop()
        services.engine.dispose()
    assert reached == expected


def _following(world: World, user: SlackUser, page: dict, channel_id: str) -> list[dict]:
    out = []
    while True:
        nexts = [
            b
            for b in find_buttons(page["blocks"])
            if b["action_id"].startswith("wsimg.page") and "Next" in b["text"]
        ]
        if not nexts:
            return out
        button = nexts[0]
        result = user.click(
            button["action_id"], button["value"], user_id=APPROVER, channel_id=channel_id
        )
        page = world.slack.wait_for_response(result.response_url, timeout=30)
        out.append(page)


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
            for page in [first, *_following(world, user, first, channel_id)]:
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

    messages = _digest_posts(world)
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

    seen = _seen(_digest_posts(world))
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

        messages = _digest_posts(world, "C0BIG")
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

        messages = _digest_posts(world, "C0BIG")
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

    messages = blocks.digest(report)

    assert all(validate_blocks(m["blocks"]) == [] for m in messages)
    sections = [b for m in messages for b in m["blocks"] if b.get("accessory")]
    assert len(sections) > max(pages)  # pages too long for one section went into several
    seen = "\n".join(blocks_to_text(m["blocks"]) for m in messages)
    for entry in entries:
        line = _line_of(seen, f"{entry.offer.image_id}`")
        assert entry.offer.image_name[:99] in line and "building" in line


def test_a_digest_longer_than_50_blocks_goes_out_in_numbered_messages() -> None:
    body = [section(f"block {n}") for n in range(120)]
    messages = blocks._split([section("head")], body, "digest")
    assert [len(m["blocks"]) for m in messages] == [50, 50, 23]
    assert (
        blocks_to_text(messages[1]["blocks"][:1]) == "WorkSpaces image digest, continued (2 of 3)"
    )
    shown = [b for m in messages for b in m["blocks"] if b["type"] == "section"]
    assert shown == [section("head"), *body]


def _with_env(world: World, **update: object) -> Services:
    settings = world.services.settings.model_copy(update=update)
    return dataclasses.replace(world.services, settings=settings)


def test_the_default_subscription_follows_the_environment_unless_slack_changed_it(
    world: World,
) -> None:
    start = _with_env(world, digest_channel="C0DEFAULT", digest_cron="0 9 * * *", timezone=BERLIN)
    digests.ensure_default_subscription(start)
    digests.ensure_default_subscription(start)  # a second process starting: no second row
    first = _subscription(world, "C0DEFAULT")
    assert first is not None and (first.cron, first.timezone, first.source) == (
        "0 9 * * *",
        BERLIN,
        "env",
    )

    redeployed = _with_env(world, digest_channel="C0DEFAULT", digest_cron="0 7 * * 1-5")
    digests.ensure_default_subscription(redeployed)
    changed = _subscription(world, "C0DEFAULT")
    assert changed is not None and changed.cron == "0 7 * * 1-5"

    _subscribe(world, "subscribe 10:15 UTC", channel_id="C0DEFAULT")
    digests.ensure_default_subscription(start)
    kept = _subscription(world, "C0DEFAULT")
    assert kept is not None and (kept.cron, kept.timezone) == ("15 10 * * *", "UTC")

    world.answer(world.command("unsubscribe", channel_id="C0DEFAULT"))
    digests.ensure_default_subscription(redeployed)
    stopped = _subscription(world, "C0DEFAULT")
    assert stopped is not None and not stopped.active


# --- who may change digests, and how often -----------------------------------------------------


@pytest.mark.parametrize("text", ["subscribe 08:30 UTC", "unsubscribe", "digest"])
def test_a_non_approver_may_not_change_or_post_digests(world: World, text: str) -> None:
    _subscribe(world, "subscribe 09:00 UTC")  # an approver's subscription
    before = _subscription(world)
    posts = len(_digest_posts(world))

    answer = blocks_to_text(
        world.answer(world.command(text, user_id=OUTSIDER, channel_id="C0DIGEST"))["blocks"]
    )

    assert "only approvers (WSIMG_APPROVERS) and digest managers" in answer
    after = _subscription(world)
    assert after is not None and before is not None
    assert (after.cron, after.timezone, after.active) == (before.cron, before.timezone, True)
    assert len(_digest_posts(world)) == posts
    with session_scope(world.services.engine) as session:
        refusals = session.exec(
            select(Event).where(Event.kind == "approval_refused", Event.actor == OUTSIDER)
        ).all()
    assert len(refusals) == 1


def test_a_digest_manager_may_subscribe_and_post(world: World) -> None:
    world.services.policy = ApproverPolicy(
        users=[APPROVER],
        groups=[],
        members=SlackGroups(world.services.slack),
        digest_managers=[OUTSIDER],
    )
    answer = blocks_to_text(
        world.answer(world.command("subscribe 08:30 UTC", user_id=OUTSIDER, channel_id="C0DIGEST"))[
            "blocks"
        ]
    )
    assert "subscribed this channel" in answer
    world.answer(world.command("digest", user_id=OUTSIDER, channel_id="C0DIGEST"))
    assert _digest_posts(world)


@pytest.mark.parametrize(
    ("text", "every"),
    [
        ("subscribe * * * * * UTC", "every 1 minute"),
        ("subscribe */30 * * * *", "every 30 minute"),
        ("subscribe 0,15 9 * * 1", "every 15 minute"),  # only on Mondays, still too often
        ("subscribe 0 9,10 * * * Europe/Berlin", None),  # an hour apart: allowed
    ],
)
def test_a_slack_subscription_fires_at_most_every_minimum(
    world: World, text: str, every: str | None
) -> None:
    answer = blocks_to_text(_subscribe(world, text)["blocks"])
    if every is None:
        assert "subscribed this channel" in answer
        return
    assert every in answer and "at most every 60 minutes (WSIMG_MIN_DIGEST_MINUTES)" in answer
    assert _subscription(world) is None


def test_a_schedule_that_never_comes_is_refused(world: World) -> None:
    answer = blocks_to_text(_subscribe(world, "subscribe 0 0 31 2 *")["blocks"])
    assert "never comes" in answer and _subscription(world) is None


def test_the_operators_own_cron_is_not_limited(world: World) -> None:
    settings = world.services.settings.model_copy(
        update={"digest_channel": "C0ENV", "digest_cron": "*/5 * * * *"}
    )
    services = build_services(settings)
    try:
        ensure_default_subscription(services)
    finally:
        services.engine.dispose()
    found = _subscription(world, "C0ENV")
    assert found is not None and found.cron == "*/5 * * * *"


def test_the_shortest_gap_sees_a_leap_day_and_dst() -> None:
    leap = Schedule("0,30 9 29 2 *", "UTC")
    gap, fires = shortest_gap(leap, start=_utc(2028, 3, 1), below=60, horizon=timedelta(days=400))
    assert (gap, fires) == (None, 0)  # no 29 February in the 400 days after 2028-03-01
    gap, fires = shortest_gap(
        leap, start=_utc(2027, 3, 1), below=60, horizon=timedelta(days=366 * 2)
    )
    assert gap == timedelta(minutes=30)
    # 02:30 and 03:30 in Berlin are the same moment on the spring-forward day: not a 0 gap.
    dst = Schedule("30 2,3 * * *", BERLIN)
    gap, _ = shortest_gap(dst, start=_utc(2026, 3, 27), below=60, horizon=timedelta(days=5))
    assert gap == timedelta(hours=1)
