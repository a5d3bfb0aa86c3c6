"""Who sees what: a request belongs to the channel it was made in.

`/wsimg status` and `/wsimg history` in a channel answer about that channel's requests; in a
direct message, about the requests made there; an approver's `all` sees everything. IDs match
exactly, never by prefix. Names and reasons said in a private channel never show elsewhere —
not in another channel's status, history or listing, nor in a DM.
"""

from __future__ import annotations

import re

import pytest
from sqlmodel import select

from bot.config import Settings
from bot.fakes.slack import find_buttons
from bot.slack.render import blocks_to_text
from storage.db import session_scope
from storage.models import Event, State, UpdateRequest
from tests.conftest import APPROVER, GROUP_MEMBER, OUTSIDER, World

PRIVATE = "C0SECRET"
PUBLIC = "C0OPS"
REASON = "Payroll cut-over is confidential until March"
NAME = "Win-Payroll-Secret"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"four_eyes": True})


def _text(world: World, command: str, *, user_id: str, channel_id: str) -> str:
    result = world.command(command, user_id=user_id, channel_id=channel_id)
    return blocks_to_text(world.answer(result)["blocks"])


def _rejected_in_private(world: World) -> UpdateRequest:
    """APPROVER asks for an update in the private channel; GROUP_MEMBER rejects it there,
    saying why."""
    image = world.simulator.add_image(region="us-east-1", name=NAME)
    listing = world.answer(world.command("updates", channel_id=PRIVATE))
    button = world.approve_button(listing, image)
    result = world.user.click(
        button["action_id"], button["value"], user_id=APPROVER, channel_id=PRIVATE
    )
    world.slack.wait_for_response(result.response_url, timeout=15)
    [request] = world.requests()
    assert request.channel_id == PRIVATE and request.message_ts
    message = world.slack.message(PRIVATE, request.message_ts)
    assert message is not None
    [reject] = [b for b in find_buttons(message.blocks) if b["text"] == "Reject"]
    world.user.click_button(reject, user_id=GROUP_MEMBER, message=message, channel_id=PRIVATE)
    view = world.slack.wait_for_view(GROUP_MEMBER, callback_id="wsimg.close")
    assert world.user.submit_view(view, {"reason": REASON}, user_id=GROUP_MEMBER).view_closed
    world.slack.wait_for(
        lambda c: c.method == "chat.update" and "Rejected by" in str(c.args), timeout=15
    )
    with session_scope(world.services.engine) as session:
        request = session.get(UpdateRequest, request.id)
    assert request is not None and request.state == State.rejected
    return request


def _leaks(text: str, request: UpdateRequest) -> list[str]:
    text = re.sub(r"matches `[^`]*`", "matches `…`", text)  # the caller's own words, echoed
    secrets = [NAME, REASON, "Payroll", request.short_id, GROUP_MEMBER, request.id]
    return [secret for secret in secrets if secret in text]


def test_another_channel_and_a_dm_see_nothing_of_a_private_channels_requests(
    world: World,
) -> None:
    request = _rejected_in_private(world)
    image = request.source_image_id
    questions = [
        "status",
        "history",
        "history 50",
        f"status {image}",
        f"status {request.id}",
        f"status {request.short_id}",
    ]
    for user_id in (OUTSIDER, APPROVER, GROUP_MEMBER):  # even those who were there
        for channel_id in (PUBLIC, f"D0{user_id}"):
            for question in questions:
                text = _text(world, question, user_id=user_id, channel_id=channel_id)
                assert _leaks(text, request) == [], (user_id, channel_id, question, text)

    # In the private channel itself, everything is there.
    here = _text(world, f"status {request.short_id}", user_id=OUTSIDER, channel_id=PRIVATE)
    assert NAME in here and REASON in here
    assert NAME in _text(world, "history", user_id=OUTSIDER, channel_id=PRIVATE)


def test_an_id_matches_exactly_never_by_prefix(world: World) -> None:
    request = _rejected_in_private(world)
    prefixes = {request.id[:n] for n in (1, 2, 4, 7, 9, 16, 31)} | {"c", "%", "_", "*"}
    prefixes |= {request.source_image_id[:-1], request.source_image_id[:5]}
    for prefix in sorted(prefixes):
        text = _text(world, f"status {prefix}", user_id=APPROVER, channel_id=PRIVATE)
        assert "No update request here matches" in text, (prefix, text)
        assert NAME not in text
    for exact in (request.id, request.short_id, request.source_image_id):
        text = _text(world, f"status {exact}", user_id=APPROVER, channel_id=PRIVATE)
        assert NAME in text, exact


def test_an_approvers_all_sees_every_channel_and_nobody_else_may_ask(world: World) -> None:
    request = _rejected_in_private(world)

    everything = _text(world, "history all", user_id=APPROVER, channel_id=PUBLIC)
    assert NAME in everything
    one = _text(world, f"status all {request.short_id}", user_id=GROUP_MEMBER, channel_id=PUBLIC)
    assert NAME in one and REASON in one

    refused = _text(world, "history all", user_id=OUTSIDER, channel_id=PUBLIC)
    assert "Only approvers" in refused and _leaks(refused, request) == []
    refused = _text(world, f"status all {request.id}", user_id=OUTSIDER, channel_id=PRIVATE)
    assert "Only approvers" in refused
    with session_scope(world.services.engine) as session:
        refusals = session.exec(
            select(Event).where(Event.kind == "approval_refused", Event.actor == OUTSIDER)
        ).all()
    assert len(refusals) == 2


def test_a_listing_elsewhere_shows_the_images_state_but_not_who_or_why(world: World) -> None:
    request = _rejected_in_private(world)

    listing = world.answer(world.command("updates", user_id=OUTSIDER, channel_id=PUBLIC))
    text = blocks_to_text(listing["blocks"])
    assert request.source_image_id in text  # the image itself is AWS's, listed for anyone
    assert "another channel" in text
    assert REASON not in text and GROUP_MEMBER not in text

    # The private channel's own listing still says who rejected it and why.
    mine = blocks_to_text(world.answer(world.command("updates", channel_id=PRIVATE))["blocks"])
    assert REASON in mine
