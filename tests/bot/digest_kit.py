"""What the digest tests share: the digests a channel was sent, and the pages behind Next."""

from __future__ import annotations

from typing import Any

from bot.fakes.slack import SlackUser, find_buttons
from tests.conftest import APPROVER, World


def digest_posts(world: World, channel_id: str = "C0DIGEST") -> list[Any]:
    return [
        c for c in world.slack.calls_to("chat.postMessage") if c.args.get("channel") == channel_id
    ]


def following(
    world: World, user: SlackUser, page: dict[str, Any], channel_id: str
) -> list[dict[str, Any]]:
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
