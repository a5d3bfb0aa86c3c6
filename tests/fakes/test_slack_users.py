"""SlackUser sends what Slack sends: signed commands, clicks and retries, which slack_sdk's
verifier and a real Bolt app accept."""

from __future__ import annotations

import json
import time
from urllib.parse import parse_qs

from slack_sdk.signature import SignatureVerifier

from bot.fakes.slack import STALE_SECONDS, SlackUser, find_buttons
from tests.fakes.slack_kit import SECRET, button, section

# -- SlackUser -------------------------------------------------------------------------------


def test_command_is_signed_so_slack_sdk_verifier_accepts_it(api, events):
    url, capture = events
    SlackUser(url, SECRET, api).command("updates eu-west-1", user_id="U1")

    headers, body = capture.requests[0]
    assert SignatureVerifier(SECRET).is_valid_request(body, headers)
    assert headers["content-type"] == "application/x-www-form-urlencoded"


def test_command_body_has_the_fields_of_a_slack_slash_command(api, events):
    url, capture = events
    api.set_user("U1", "alice")
    result = SlackUser(url, SECRET, api).command("updates", user_id="U1", channel_id="C9")

    form = {k: v[0] for k, v in parse_qs(capture.requests[0][1].decode()).items()}
    assert set(form) >= {
        "token",
        "team_id",
        "team_domain",
        "channel_id",
        "channel_name",
        "user_id",
        "user_name",
        "command",
        "text",
        "api_app_id",
        "response_url",
        "trigger_id",
    }
    assert (form["command"], form["text"], form["user_id"], form["user_name"]) == (
        "/wsimg",
        "updates",
        "U1",
        "alice",
    )
    assert (form["team_id"], form["channel_id"]) == ("T0WSIMG", "C9")
    assert form["response_url"] == result.response_url
    assert result.response_url.startswith(api.base_url + "/response/")


def test_stale_and_wrong_signatures_are_produced_when_asked(api, events):
    url, capture = events
    user = SlackUser(url, SECRET, api)
    verifier = SignatureVerifier(SECRET)
    stale = int(time.time()) - STALE_SECONDS

    user.post(b"a=1", timestamp=stale)
    user.post(b"a=2", signature="v0=" + "0" * 64)
    user.post(b"a=3", sign=False)

    (h1, b1), (h2, b2), (h3, _) = capture.requests
    assert h1["x-slack-request-timestamp"] == str(stale)
    # The HMAC itself is right; only the timestamp is outside Slack's 5-minute window.
    assert h1["x-slack-signature"] == verifier.generate_signature(timestamp=str(stale), body=b1)
    assert not verifier.is_valid_request(b1, h1)
    assert not verifier.is_valid_request(b2, h2)
    assert "x-slack-signature" not in h3 and "x-slack-request-timestamp" not in h3


def test_http_result_carries_status_headers_and_parsed_json(api, events):
    url, capture = events
    capture.reply_status, capture.reply_type = 401, "application/json"
    capture.reply_body = b'{"error": "invalid request"}'

    result = SlackUser(url, SECRET, api).post(b"x=1")

    assert result.status == 401
    assert result.headers["content-type"] == "application/json"
    assert result.json == {"error": "invalid request"}
    assert result.elapsed >= 0


def test_click_on_a_channel_message_sends_a_block_actions_payload(api, client, events):
    url, capture = events
    blocks = [
        section("Image wsi-abc123def needs an update", block_id="req-1"),
        {
            "type": "actions",
            "block_id": "req-1-actions",
            "elements": [button("approve", "r-1", "Approve"), button("reject", "r-1", "Reject")],
        },
    ]
    ts = client.chat_postMessage(channel="C0OPS", text="approve?", blocks=blocks)["ts"]
    message = api.messages[("C0OPS", ts)]

    approve = find_buttons(message.blocks)[0]
    result = SlackUser(url, SECRET, api).click_button(approve, user_id="U2", message=message)

    headers, body = capture.requests[0]
    assert SignatureVerifier(SECRET).is_valid_request(body, headers)
    payload = json.loads(parse_qs(body.decode())["payload"][0])
    assert payload["type"] == "block_actions"
    assert payload["user"]["id"] == "U2" and payload["team"]["id"] == "T0WSIMG"
    assert payload["channel"]["id"] == "C0OPS"
    assert payload["container"] == {
        "type": "message",
        "message_ts": ts,
        "channel_id": "C0OPS",
        "is_ephemeral": False,
    }
    assert payload["message"]["ts"] == ts and payload["message"]["blocks"] == blocks
    assert payload["response_url"] == result.response_url
    (action,) = payload["actions"]
    assert (action["action_id"], action["block_id"], action["value"], action["type"]) == (
        "approve",
        "req-1-actions",
        "r-1",
        "button",
    )
    assert action["text"]["text"] == "Approve"


def test_click_on_an_ephemeral_message_names_it_only_in_the_container(api, events):
    url, capture = events
    ephemeral = {"text": "pick", "blocks": [{"type": "actions", "elements": [button("a", "1")]}]}

    SlackUser(url, SECRET, api).click("a", "1", user_id="U1", message=ephemeral)

    payload = json.loads(parse_qs(capture.requests[0][1].decode())["payload"][0])
    assert payload["container"]["is_ephemeral"] is True
    assert "message" not in payload


def test_replayed_request_carries_slack_retry_headers_and_a_fresh_signature(api, events):
    url, capture = events
    user = SlackUser(url, SECRET, api)
    first = user.command("updates", user_id="U1")

    again = user.replay(first)

    headers, body = capture.requests[1]
    assert body == capture.requests[0][1]
    assert headers["x-slack-retry-num"] == "1"
    assert SignatureVerifier(SECRET).is_valid_request(body, headers)
    assert again.response_url == first.response_url


# -- against a real Bolt app -----------------------------------------------------------------


def test_bolt_accepts_signed_requests_and_answers_through_the_fake(api, bolt_app):
    url, app = bolt_app

    @app.command("/wsimg")
    def on_command(ack, respond, say, command):
        ack("On it")
        posted = say(
            text="Approve?",
            blocks=[
                section("Approve?"),
                {"type": "actions", "elements": [button("approve", "r-1", "Approve")]},
            ],
        )
        respond(f"Posted {posted['ts']}")

    @app.action("approve")
    def on_approve(ack, respond, body):
        ack()
        respond(text=f"Approved by <@{body['user']['id']}>", replace_original=True)

    user = SlackUser(url, SECRET, api)
    result = user.command("updates", user_id="U1")
    assert (result.status, result.body) == (200, "On it")
    api.wait_for_response(result.response_url)
    (post,) = api.posts("C0OPS")

    clicked = user.click_button(find_buttons(post.blocks)[0], user_id="U2", message=post)
    assert clicked.status == 200
    api.wait_for_response(clicked.response_url)
    assert api.messages[("C0OPS", post.ts)].text == "Approved by <@U2>"


def test_bolt_refuses_unsigned_and_stale_requests(api, bolt_app):
    url, _app = bolt_app
    user = SlackUser(url, SECRET, api)
    body = b"command=%2Fwsimg&text=help&user_id=U1"

    assert user.post(body, sign=False).status == 401
    assert user.post(body, timestamp=int(time.time()) - STALE_SECONDS).status == 401
    assert user.post(body, signature="v0=" + "0" * 64).status == 401
