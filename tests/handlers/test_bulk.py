"""Bulk approval through the real app: "Approve all N" makes one request per image, exactly
once; at most WSIMG_MAX_CONCURRENT_UPDATES build at once and the rest start as builds finish;
a batch over the region's image quota is refused with the numbers; with four eyes one decision
covers the batch."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import pytest
from sqlmodel import select

from bot.config import Settings
from bot.domain import bulk, decisions
from bot.fakes.slack import Message, SlackUser, find_buttons, validate_blocks
from bot.runtime import build_services
from bot.slack.render import blocks_to_text
from storage.db import session_scope
from storage.models import Batch, Event, State, UpdateRequest
from tests.conftest import (
    APPROVER,
    GROUP_MEMBER,
    OUTSIDER,
    SIGNING_SECRET,
    World,
    serve,
    serve_app,
    wait_until,
)

CAP = 4


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"max_concurrent_updates": CAP})


def _bulk_buttons(message: dict[str, Any]) -> list[dict[str, Any]]:
    return [b for b in find_buttons(message["blocks"]) if b["action_id"].startswith("wsimg.bulk")]


def _fleet(world: World, count: int, region: str = "eu-west-1") -> list[str]:
    return [world.simulator.add_image(region=region, name=f"Win11-Desk-{n}") for n in range(count)]


def _text(message: dict[str, Any] | Message) -> str:
    blocks = message.blocks if isinstance(message, Message) else message["blocks"]
    return blocks_to_text(blocks)


def _building(world: World) -> int:
    """Images the simulator holds PENDING that a CreateUpdatedWorkspaceImage made."""
    made = {
        c.params["Name"]
        for c in world.simulator.calls
        if c.operation == "CreateUpdatedWorkspaceImage"
    }
    return sum(
        1
        for image in world.simulator.images()
        if image["Name"] in made and image["State"] == "PENDING"
    )


def _batch_message(world: World) -> Message:
    with session_scope(world.services.engine) as session:
        [batch] = session.exec(select(Batch)).all()
    assert batch.channel_id and batch.message_ts
    message = world.slack.message(batch.channel_id, batch.message_ts)
    assert message is not None
    return message


def test_approve_all_creates_each_image_once_at_most_cap_at_a_time(world: World) -> None:
    images = _fleet(world, 10)
    listing = world.listing()
    [button] = _bulk_buttons(listing)
    assert button["text"] == "Approve all 10"
    assert "10 new images" in button["confirm"]["text"]["text"]  # the confirm names the count

    answer = world.answer(world.click(button))
    assert "Approved 10 updates" in _text(answer)
    assert f"{CAP} building, {10 - CAP} queued" in _text(answer)
    world.settle()

    requests = world.requests()
    assert sorted(r.source_image_id for r in requests) == sorted(images)
    assert len(world.creates()) == CAP
    assert _building(world) == CAP
    message = _batch_message(world)
    assert validate_blocks(message.blocks) == []
    assert f"{10 - CAP} queued" in _text(message) and f"{CAP} building" in _text(message)

    # As builds finish, queued requests start, never more than CAP building at once.
    for _ in range(5):
        world.simulator.complete_pending()
        world.poll()
        assert _building(world) <= CAP
    created = Counter(c["SourceImageId"] for c in world.creates())
    assert created == Counter(images)  # every image once, none twice
    assert {r.state for r in world.requests()} == {State.available}
    assert "10 AVAILABLE" in _text(_batch_message(world))
    # Each follow-up went to the batch's thread.
    thread = world.slack.thread(message.channel, message.ts)
    assert sum("AVAILABLE" in _text(reply) for reply in thread) >= 10

    # The same button again (a retry, another approver) makes nothing.
    again = world.answer(world.click(button, user_id=GROUP_MEMBER))
    assert f"@{APPROVER} already clicked this" in _text(again)
    assert len(world.creates()) == 10


def test_twenty_concurrent_clicks_on_approve_all_make_one_batch(world: World) -> None:
    images = _fleet(world, 6)
    [button] = _bulk_buttons(world.listing())

    with ThreadPoolExecutor(max_workers=20) as pool:
        results = list(pool.map(lambda _: world.click(button), range(20)))
    assert all(r.status == 200 for r in results)
    world.settle()

    with session_scope(world.services.engine) as session:
        assert len(session.exec(select(Batch)).all()) == 1
    assert sorted(r.source_image_id for r in world.requests()) == sorted(images)
    sources = [c["SourceImageId"] for c in world.creates()]
    assert len(sources) == len(set(sources)) == CAP  # none twice, the cap held


def test_a_batch_over_the_image_quota_is_refused_with_the_numbers(
    world: World, settings: Settings
) -> None:
    _fleet(world, 8)
    world.simulator.add_image(region="eu-west-1", name="Current", update_available=False)
    services = build_services(settings.model_copy(update={"image_quota": 12}))
    url, server = serve(services)
    try:
        user = SlackUser(url, SIGNING_SECRET, world.slack)
        result = user.command("updates", user_id=APPROVER, channel_id="C0OPS")
        listing = world.slack.wait_for_response(
            result.response_url, lambda p: bool(p.get("blocks")), timeout=30
        )
        [button] = _bulk_buttons(listing)
        click = user.click(button["action_id"], button["value"], user_id=APPROVER)
        answer = world.slack.wait_for_response(click.response_url, timeout=30)
    finally:
        server.stop()
        services.engine.dispose()
    text = _text(answer)
    assert "Nothing was started" in text
    assert "eu-west-1 in account 123456789012 holds 9 images" in text
    assert "these 8 updates would make 17, over its quota of 12 (room for 3)" in text
    assert world.requests() == [] and world.creates() == []


def test_someone_not_an_approver_is_refused_and_nothing_is_made(world: World) -> None:
    _fleet(world, 3)
    [button] = _bulk_buttons(world.listing())
    answer = world.answer(world.click(button, user_id=OUTSIDER))
    assert "may not approve" in _text(answer)
    assert world.requests() == [] and world.creates() == []
    with session_scope(world.services.engine) as session:
        refused = session.exec(select(Event).where(Event.kind == "approval_refused")).all()
    assert [e.actor for e in refused] == [OUTSIDER]


def test_snoozed_and_in_flight_images_are_left_out(world: World) -> None:
    images = _fleet(world, 5)
    world.approve(images[0])
    listing = world.listing()
    snooze = world.image_button(listing, images[1], "snooze")
    assert snooze is not None
    world.answer(world.click(snooze))
    [button] = _bulk_buttons(world.listing())
    assert button["text"] == "Approve all 3"

    answer = world.answer(world.click(button))
    assert "Approved 3 updates" in _text(answer)
    world.settle()
    assert Counter(c["SourceImageId"] for c in world.creates()) == Counter([images[0], *images[2:]])


def test_each_group_of_the_summary_approves_only_its_images(world: World) -> None:
    regions = ["us-east-1", "eu-west-1"]
    by_region = {region: _fleet(world, 20, region) for region in regions}
    summary = world.listing()
    buttons = _bulk_buttons(summary)
    assert [b["text"] for b in buttons] == ["Approve all 20", "Approve all 20"]
    assert validate_blocks(summary["blocks"]) == []

    world.answer(world.click(buttons[1]))
    world.settle()
    picked = {r.source_image_id for r in world.requests()}
    assert picked in ({*by_region["us-east-1"]}, {*by_region["eu-west-1"]})
    assert len(world.creates()) == CAP


# --- four eyes ---------------------------------------------------------------------------------


@pytest.fixture
def four_eyes(world: World, settings: Settings) -> Iterator[Any]:
    services = build_services(settings.model_copy(update={"four_eyes": True}))
    url, server, listeners = serve_app(services)
    try:
        yield SlackUser(url, SIGNING_SECRET, world.slack)
    finally:
        listeners.settle(30)  # what its clicks set going ends before its database goes
        server.stop()
        services.engine.dispose()


def _ask(world: World, user: Any, text: str = "updates") -> dict[str, Any]:
    result = user.command(text, user_id=APPROVER, channel_id="C0OPS")
    return world.slack.wait_for_response(result.response_url, lambda p: bool(p.get("blocks")))


def _decide(world: World, user: Any, label: str, *, user_id: str) -> str:
    message = _batch_message(world)
    [button] = [b for b in find_buttons(message.blocks) if b["text"].startswith(label)]
    result = user.click_button(button, user_id=user_id, message=message)
    assert result.status == 200
    return _text(world.slack.wait_for_response(result.response_url, timeout=15))


def test_with_four_eyes_one_decision_by_another_approver_covers_the_batch(
    world: World, four_eyes: Any
) -> None:
    images = _fleet(world, 6)
    [button] = _bulk_buttons(_ask(world, four_eyes))
    assert button["text"] == "Request all 6"
    click = four_eyes.click(button["action_id"], button["value"], user_id=APPROVER)
    assert "Asked for 6 updates" in _text(world.slack.wait_for_response(click.response_url))
    assert {r.state for r in world.requests()} == {State.requested}
    assert world.creates() == []
    message = _batch_message(world)
    assert "Approve all 6" in [b["text"] for b in find_buttons(message.blocks)]

    assert "a different approver" in _decide(world, four_eyes, "Approve all", user_id=APPROVER)
    assert world.creates() == []

    message = _batch_message(world)
    [approve] = [b for b in find_buttons(message.blocks) if b["text"].startswith("Approve all")]
    result = four_eyes.click_button(approve, user_id=GROUP_MEMBER, message=message)
    assert result.status == 200

    def started() -> Counter[str]:
        states = Counter(r.state for r in world.requests())
        return states if states[State.pending] == CAP else Counter()

    states = wait_until(started, "the first builds")
    assert states[State.pending] == CAP and states[State.approved] == 6 - CAP
    assert {r.approved_by for r in world.requests()} == {GROUP_MEMBER}
    assert not any(
        b["text"].startswith("Approve") for b in find_buttons(_batch_message(world).blocks)
    )
    for _ in range(3):
        world.simulator.complete_pending()
        world.poll()
    assert Counter(c["SourceImageId"] for c in world.creates()) == Counter(images)


def test_with_four_eyes_reject_all_closes_every_request_with_the_reason(
    world: World, four_eyes: Any
) -> None:
    _fleet(world, 3)
    [button] = _bulk_buttons(_ask(world, four_eyes))
    click = four_eyes.click(button["action_id"], button["value"], user_id=APPROVER)
    world.slack.wait_for_response(click.response_url)
    message = _batch_message(world)
    [reject] = [b for b in find_buttons(message.blocks) if b["text"] == "Reject all"]
    four_eyes.click_button(reject, user_id=GROUP_MEMBER, message=message)
    modal = world.slack.wait_for_view(GROUP_MEMBER, callback_id="wsimg.close")
    assert "3 images" in str(modal)
    assert four_eyes.submit_view(
        modal, {"reason": "not this week"}, user_id=GROUP_MEMBER
    ).view_closed

    def closed() -> bool:
        return {r.state for r in world.requests()} == {State.rejected}

    wait_until(closed, "every request rejected")
    assert {r.close_reason for r in world.requests()} == {"not this week"}
    assert world.creates() == []
    wait_until(lambda: "not this week" in _text(_batch_message(world)), "the message shows it")


def test_single_approvals_share_the_cap_and_a_queued_one_starts_when_a_build_ends(
    world: World,
) -> None:
    images = _fleet(world, CAP + 1)
    for image in images:
        world.approve(image)
    assert len(world.creates()) == CAP
    [queued] = world.requests(images[-1])
    assert queued.state == State.approved and queued.worker_id is None
    announcement = world.slack.message(queued.channel_id or "", queued.message_ts or "")
    assert announcement is not None and "queued" in _text(announcement)
    with session_scope(world.services.engine) as session:
        kinds = [e.kind for e in session.exec(select(Event).where(Event.request_id == queued.id))]
    assert kinds.count("queued") == 1

    world.poll()  # every slot still held: nothing starts
    assert len(world.creates()) == CAP
    world.simulator.complete_pending()
    world.poll()
    assert Counter(c["SourceImageId"] for c in world.creates()) == Counter(images)
    assert world.reload(queued).state == State.pending


OTHER_ACCOUNT = "210987654321"
ROLE = f"arn:aws:iam::{OTHER_ACCOUNT}:role/wsimg"


def test_an_account_filter_lists_and_approves_only_that_accounts_images(
    world: World, settings: Settings
) -> None:
    own = _fleet(world, 4)
    other = [
        world.simulator.add_image(region="eu-west-1", account_id=OTHER_ACCOUNT, name=f"Other-{n}")
        for n in range(3)
    ]
    services = build_services(settings.model_copy(update={"role_arns": [ROLE]}))
    url, server = serve(services)
    try:
        user = SlackUser(url, SIGNING_SECRET, world.slack)
        asked = user.command(f"updates {OTHER_ACCOUNT}", user_id=APPROVER, channel_id="C0OPS")
        listing = world.slack.wait_for_response(
            asked.response_url, lambda p: bool(p.get("blocks")), timeout=30
        )
        text = _text(listing)
        assert f"in account {OTHER_ACCOUNT}" in text
        assert all(image in text for image in other) and not any(i in text for i in own)
        [button] = _bulk_buttons(listing)
        assert button["text"] == "Approve all 3"
        click = user.click(button["action_id"], button["value"], user_id=APPROVER)
        assert "Approved 3 updates" in _text(world.slack.wait_for_response(click.response_url))
    finally:
        server.stop()
        services.engine.dispose()
    creates = [c for c in world.simulator.calls if c.operation == "CreateUpdatedWorkspaceImage"]
    assert sorted(c.params["SourceImageId"] for c in creates) == sorted(other)
    assert {c.account for c in creates} == {OTHER_ACCOUNT}  # made through the role


def _request_all(world: World, user: Any, count: int) -> None:
    [button] = _bulk_buttons(_ask(world, user))
    click = user.click(button["action_id"], button["value"], user_id=APPROVER)
    assert f"Asked for {count} updates" in _text(world.slack.wait_for_response(click.response_url))


def test_with_four_eyes_a_batch_nobody_decides_expires_whole(world: World, four_eyes: Any) -> None:
    _fleet(world, 3)
    _request_all(world, four_eyes, 3)
    assert bulk.expire_batches(world.services) == 0
    with session_scope(world.services.engine) as session:
        for row in [*session.exec(select(Batch)), *session.exec(select(UpdateRequest))]:
            row.created_at -= timedelta(hours=25)
            session.add(row)
        session.commit()
    # The requests' own expiry leaves them to their batch, which expires them in one go.
    assert decisions.expire_requests(world.services) == 0
    assert bulk.expire_batches(world.services) == 1
    assert {r.state for r in world.requests()} == {State.expired}
    message = _batch_message(world)
    assert "expired" in _text(message) and not find_buttons(message.blocks)


def test_with_four_eyes_only_the_requester_or_an_approver_may_cancel_the_batch(
    world: World, four_eyes: Any
) -> None:
    _fleet(world, 2)
    _request_all(world, four_eyes, 2)
    message = _batch_message(world)
    [cancel] = [b for b in find_buttons(message.blocks) if b["text"] == "Cancel request"]
    refused = four_eyes.click_button(cancel, user_id=OUTSIDER, message=message)
    answer = _text(world.slack.wait_for_response(refused.response_url, timeout=15))
    assert "Only the person who asked for this update, or an approver, may cancel it" in answer
    four_eyes.click_button(cancel, user_id=APPROVER, message=message)
    modal = world.slack.wait_for_view(APPROVER, callback_id="wsimg.close")
    assert four_eyes.submit_view(modal, {"reason": "wrong region"}, user_id=APPROVER).view_closed
    wait_until(lambda: {r.state for r in world.requests()} == {State.cancelled}, "both cancelled")
    assert {r.closed_by for r in world.requests()} == {APPROVER}
    assert world.creates() == []


def test_one_account_and_regions_pages_offer_approve_all_on_the_first(world: World) -> None:
    images = _fleet(world, 30)  # over one page: one account and region, no summary
    world.simulator.image_limit = 100  # a quota raised for 30 images and their updates
    world.services.settings = world.services.settings.model_copy(update={"image_quota": 100})
    first = world.listing("updates eu-west-1")
    assert "page 1 of 2" in _text(first)
    [button] = _bulk_buttons(first)
    assert button["text"] == "Approve all 30"
    later = world.answer(
        world.click(next(b for b in find_buttons(first["blocks"]) if "Next" in b["text"]))
    )
    assert _bulk_buttons(later) == []  # the count is of the whole listing: on its first page

    assert "Approved 30 updates" in _text(world.answer(world.click(button)))
    world.settle()
    assert sorted(r.source_image_id for r in world.requests()) == sorted(images)
    assert len(world.creates()) == CAP


def test_a_forged_approve_all_on_an_unfiltered_summary_makes_nothing(world: World) -> None:
    for region in ("us-east-1", "eu-west-1"):
        _fleet(world, 20, region)
    group = _bulk_buttons(world.listing())[0]
    # The whole fleet's button is never drawn on an unfiltered summary: forge it from a group's.
    forged = {**group, "action_id": "wsimg.bulk:all:40"}
    assert "no longer valid" in _text(world.answer(world.click(forged)))
    # Nor a button without the count its confirm named.
    bare = {**group, "action_id": "wsimg.bulk:group:0"}
    assert "no longer valid" in _text(world.answer(world.click(bare)))
    assert world.requests() == [] and world.creates() == []


def test_approve_all_never_takes_more_than_its_confirm_named(world: World) -> None:
    images = _fleet(world, 3)
    world.simulator.fail_build(images[0], "UpdateFailed", "The update failed.")
    world.approve(images[0])
    [button] = _bulk_buttons(world.listing())
    assert button["text"] == "Approve all 2"  # the first is building
    world.simulator.complete_pending()
    world.poll()  # it ended in ERROR: it may be approved again, so "all" is now three

    answer = _text(world.answer(world.click(button)))
    assert "3 images can be approved now, not the 2 you confirmed" in answer
    assert len(world.requests()) == 1 and len(world.creates()) == 1


def test_a_request_of_a_batch_cannot_be_decided_on_its_own(world: World, four_eyes: Any) -> None:
    _fleet(world, 2)
    _request_all(world, four_eyes, 2)
    message = _batch_message(world)
    one = world.requests()[0]
    # A forged single Approve on the batch's message, naming one of its requests.
    forged = four_eyes.click("wsimg.confirm:0", one.id, user_id=GROUP_MEMBER, message=message)
    assert "no longer valid" in _text(world.slack.wait_for_response(forged.response_url))
    assert {r.state for r in world.requests()} == {State.requested}
    assert world.creates() == []


def test_the_queued_updates_of_a_batch_can_be_stopped_and_those_building_go_on(
    world: World,
) -> None:
    _fleet(world, 10)
    [button] = _bulk_buttons(world.listing())
    world.answer(world.click(button))
    world.settle()
    message = _batch_message(world)
    [stop] = [b for b in find_buttons(message.blocks) if b["text"].startswith("Stop")]
    assert stop["text"] == f"Stop the {10 - CAP} queued"

    refused = world.user.click_button(stop, user_id=OUTSIDER, message=message)
    assert "may cancel it" in _text(world.slack.wait_for_response(refused.response_url))
    assert Counter(r.state for r in world.requests())[State.approved] == 10 - CAP

    world.user.click_button(stop, user_id=GROUP_MEMBER, message=message)
    world.settle()
    states = Counter(r.state for r in world.requests())
    assert states[State.cancelled] == 10 - CAP and states[State.pending] == CAP
    world.simulator.complete_pending()
    world.poll()
    assert len(world.creates()) == CAP  # nothing more started
    text = _text(_batch_message(world))
    assert f"{10 - CAP} cancelled" in text and f"{CAP} AVAILABLE" in text
    assert not any(b["text"].startswith("Stop") for b in find_buttons(_batch_message(world).blocks))


def test_a_big_batch_does_not_hold_back_an_approval_made_after_it(world: World) -> None:
    _fleet(world, 8)
    [button] = _bulk_buttons(world.listing())
    world.answer(world.click(button))  # CAP building, the other 4 queued
    world.settle()
    late = world.simulator.add_image(region="eu-west-1", name="Urgent")
    world.approve(late)  # every slot held: queued behind the batch's four
    [urgent] = world.requests(late)
    assert urgent.state == State.approved and urgent.worker_id is None

    world.simulator.complete_pending()
    world.poll()  # CAP slots free: the batch and the late one take turns

    assert world.reload(urgent).state == State.pending
    assert len(world.creates()) == 2 * CAP


def test_with_four_eyes_and_anyone_may_request_only_listed_people_request_in_bulk(
    world: World, four_eyes: Any
) -> None:
    images = _fleet(world, 3)
    result = four_eyes.command("updates", user_id=OUTSIDER, channel_id="C0OPS")
    listing = world.slack.wait_for_response(result.response_url, lambda p: bool(p.get("blocks")))
    [button] = _bulk_buttons(listing)
    click = four_eyes.click(button["action_id"], button["value"], user_id=OUTSIDER)
    answer = _text(world.slack.wait_for_response(click.response_url))
    assert "may not request updates in bulk" in answer
    assert world.requests() == []
    # One image at a time stays open to anyone in the channel (WSIMG_REQUESTERS is empty).
    single = world.approve_button(listing, images[0])
    four_eyes.click(single["action_id"], single["value"], user_id=OUTSIDER)
    wait_until(lambda: len(world.requests()) == 1, "the single request")


def test_with_four_eyes_a_batch_whose_updates_all_went_is_rejected_not_approved(
    world: World, four_eyes: Any
) -> None:
    images = _fleet(world, 2)
    _request_all(world, four_eyes, 2)
    for image in images:
        world.simulator.withdraw_update(image)
    answer = _decide(world, four_eyes, "Approve all", user_id=GROUP_MEMBER)
    assert "AWS no longer shows an update for any of its images" in answer
    assert {r.state for r in world.requests()} == {State.rejected}
    assert world.creates() == []
    with session_scope(world.services.engine) as session:
        [batch] = session.exec(select(Batch)).all()
    assert batch.state == "rejected"


def test_builds_stuck_for_half_a_day_give_their_slots_up_and_are_still_followed(
    world: World,
) -> None:
    images = _fleet(world, CAP + 1)
    [button] = _bulk_buttons(world.listing())
    world.answer(world.click(button))
    world.settle()
    world.poll()
    assert len(world.creates()) == CAP  # every slot held, one queued
    with session_scope(world.services.engine) as session:
        for request in session.exec(select(UpdateRequest).where(UpdateRequest.state == "pending")):
            assert request.submitted_at is not None
            request.submitted_at -= timedelta(hours=13)  # AWS never finished them
            session.add(request)
        session.commit()

    world.poll()

    assert Counter(c["SourceImageId"] for c in world.creates()) == Counter(images)
    states = Counter(r.state for r in world.requests())
    assert states[State.pending] == CAP + 1  # the stuck ones are still followed
    with session_scope(world.services.engine) as session:
        released = session.exec(select(Event).where(Event.kind == "slot_released")).all()
    assert len(released) == CAP
    world.simulator.complete_pending()
    world.poll()
    assert {r.state for r in world.requests()} == {State.available}
