"""Approve clicks through the real app: who may approve, exactly one create, every error code."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlmodel import select

from bot.domain.naming import TAG_APPROVED_BY, TAG_REQUEST_ID, TAG_SOURCE_IMAGE_ID
from bot.fakes.slack import validate_blocks
from bot.slack.render import blocks_to_text
from storage.db import session_scope
from storage.models import Event, State
from tests.conftest import APPROVER, GROUP_MEMBER, OUTSIDER, World, wait_until

NAME_PATTERN = re.compile(r"^[a-zA-Z0-9_./()\-]+$")
DESCRIPTION_PATTERN = re.compile(r"^[a-zA-Z0-9_./() -]+$")


@pytest.mark.parametrize("user_id", [APPROVER, GROUP_MEMBER], ids=["listed-user", "group-member"])
def test_an_approver_causes_exactly_one_accepted_create(world: World, user_id: str) -> None:
    image = world.simulator.add_image(region="eu-west-1", name="Win10-Finance")

    answer = world.approve(image, user_id=user_id)

    creates = world.creates()
    assert len(creates) == 1
    [request] = world.requests()
    assert request.state == State.pending
    assert request.approved_by == user_id
    assert request.new_image_id is not None
    assert world.simulator.get_image(request.new_image_id)["State"] == "PENDING"
    tags = world.simulator.get_image(request.new_image_id)["Tags"]
    assert tags[TAG_SOURCE_IMAGE_ID] == image
    assert tags[TAG_APPROVED_BY] == user_id
    assert tags[TAG_REQUEST_ID] == request.id
    # The listing now shows who approved and the new image instead of the button.
    entry = next(b for b in answer["blocks"] if image in b.get("text", {}).get("text", ""))
    assert "accessory" not in entry
    assert f"<@{user_id}>" in entry["text"]["text"]
    assert request.new_image_id in entry["text"]["text"]
    # The approval is announced in the channel, for everyone.
    announcement = world.slack.message(request.channel_id, request.message_ts)
    assert announcement is not None
    assert request.new_image_id in str(announcement.blocks)


def test_a_name_of_seventy_spaces_commas_and_accents_still_yields_a_valid_request(
    world: World,
) -> None:
    # The AWS pattern forbids such a name on a real image; the simulator is told to store one
    # anyway through its Description path, so the check is on what wsimg derives from it.
    ugly = ("Ébauche, café crème  " * 4)[:70]
    image = world.simulator.add_image(region="us-east-1", name="placeholder")
    world.simulator.rename(image, ugly)

    world.approve(image)

    [create] = world.creates()
    assert NAME_PATTERN.match(create["Name"]) and 1 <= len(create["Name"]) <= 64
    assert DESCRIPTION_PATTERN.match(create["Description"]) and len(create["Description"]) <= 256
    [request] = world.requests()
    assert request.state == State.pending


def test_twenty_concurrent_clicks_create_exactly_one_image(world: World) -> None:
    image = world.simulator.add_image(region="us-east-1", name="Win-Busy")
    button = world.approve_button(world.listing(), image)

    with ThreadPoolExecutor(max_workers=20) as pool:
        results = list(pool.map(lambda _: world.click(button), range(20)))

    assert all(200 <= r.status < 300 for r in results)

    def refused(answers: list[dict]) -> bool:
        return any("already in flight" in str(p.get("blocks")) for p in answers)

    def answered() -> list[list[dict]]:
        """Each click's answers, once every click has one and 19 have been refused: the
        winner's comes only after its create returns, a loser's refusal after its list."""
        answers = [world.slack.responses_for(r.response_url) for r in results]
        done = all(answers) and sum(map(refused, answers)) >= 19
        return answers if done else []

    answers = wait_until(answered, "an answer to each of the 20 clicks", timeout=30)
    assert sum(map(refused, answers)) == 19
    assert len(world.creates()) == 1
    assert len(world.requests()) == 1
    # and every clicker's list now shows the update in flight, without its button
    for shown in answers:
        assert world.image_button(shown[0], image, "approve") is None


def test_someone_not_listed_is_told_and_nothing_is_called(world: World) -> None:
    image = world.simulator.add_image(region="us-east-1", name="Win-Guarded")
    listing = world.listing(user_id=OUTSIDER)
    button = world.approve_button(listing, image)
    world.simulator.clear_calls()

    result = world.click(button, user_id=OUTSIDER)

    answer = world.slack.wait_for_response(result.response_url, timeout=15)
    assert "may not approve" in str(answer["blocks"])
    assert world.simulator.calls == []
    assert world.requests() == []
    with session_scope(world.services.engine) as session:
        refusals = session.exec(select(Event).where(Event.kind == "approval_refused")).all()
    assert [e.actor for e in refusals] == [OUTSIDER]


def test_a_forged_or_random_button_value_calls_nothing(world: World) -> None:
    world.simulator.add_image(region="us-east-1", name="Win-Forged")
    world.listing()
    world.simulator.clear_calls()
    for value in ("wsi-123456789", "not-a-key", "", "x" * 2000):
        result = world.user.click("wsimg.approve:0", value, user_id=APPROVER)
        assert result.status == 200
        answer = world.slack.wait_for_response(result.response_url, timeout=15)
        assert "no longer valid" in str(answer["blocks"])
    assert world.simulator.calls == []
    assert world.requests() == []


ERROR_CODES = {
    "ResourceLimitExceeded": "quota",
    "ResourceAlreadyExists": "already exists",
    "ResourceNotFound": "updates",
    "OperationNotSupported": "Windows",
    "InvalidResourceState": "AVAILABLE",
    "AccessDenied": "workspaces:CreateUpdatedWorkspaceImage",
    "InvalidParameterValues": "The name is bad",
}


@pytest.mark.parametrize("code", sorted(ERROR_CODES))
def test_each_create_error_reaches_the_user_as_a_sentence_and_is_recorded(
    world: World, code: str
) -> None:
    image = world.simulator.add_image(region="us-east-1", name="Win-Failing")
    world.simulator.fail_next("CreateUpdatedWorkspaceImage", code, "The name is bad")

    world.approve(image)

    [request] = world.requests()
    assert request.state == State.failed
    assert request.error_code == code
    assert ERROR_CODES[code] in request.error_message
    announcement = world.slack.message(request.channel_id, request.message_ts)
    assert request.error_message.split(".")[0] in str(announcement.blocks).replace("\\n", " ")
    assert validate_blocks(announcement.blocks) == []
    # A failed request frees the image: it can be approved again.
    world.simulator.clear_calls()
    world.approve(image)
    assert len(world.creates()) == 1


def test_throttling_is_retried_and_then_explained(world: World) -> None:
    image = world.simulator.add_image(region="us-east-1", name="Win-Throttled")
    world.simulator.throttle("CreateUpdatedWorkspaceImage", times=2)
    world.approve(image)
    [request] = world.requests()
    assert request.state == State.pending
    assert len(world.creates()) == 3

    other = world.simulator.add_image(region="us-east-1", name="Win-Throttled-Hard")
    world.simulator.throttle("CreateUpdatedWorkspaceImage", times=50)
    world.approve(other)
    failed = next(r for r in world.requests() if r.source_image_id == other)
    assert failed.state == State.failed
    assert failed.error_code == "Throttling"
    assert "throttling" in failed.error_message.lower()
    announcement = world.slack.message(failed.channel_id, failed.message_ts)
    assert failed.error_message in blocks_to_text(announcement.blocks)


def test_a_create_whose_reply_was_lost_is_found_by_its_name_not_made_twice(
    world: World,
) -> None:
    image = world.simulator.add_image(region="us-east-1", name="Win-Lost-Reply")
    world.simulator.lose_response("CreateUpdatedWorkspaceImage")

    world.approve(image)

    [request] = world.requests()
    assert request.state == State.pending
    made = [i for i in world.simulator.images() if i["Name"] == request.new_image_name]
    assert [i["ImageId"] for i in made] == [request.new_image_id]
    # botocore retried the 500; the retry met our own Name and was not a second image
    assert len(world.creates()) == 2
    assert "building" in blocks_to_text(
        world.slack.message(request.channel_id, request.message_ts).blocks
    )


def test_approve_on_an_image_already_updated_says_so_and_calls_nothing(world: World) -> None:
    image = world.simulator.add_image(region="us-east-1", name="Win-Done")
    listing = world.listing()
    world.approve(image)
    world.simulator.complete_pending()
    world.poll()
    [request] = world.requests()
    assert request.state == State.available

    again = world.click(world.approve_button(listing, image))  # the old list's button
    answer = world.slack.wait_for_response(
        again.response_url, lambda p: "already updated" in str(p.get("blocks")), timeout=15
    )
    assert request.new_image_id in str(answer["blocks"])
    assert len(world.creates()) == 1 and len(world.requests()) == 1
