"""/wsimg updates through the real app: listing, paging, and an ack that never waits for AWS."""

from __future__ import annotations

from typing import Any

from bot.fakes.slack import blocks_to_text, validate_blocks
from tests.conftest import REGIONS, World


def _text(message: dict[str, Any]) -> str:
    return blocks_to_text(message["blocks"])


def test_two_regions_of_more_than_25_images_list_every_update_with_approve_only_where_possible(
    world: World,
) -> None:
    expected_buttons, expected_listed, hidden = set(), set(), set()
    for region in REGIONS:
        for n in range(32):
            if n % 8 == 0:
                hidden.add(
                    world.simulator.add_image(
                        region=region, name=f"Current-{n}", update_available=False
                    )
                )
            elif n % 8 == 1:
                expected_listed.add(
                    world.simulator.add_image(region=region, name=f"Linux-{n}", platform="LINUX")
                )
            else:
                image = world.simulator.add_image(region=region, name=f"Win-{region}-{n}")
                expected_listed.add(image)
                expected_buttons.add(image)

    pages = world.all_pages(world.listing())

    assert len(pages) > 1
    for page in pages:
        assert validate_blocks(page["blocks"]) == []
    listed_text = "\n".join(_text(page) for page in pages)
    approve_values = [b["value"] for b in world.approve_buttons(pages)]
    for image in expected_listed:
        assert image in listed_text
    for image in hidden:
        assert image not in listed_text
    assert len(approve_values) == len(expected_buttons) == len(set(approve_values))
    assert "Linux images cannot be updated" in listed_text
    assert f"{len(expected_listed)} images have a WorkSpaces update available" in listed_text
    describe = [c for c in world.simulator.calls if c.operation == "DescribeWorkspaceImages"]
    assert {c.region for c in describe if "NextToken" in c.params} == set(REGIONS)
    assert all(c.params.get("MaxResults", 25) <= 25 for c in describe)


def test_button_value_is_an_opaque_key_not_the_image(world: World) -> None:
    image = world.simulator.add_image(region="us-east-1", name="Win-Opaque")
    button = world.approve_button(world.listing(), image)
    assert image not in button["value"]
    assert "us-east-1" not in button["value"]


def test_the_command_is_acknowledged_while_aws_is_still_holding_the_first_call(
    world: World,
) -> None:
    image = world.simulator.add_image(region="us-east-1", name="Win-Held")
    with world.simulator.hold("DescribeWorkspaceImages") as hold:
        result = world.command("updates")
        assert result.status == 200
        assert hold.wait_until_blocked(1)
        assert "Looking for image updates" in result.body
        # Nothing but the ack has been answered while AWS holds the call.
        assert world.slack.responses_for(result.response_url) == []
    listing = world.answer(result)
    assert image in _text(listing)


def test_one_region_only(world: World) -> None:
    east = world.simulator.add_image(region="us-east-1", name="Win-East")
    west = world.simulator.add_image(region="eu-west-1", name="Win-West")
    text = _text(world.listing("updates eu-west-1"))
    assert west in text
    assert east not in text


def test_an_unknown_region_gets_a_clear_message_and_no_aws_call(world: World) -> None:
    answer = world.listing("updates mars-north-1")
    assert "not one of the configured regions" in _text(answer)
    assert world.simulator.count("DescribeWorkspaceImages") == 0


def test_no_updates_says_so(world: World) -> None:
    world.simulator.add_image(region="us-east-1", name="Win-Current", update_available=False)
    assert "No image in your configured regions has" in _text(world.listing())


def test_a_region_that_fails_is_named_and_the_others_still_listed(world: World) -> None:
    image = world.simulator.add_image(region="us-east-1", name="Win-Ok")
    world.simulator.deny("DescribeWorkspaceImages", region="eu-west-1")
    text = _text(world.listing())
    assert image in text
    assert "Could not list" in text and "eu-west-1" in text


def test_help_and_unknown_subcommands_answer_the_help_text(world: World) -> None:
    for text in ("help", "", "frobnicate now"):
        result = world.command(text)
        assert result.status == 200
        assert "/wsimg updates" in result.body
