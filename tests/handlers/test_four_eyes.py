"""The approval policy: four eyes, expiry, re-checks at every click, Reject and Cancel."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlmodel import select

from bot.config import Settings
from bot.domain import decisions
from bot.domain.naming import TAG_APPROVED_BY, TAG_REQUESTED_BY
from bot.fakes.slack import Message, find_buttons
from bot.jobs.scheduler import poll_job
from bot.slack.render import blocks_to_text
from storage.db import session_scope
from storage.models import Event, Listing, Offer, State, UpdateRequest, utcnow
from tests.conftest import APPROVER, GROUP_MEMBER, OUTSIDER, World

REQUESTER = APPROVER  # an approver too: four eyes still needs someone else
OTHER_APPROVER = GROUP_MEMBER


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"four_eyes": True})


def _request(world: World, image: str, *, user_id: str = REQUESTER) -> UpdateRequest:
    button = world.approve_button(world.listing(user_id=user_id), image)
    assert button["text"] == "Request update"
    answer = world.slack.wait_for_response(
        world.click(button, user_id=user_id).response_url, timeout=15
    )
    assert world.image_button(answer, image, "approve") is None
    [request] = world.requests(image)
    return request


def _announcement(world: World, request: UpdateRequest) -> Message:
    assert request.channel_id and request.message_ts
    message = world.slack.message(request.channel_id, request.message_ts)
    assert message is not None
    return message


def _decide(
    world: World, request: UpdateRequest, label: str, *, user_id: str
) -> tuple[Any, Message]:
    message = _announcement(world, request)
    [button] = [b for b in find_buttons(message.blocks) if b["text"] == label]
    result = world.user.click_button(button, user_id=user_id, message=message)
    assert result.status == 200
    return result, message


def _answer_to(world: World, result: Any) -> str:
    payload = world.slack.wait_for_response(result.response_url, timeout=15)
    return blocks_to_text(payload["blocks"])


def test_the_requester_cannot_approve_their_own_request_and_another_approver_can(
    world: World,
) -> None:
    image = world.simulator.add_image(region="us-east-1", name="Win-Four-Eyes")
    request = _request(world, image)
    assert request.state == State.requested and request.approved_by is None
    assert len(world.creates()) == 0
    text = blocks_to_text(_announcement(world, request).blocks)
    assert "asked for the WorkSpaces update" in text and "waiting for another approver" in text

    refused, _ = _decide(world, request, "Approve", user_id=REQUESTER)
    assert "needs a different approver" in _answer_to(world, refused)
    assert world.reload(request).state == State.requested
    assert len(world.creates()) == 0

    _decide(world, request, "Approve", user_id=OTHER_APPROVER)
    world.slack.wait_for(
        lambda c: c.method == "chat.update" and "building" in str(c.args), timeout=15
    )
    final = world.reload(request)
    assert final.state == State.pending
    assert (final.requested_by, final.approved_by) == (REQUESTER, OTHER_APPROVER)
    assert len(world.creates()) == 1
    tags = world.simulator.get_image(final.new_image_id)["Tags"]
    assert tags[TAG_REQUESTED_BY] == REQUESTER and tags[TAG_APPROVED_BY] == OTHER_APPROVER
    shown = blocks_to_text(_announcement(world, final).blocks)
    assert "[ Approve ]" not in shown and f"approved @{REQUESTER}'s request" in shown.replace(
        "<@", "@"
    )


def test_anyone_may_request_but_only_an_approver_may_approve(world: World) -> None:
    image = world.simulator.add_image(region="us-east-1", name="Win-Anyone")
    request = _request(world, image, user_id=OUTSIDER)
    assert request.requested_by == OUTSIDER

    refused, _ = _decide(world, request, "Approve", user_id=OUTSIDER)
    assert "may not approve" in _answer_to(world, refused)
    assert len(world.creates()) == 0 and world.reload(request).state == State.requested


def test_a_click_25_hours_after_the_request_answers_expired_and_calls_nothing(
    world: World,
) -> None:
    image = world.simulator.add_image(region="us-east-1", name="Win-Late")
    request = _request(world, image)
    _age(world, UpdateRequest, request.id, hours=25)
    world.simulator.clear_calls()

    late, _ = _decide(world, request, "Approve", user_id=OTHER_APPROVER)

    assert "expired" in _answer_to(world, late)
    assert world.simulator.calls == []
    final = world.reload(request)
    assert final.state == State.expired and final.active_key is None
    assert "Expired" in blocks_to_text(_announcement(world, final).blocks)


def test_a_listing_25_hours_old_answers_expired(world: World) -> None:
    image = world.simulator.add_image(region="us-east-1", name="Win-Old-List")
    button = world.approve_button(world.listing(), image)
    with session_scope(world.services.engine) as session:
        offer = session.exec(select(Offer).where(Offer.key == button["value"])).one()
    _age(world, Offer, offer.id, hours=25)
    world.simulator.clear_calls()

    answer = _answer_to(world, world.click(button))

    assert "expired" in answer and "/wsimg updates" in answer
    assert world.simulator.calls == [] and world.requests(image) == []


def test_listings_older_than_the_ttl_are_purged_and_their_events_kept(world: World) -> None:
    image = world.simulator.add_image(region="us-east-1", name="Win-Purged")
    old_button = world.approve_button(world.listing(), image)
    fresh_button = world.approve_button(world.listing(), image)
    with session_scope(world.services.engine) as session:
        offer = session.exec(select(Offer).where(Offer.key == old_button["value"])).one()
        events_before = len(session.exec(select(Event)).all())
    _age(world, Listing, offer.listing_id, hours=25)

    poll_job(world.services)  # the scheduler's job: poll, expire, purge

    with session_scope(world.services.engine) as session:
        listings = session.exec(select(Listing)).all()
        offers = session.exec(select(Offer)).all()
        assert len(session.exec(select(Event)).all()) >= events_before  # nothing deleted
    assert [listing.id for listing in listings] != [] and offer.listing_id not in {
        listing.id for listing in listings
    }
    assert old_button["value"] not in {o.key for o in offers}
    assert fresh_button["value"] in {o.key for o in offers}
    answer = _answer_to(world, world.click(old_button))
    assert "no longer valid" in answer and "/wsimg updates" in answer
    assert world.requests(image) == []


def test_requests_nobody_decided_expire_on_the_poller(world: World) -> None:
    image = world.simulator.add_image(region="us-east-1", name="Win-Forgotten")
    request = _request(world, image)
    assert decisions.expire_requests(world.services) == 0
    _age(world, UpdateRequest, request.id, hours=25)
    assert decisions.expire_requests(world.services) == 1
    assert world.reload(request).state == State.expired
    # the image can be asked for again
    assert world.image_button(world.listing(), image, "approve") is not None


def test_reject_asks_why_and_ends_the_request_with_the_reason(world: World) -> None:
    image = world.simulator.add_image(region="us-east-1", name="Win-Rejected")
    request = _request(world, image)

    _decide(world, request, "Reject", user_id=OTHER_APPROVER)
    view = world.slack.wait_for_view(OTHER_APPROVER, callback_id="wsimg.close")
    kept = world.user.submit_view(view, {"reason": "  a   "}, user_id=OTHER_APPROVER)
    assert kept.view_errors and not kept.view_closed  # too short once spaces are gone: stays
    done = world.user.submit_view(
        view, {"reason": "Not during the quarter close"}, user_id=OTHER_APPROVER
    )
    assert done.view_closed

    world.slack.wait_for(
        lambda c: c.method == "chat.update" and "Rejected by" in str(c.args), timeout=15
    )
    final = world.reload(request)
    assert final.state == State.rejected and final.closed_by == OTHER_APPROVER
    assert final.close_reason == "Not during the quarter close"
    assert len(world.creates()) == 0
    history = blocks_to_text(world.answer(world.command("history"))["blocks"])
    assert f"rejected by @{OTHER_APPROVER}" in history


def test_only_an_approver_may_reject_and_no_modal_opens_for_anyone_else(world: World) -> None:
    image = world.simulator.add_image(region="us-east-1", name="Win-Not-Yours")
    request = _request(world, image)
    refused, _ = _decide(world, request, "Reject", user_id=OUTSIDER)
    assert "may not reject" in _answer_to(world, refused)
    assert world.slack.views(OUTSIDER) == []


def test_the_requester_cancels_with_a_reason_and_the_image_is_offered_again(
    world: World,
) -> None:
    image = world.simulator.add_image(region="us-east-1", name="Win-Cancelled")
    request = _request(world, image, user_id=OUTSIDER)
    _decide(world, request, "Cancel request", user_id=OUTSIDER)
    view = world.slack.wait_for_view(OUTSIDER, callback_id="wsimg.close")
    assert world.user.submit_view(view, {"reason": "Asked by mistake"}).view_closed
    world.slack.wait_for(
        lambda c: c.method == "chat.update" and "Cancelled by" in str(c.args), timeout=15
    )
    final = world.reload(request)
    assert final.state == State.cancelled and final.close_reason == "Asked by mistake"
    assert world.image_button(world.listing(), image, "approve") is not None


def test_forged_decisions_call_nothing(world: World) -> None:
    first = world.simulator.add_image(region="us-east-1", name="Win-First")
    second = world.simulator.add_image(region="us-east-1", name="Win-Second")
    one, two = _request(world, first), _request(world, second)
    world.simulator.clear_calls()
    message = _announcement(world, one)
    [approve] = [b for b in find_buttons(message.blocks) if b["text"] == "Approve"]

    answers = []
    for value in (two.id, "0" * 32, "", "%", one.id[:8]):  # another request, random, LIKE
        forged = world.user.click(
            approve["action_id"], value, user_id=OTHER_APPROVER, message=message
        )
        answers.append(_answer_to(world, forged))
    assert all("no longer valid" in answer for answer in answers)

    _decide(world, one, "Approve", user_id=OTHER_APPROVER)  # the real one, once
    world.slack.wait_for(
        lambda c: c.method == "chat.update" and "building" in str(c.args), timeout=15
    )
    again = world.user.click(approve["action_id"], one.id, user_id=OTHER_APPROVER, message=message)
    assert "no longer waiting for a decision" in _answer_to(world, again)
    assert len(world.creates()) == 1
    assert world.reload(two).state == State.requested


@pytest.mark.parametrize("change", ["deleted", "updated elsewhere"])
def test_a_click_on_an_image_that_changed_is_refused_and_the_list_refreshed(
    world: World, change: str
) -> None:
    image = world.simulator.add_image(region="us-east-1", name="Win-Changed")
    listing = world.listing()
    if change == "deleted":
        world.simulator.remove_image(image)
    else:
        world.simulator.withdraw_update(image)

    result = world.click(world.approve_button(listing, image))

    payloads = world.responses(result, 2)
    refreshed, answer = (blocks_to_text(p["blocks"]) for p in payloads)
    assert "No longer offered" in refreshed and "[ Request update ]" not in refreshed
    assert ("no longer exists" if change == "deleted" else "no WorkSpaces update") in answer
    assert len(world.creates()) == 0 and world.requests(image) == []


def test_approving_a_request_whose_image_changed_rejects_it_and_calls_nothing(
    world: World,
) -> None:
    image = world.simulator.add_image(region="us-east-1", name="Win-Gone-Meanwhile")
    request = _request(world, image)
    world.simulator.remove_image(image)
    refused, _ = _decide(world, request, "Approve", user_id=OTHER_APPROVER)
    assert "no longer exists" in _answer_to(world, refused)
    final = world.reload(request)
    assert final.state == State.rejected and "no longer exists" in (final.close_reason or "")
    assert len(world.creates()) == 0


def _age(world: World, table: type, row_id: object, *, hours: int) -> None:
    with session_scope(world.services.engine) as session:
        row = session.get(table, row_id)
        assert row is not None
        row.created_at = utcnow() - timedelta(hours=hours)
        session.add(row)
        session.commit()


def test_a_request_that_cannot_be_announced_is_cancelled_at_once_not_stranded(
    world: World,
) -> None:
    image = world.simulator.add_image(region="us-east-1", name="Win-Nowhere")
    button = world.approve_button(world.listing(), image)
    world.slack.fail("chat.postMessage", "not_in_channel")

    answer = _answer_to_error(world, world.click(button))

    assert "could not post the request" in answer and "Invite wsimg" in answer
    [request] = world.requests(image)
    assert request.state == State.cancelled and request.active_key is None
    assert world.image_button(world.listing(), image, "approve") is not None


def test_a_decision_clicked_anywhere_but_on_its_announcement_is_refused(world: World) -> None:
    image = world.simulator.add_image(region="us-east-1", name="Win-Elsewhere")
    request = _request(world, image)
    message = _announcement(world, request)
    [approve] = [b for b in find_buttons(message.blocks) if b["text"] == "Approve"]
    ephemeral = {"blocks": message.blocks}  # the same button, as if in an ephemeral message
    result = world.user.click(
        approve["action_id"], request.id, user_id=OTHER_APPROVER, message=ephemeral
    )
    assert "no longer valid" in _answer_to(world, result)
    assert len(world.creates()) == 0 and world.reload(request).state == State.requested


def test_an_expired_request_no_longer_holds_its_image_for_a_new_one(world: World) -> None:
    image = world.simulator.add_image(region="us-east-1", name="Win-Held-Too-Long")
    button = world.approve_button(world.listing(user_id=OUTSIDER), image)  # someone's list
    old = _request(world, image)
    _age(world, UpdateRequest, old.id, hours=25)
    # No poller has run: the click itself finds the old request expired and lets go of it.
    world.slack.wait_for_response(world.click(button, user_id=OUTSIDER).response_url, timeout=15)
    states = sorted(r.state for r in world.requests(image))
    assert states == [State.expired, State.requested]


def _answer_to_error(world: World, result: Any) -> str:
    payload = world.slack.wait_for_response(
        result.response_url, lambda p: ":warning:" in str(p.get("blocks")), timeout=15
    )
    return blocks_to_text(payload["blocks"])
