"""Blocks, modals and a capturing events endpoint for the Slack stand-in's tests."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs

TOKEN = "xoxb-test"
SECRET = "signing-secret-for-tests"


def section(text: str, **extra: Any) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}, **extra}


def button(action_id: str, value: str, label: str = "Go") -> dict[str, Any]:
    return {
        "type": "button",
        "action_id": action_id,
        "value": value,
        "text": {"type": "plain_text", "text": label},
    }


class Capture:
    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.reply_status = 200
        self.reply_body = b""
        self.reply_type = "text/plain"


def plain(text: str) -> dict[str, str]:
    return {"type": "plain_text", "text": text}


def option(label: str, value: str) -> dict[str, Any]:
    return {"text": plain(label), "value": value}


def reason_input(**extra: Any) -> dict[str, Any]:
    return {
        "type": "input",
        "block_id": "reason",
        "label": plain("Reason"),
        "element": {"type": "plain_text_input", "action_id": "text", "multiline": True},
        **extra,
    }


def reason_modal(**extra: Any) -> dict[str, Any]:
    """A modal like the one the bot opens to ask why an update request is rejected."""
    return {
        "type": "modal",
        "callback_id": "reject_reason",
        "private_metadata": "r-1",
        "title": plain("Reject update"),
        "submit": plain("Reject"),
        "close": plain("Cancel"),
        "blocks": [
            section("Reject the update of *wsi-abc123def*?"),
            reason_input(),
            {
                "type": "input",
                "block_id": "when",
                "optional": True,
                "label": plain("Ask again"),
                "element": {
                    "type": "static_select",
                    "action_id": "pick",
                    "options": [option("Tomorrow", "1d"), option("Next week", "7d")],
                },
            },
        ],
        **extra,
    }


def sent_payload(capture: Capture, index: int = -1) -> dict[str, Any]:
    return json.loads(parse_qs(capture.requests[index][1].decode())["payload"][0])
