"""Digests: schedules and their time zones, exactly one post per slot, snoozes, large fleets."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import select

from bot.domain import digests
from bot.domain.digests import (
    Schedule,
    due_slots,
    ensure_default_subscription,
    run_due,
    shortest_gap,
)
from bot.domain.policy import ApproverPolicy
from bot.fakes.slack import SlackUser, blocks_to_text, find_buttons
from bot.runtime import Services, build_services
from bot.slack.groups import SlackGroups
from storage import crud
from storage.db import session_scope
from storage.models import (
    DigestSlot,
    Event,
    Sighting,
    Subscription,
    utcnow,
)
from tests.bot.digest_kit import digest_posts, following
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
    assert len(digest_posts(world)) == 1


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
    assert len(digest_posts(world)) == 1


def test_a_slot_missed_by_more_than_the_grace_is_recorded_as_skipped(world: World) -> None:
    world.simulator.add_image(region="us-east-1", name="Win-Late")
    _subscribe(world, "subscribe 09:00 UTC")
    _backdate(world, "C0DIGEST", _utc(2026, 11, 20, 7, 30))

    report = run_due(world.services, now=_utc(2026, 11, 20, 11, 30))

    assert report.posted == [] and report.skipped == ["2026-11-20T09:00:00"]
    assert digest_posts(world) == []
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
    assert len(digest_posts(world)) == 1


def test_snooze_hides_an_image_from_digests_and_updates_shows_who_snoozed_it(
    world: World,
) -> None:
    snoozed = world.simulator.add_image(region="us-east-1", name="Win-Sleepy")
    awake = world.simulator.add_image(region="us-east-1", name="Win-Awake")
    digests.post_digest(world.services, channel_id="C0DIGEST", user_id=APPROVER)
    [post] = digest_posts(world)
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
    second = blocks_to_text(digest_posts(world)[-1].args["blocks"])
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

    blocks = digest_posts(world)[-1].args["blocks"]
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
    said = str(digest_posts(world)[0].args)
    assert "No WorkSpaces image needs an update today. As AWS showed it just now (" in said
    quiet = digests.post_digest(world.services, channel_id="C0DIGEST", user_id=APPROVER, quiet=True)
    assert quiet == 0 and len(digest_posts(world)) == 1


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
        assert len(digest_posts(world, channel)) == 1


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
        messages = digest_posts(world, "C0BIG")
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
                pages = [page, *following(world, user, page, "C0BIG")]
                for listed in pages:
                    text = blocks_to_text(listed["blocks"])
                    reached |= {i for i in expected if i in text}
    finally:
        server.stop()
        services.engine.dispose()
    assert reached == expected


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
    posts = len(digest_posts(world))

    answer = blocks_to_text(
        world.answer(world.command(text, user_id=OUTSIDER, channel_id="C0DIGEST"))["blocks"]
    )

    assert "only approvers (WSIMG_APPROVERS) and digest managers" in answer
    after = _subscription(world)
    assert after is not None and before is not None
    assert (after.cron, after.timezone, after.active) == (before.cron, before.timezone, True)
    assert len(digest_posts(world)) == posts
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
    assert digest_posts(world)


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


def test_a_digest_that_fails_unexpectedly_is_recorded_failed_not_left_claimed(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fault that is not an AWS or Slack error (the interpreter shutting down under the
    scan, a bug) still ends the slot: it is recorded failed with the error's type, and the
    error goes on to the scheduler, which logs it with its traceback."""
    world.simulator.add_image(region="us-east-1", name="Win-Fault")
    _subscribe(world, "subscribe 09:00 UTC")
    _backdate(world, "C0DIGEST", _utc(2026, 11, 20, 8, 30))

    def fault(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("cannot schedule new futures after interpreter shutdown")

    monkeypatch.setattr(world.services.gateway, "list_images", fault)
    with pytest.raises(RuntimeError):
        run_due(world.services, now=_utc(2026, 11, 20, 9, 0, 10))

    with session_scope(world.services.engine) as session:
        [slot] = session.exec(select(DigestSlot)).all()
    assert slot.state == "failed"
    assert slot.detail == "unexpected RuntimeError: see the process log"
    assert digest_posts(world) == []


def test_a_slot_claimed_by_a_process_killed_while_posting_is_not_posted_again(
    world: World,
) -> None:
    """At most once: a slot left claimed (its process killed mid-post, so the post may have
    gone out) is never posted by another process; the next slot is."""
    world.simulator.add_image(region="us-east-1", name="Win-Killed")
    _subscribe(world, "subscribe 09:00 UTC")
    _backdate(world, "C0DIGEST", _utc(2026, 11, 20, 8, 30))
    with session_scope(world.services.engine) as session:
        [subscription] = session.exec(select(Subscription)).all()
    nine = _utc(2026, 11, 20, 9, 0)
    assert digests._claim(world.services, subscription, nine, "claimed", "killed", None)

    after = run_due(world.services, now=nine + timedelta(seconds=30), worker_id="heir")
    next_day = run_due(world.services, now=nine + timedelta(days=1, seconds=30))

    assert after.posted == [] and after.skipped == []
    assert next_day.posted == ["2026-11-21T09:00:00"]
    assert len(digest_posts(world)) == 1


def test_a_digest_says_how_old_the_scan_it_shows_is(world: World) -> None:
    """Digests read the shared scan, as listings do, and say when AWS showed it: with
    something to do, under the heading; with nothing, on its one line. No Refresh button is
    promised (a digest has none); the command that asks again is named."""
    world.simulator.add_image(region="us-east-1", name="Win-Aged")
    digests.post_digest(world.services, channel_id="C0DIGEST", user_id=APPROVER)

    [busy] = digest_posts(world, "C0DIGEST")
    text = blocks_to_text(busy.args["blocks"])
    assert "As AWS showed it just now (" in text
    assert "/wsimg updates refresh` asks again" in text and "*Refresh*" not in text
    assert text.index("WorkSpaces image digest") < text.index("As AWS showed it")
    assert world.simulator.count("DescribeWorkspaceImages") > 0
