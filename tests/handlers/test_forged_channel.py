"""A button acts only in the channel its list was shown in.

The channel of a click comes from the payload, which the client can forge: a list shown in
one channel, clicked "from" another, would announce the request (or snooze the image) there —
a channel the clicker may not even be in.
"""

from __future__ import annotations

from bot.slack.render import blocks_to_text
from tests.conftest import APPROVER, World

ELSEWHERE = "C0PRIVATE"


def test_an_approve_clicked_from_another_channel_creates_and_announces_nothing(
    world: World,
) -> None:
    image = world.simulator.add_image(region="us-east-1", name="Win-Forged-Channel")
    button = world.approve_button(world.listing(), image)  # listed in C0OPS

    forged = world.user.click(
        button["action_id"], button["value"], user_id=APPROVER, channel_id=ELSEWHERE
    )
    answer = blocks_to_text(world.answer(forged)["blocks"])

    assert "no longer valid" in answer
    assert world.simulator.count("CreateUpdatedWorkspaceImage") == 0
    assert world.slack.posts(ELSEWHERE) == []

    # The same button from its own channel still works.
    world.slack.wait_for_response(world.click(button).response_url, timeout=15)
    assert world.simulator.count("CreateUpdatedWorkspaceImage") == 1


def test_a_snooze_clicked_from_another_channel_is_refused(world: World) -> None:
    image = world.simulator.add_image(region="us-east-1", name="Win-Forged-Snooze")
    button = world.image_button(world.listing(), image, "snooze")
    assert button is not None

    forged = world.user.click(
        button["action_id"], button["value"], user_id=APPROVER, channel_id=ELSEWHERE
    )

    assert "no longer valid" in blocks_to_text(world.answer(forged)["blocks"])
    again = blocks_to_text(world.listing()["blocks"])
    assert "Snoozed by" not in again
