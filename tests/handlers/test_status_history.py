"""`/wsimg status` and `/wsimg history`: what happened, and who did it."""

from __future__ import annotations

from bot.slack.render import blocks_to_text
from tests.conftest import APPROVER, World


def _answer_text(world: World, text: str) -> str:
    return blocks_to_text(world.answer(world.command(text))["blocks"])


def test_status_lists_what_is_in_flight_with_its_trail(world: World) -> None:
    image = world.simulator.add_image(region="us-east-1", name="Win-Status")
    request = world.approved(image)

    everything = _answer_text(world, "status")
    by_image = _answer_text(world, f"status {image}")
    by_new_image = _answer_text(world, f"status {request.new_image_id}")
    by_short_id = _answer_text(world, f"status {request.short_id}")

    for text in (everything, by_image, by_new_image, by_short_id):
        assert "Win-Status" in text and request.short_id in text
        assert f"Approved by @{APPROVER}; building `{request.new_image_id}`" in text
        assert f"approved by @{APPROVER}" in text and "created by wsimg" in text  # the trail


def test_status_of_something_unknown_says_how_to_find_it(world: World) -> None:
    text = _answer_text(world, "status wsi-nothere1")
    assert "No update request here matches `wsi-nothere1`" in text and "/wsimg history" in text
    wildcard = _answer_text(world, "status %")
    assert "No update request here matches" in wildcard


def test_history_names_who_requested_and_who_approved(world: World) -> None:
    assert "No WorkSpaces image update has been requested in this channel yet" in _answer_text(
        world, "history"
    )
    first = world.simulator.add_image(region="us-east-1", name="Win-First")
    second = world.simulator.add_image(region="eu-west-1", name="Win-Second")
    world.approved(first)
    world.approved(second)

    text = _answer_text(world, "history")
    assert "Win-First" in text and "Win-Second" in text
    assert text.count(f"approved by @{APPROVER}") == 2
    latest = _answer_text(world, "history 1")
    assert "Win-Second" in latest and "Win-First" not in latest
