"""The transcript (the `wsimg demo` output) reads like the conversation people saw."""

from __future__ import annotations

from slack_sdk.webhook import WebhookClient

from bot.fakes.slack import SlackUser, render_transcript
from tests.fakes.slack_kit import SECRET, button, reason_modal, section


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
            "> bob clicked [ Approve ] in #ops",
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
