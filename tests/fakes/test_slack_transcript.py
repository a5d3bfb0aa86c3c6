"""The transcript (the `wsimg demo` output) reads like the conversation people saw."""

from __future__ import annotations

from typing import Any

from slack_sdk.webhook import WebhookClient

from bot.fakes.slack import SlackUser, find_buttons, render_transcript
from tests.fakes.slack_kit import SECRET, button, reason_modal, section


def image_entry(name: str, image_id: str, action_id: str) -> list[dict[str, Any]]:
    """One image of a listing, as the bot lays it out: a section, then its buttons."""
    return [
        section(f"*{name}* `{image_id}` · new today\nUpdates are available."),
        {"type": "actions", "elements": [button(action_id, image_id, "Approve")]},
    ]


def test_transcript_shows_a_small_conversation_in_order_with_threads_indented(api, client, events):
    url, capture = events
    capture.reply_type, capture.reply_body = "application/json", b'{"text": "Looking..."}'
    api.set_channel("C0OPS", "ops")
    user = SlackUser(url, SECRET, api)

    user.command("updates", user_id="U1")
    blocks = [
        section("*wsi-abc123def* has an update"),
        {"type": "actions", "elements": [button("approve", "r-1", "Approve")]},
    ]
    ts = client.chat_postMessage(channel="C0OPS", text="update?", blocks=blocks)["ts"]
    message = api.messages[("C0OPS", ts)]
    capture.reply_body = b""
    clicked = user.click("approve", "r-1", user_id="U2", message=message)
    WebhookClient(clicked.response_url).send(text="Approved by <@U2>", replace_original=True)
    client.chat_postMessage(channel="C0OPS", thread_ts=ts, text="Image is AVAILABLE")

    assert render_transcript(api, user_names={"U1": "alice", "U2": "bob"}) == "\n".join(
        [
            "> alice in #ops: /wsimg updates",
            "  wsimg (only visible to alice):",
            "    Looking...",
            "",
            "#ops · wsimg:",
            "    wsi-abc123def has an update",
            "    [ Approve ]",
            "",
            '> bob in #ops clicked [Approve] on "wsi-abc123def has an update"',
            "",
            "wsimg replaced the message:",
            "    Approved by @bob",
            "",
            "  ↳ reply in thread · wsimg:",
            "      Image is AVAILABLE",
            "",
        ]
    )


def test_transcript_shows_modals_opened_and_submitted(api, client, events):
    url, capture = events
    api.set_user("U2", "bob")
    user = SlackUser(url, SECRET, api)
    client.views_open(trigger_id=api.new_trigger_id(user_id="U2"), view=reason_modal())
    view = api.last_view("U2")
    capture.reply_type = "application/json"
    capture.reply_body = b'{"response_action": "errors", "errors": {"reason": "Say a bit more"}}'
    user.submit_view(view, {"reason": "no"})
    capture.reply_body = b""
    user.submit_view(view, {"reason": "Not tested yet", "when": {"pick": "1d"}})

    assert render_transcript(api) == "\n".join(
        [
            "modal opened for bob: Reject update",
            "",
            '> bob submitted "Reject update"',
            "    Reason: no",
            "  wsimg kept the modal open:",
            "    Say a bit more",
            "",
            '> bob submitted "Reject update"',
            "    Reason: Not tested yet",
            "    Ask again: Tomorrow",
            "",
        ]
    )


def test_a_click_names_the_button_and_its_image_and_shows_the_confirm_dialog(api, events):
    url, _ = events
    api.set_channel("C0OPS", "ops")
    api.set_user("U1", "alice")
    approve = {
        **button("wsimg.approve:1", "k-1", "Approve"),
        "confirm": {
            "title": {"type": "plain_text", "text": "Update this image?"},
            "text": {"type": "mrkdwn", "text": "Create a new image from *Win10*."},
            "confirm": {"type": "plain_text", "text": "Approve"},
            "deny": {"type": "plain_text", "text": "Cancel"},
        },
    }
    blocks = [
        section("*Win10* `wsi-abc123def` · new today"),
        {"type": "actions", "elements": [approve]},
    ]

    SlackUser(url, SECRET, api).click_button(find_buttons(blocks)[0], user_id="U1")

    assert render_transcript(api).splitlines() == [
        "> alice in #ops clicked [Approve] on Win10 (wsi-abc123def)",
        '  Slack asked first: "Update this image?"',
        "    Create a new image from Win10.",
        "    [ Cancel ]  [ Approve ]  ← alice chose Approve",
    ]


def test_an_edit_shows_only_the_lines_that_changed(api, client):
    api.set_channel("C0OPS", "ops")
    ts = client.chat_postMessage(channel="C0OPS", text="Update of Win10\nbuilding\nRequest 1")["ts"]
    client.chat_update(channel="C0OPS", ts=ts, text="Update of Win10\nAVAILABLE\nRequest 1")

    assert render_transcript(api).split("\n\n")[1].splitlines() == [
        "#ops · wsimg edited its message (changed lines):",
        "    - building",
        "    + AVAILABLE",
    ]


def test_a_replaced_listing_shows_which_image_changed_among_identical_buttons(api, events):
    url, _ = events
    api.set_channel("C0OPS", "ops")
    listing = {
        "text": "2 images",
        "blocks": [
            *image_entry("Win10", "wsi-aaaaaaaaa", "approve:1"),
            *image_entry("Win11", "wsi-bbbbbbbbb", "approve:2"),
        ],
    }
    user = SlackUser(url, SECRET, api)
    clicked = user.click_button(find_buttons(listing["blocks"])[1], user_id="U1", message=listing)
    replaced = [*listing["blocks"][:2], section("*Win11* `wsi-bbbbbbbbb` · new today\nBuilding")]
    WebhookClient(clicked.response_url).send(
        text="2 images", blocks=replaced, replace_original=True
    )

    assert render_transcript(api).split("\n\n")[1].splitlines() == [
        "wsimg replaced the message (changed lines):",
        "      Win11 `wsi-bbbbbbbbb` · new today",
        "    - Updates are available.",
        "    - [ Approve ]",
        "    + Building",
    ]
