"""The Slack fake behaves like Slack toward real slack_sdk / slack_bolt code."""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from socketserver import ThreadingMixIn
from typing import Any
from urllib.parse import parse_qs
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest
from slack_bolt import App
from slack_bolt.adapter.wsgi import SlackRequestHandler
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler
from slack_sdk.signature import SignatureVerifier
from slack_sdk.webhook import WebhookClient

from bot.fakes.slack import (
    STALE_SECONDS,
    SlackUser,
    SlackWebAPI,
    find_buttons,
    render_transcript,
    validate_blocks,
    validate_view,
)
from bot.slack.render import RULE, blocks_to_text

TOKEN = "xoxb-test"
SECRET = "signing-secret-for-tests"


@pytest.fixture
def api() -> Iterator[SlackWebAPI]:
    with SlackWebAPI(bot_token=TOKEN) as fake:
        yield fake


@pytest.fixture
def client(api: SlackWebAPI) -> WebClient:
    return WebClient(token=TOKEN, base_url=api.api_url)


def section(text: str, **extra: Any) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}, **extra}


def button(action_id: str, value: str, label: str = "Go") -> dict[str, Any]:
    return {
        "type": "button",
        "action_id": action_id,
        "value": value,
        "text": {"type": "plain_text", "text": label},
    }


# -- a stand-in for the bot's events endpoint, to see exactly what SlackUser sends -----------


class Capture:
    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.reply_status = 200
        self.reply_body = b""
        self.reply_type = "text/plain"


@pytest.fixture
def events() -> Iterator[tuple[str, Capture]]:
    capture = Capture()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            capture.requests.append(({k.lower(): v for k, v in self.headers.items()}, body))
            self.send_response(capture.reply_status)
            self.send_header("Content-Type", capture.reply_type)
            self.send_header("Content-Length", str(len(capture.reply_body)))
            self.end_headers()
            self.wfile.write(capture.reply_body)

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
    )
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/slack/events", capture
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


# -- Web API ---------------------------------------------------------------------------------


def test_post_message_returns_channel_and_unique_increasing_ts(api, client):
    first = client.chat_postMessage(channel="C0OPS", text="one")
    second = client.chat_postMessage(channel="C0OPS", text="two")

    assert first["channel"] == "C0OPS"
    assert first["ts"] == "1700000000.000100"
    assert float(second["ts"]) > float(first["ts"])
    assert [m.text for m in api.posts("C0OPS")] == ["one", "two"]


def test_post_message_records_blocks_sent_as_json_or_as_form_string(api, client):
    blocks = [section("*hello*")]
    client.chat_postMessage(channel="C0OPS", text="json body", blocks=blocks)
    client.api_call(
        "chat.postMessage",
        params={"channel": "C0OPS", "text": "form body", "blocks": json.dumps(blocks)},
    )

    posts = api.calls_to("chat.postMessage")
    assert [c.args["blocks"] for c in posts] == [blocks, blocks]
    assert "token" not in posts[0].args
    assert all(m.blocks == blocks for m in api.posts())


def test_thread_replies_are_kept_under_their_parent(api, client):
    parent = client.chat_postMessage(channel="C0OPS", text="request")["ts"]
    reply = client.chat_postMessage(channel="C0OPS", text="approved", thread_ts=parent)
    client.chat_postMessage(channel="C0OPS", text="elsewhere")
    # A reply to a reply lands in the same thread, as in Slack.
    client.chat_postMessage(channel="C0OPS", text="available", thread_ts=reply["ts"])

    assert [m.text for m in api.thread("C0OPS", parent)] == ["approved", "available"]
    assert [m.text for m in api.posts("C0OPS", include_replies=False)] == [
        "request",
        "elsewhere",
    ]


def test_update_applies_to_channel_state_and_keeps_blocks_when_none_are_sent(api, client):
    ts = client.chat_postMessage(channel="C0OPS", text="old", blocks=[section("old")])["ts"]

    client.chat_update(channel="C0OPS", ts=ts, text="new text only")
    message = api.messages[("C0OPS", ts)]
    assert message.text == "new text only"
    assert message.blocks == [section("old")]
    assert message.edits[0]["text"] == "old"

    client.chat_update(channel="C0OPS", ts=ts, text="new", blocks=[section("new")])
    assert api.messages[("C0OPS", ts)].blocks == [section("new")]


def test_update_of_unknown_message_fails_with_message_not_found(client):
    with pytest.raises(SlackApiError) as err:
        client.chat_update(channel="C0OPS", ts="1.000000", text="x")
    assert err.value.response["error"] == "message_not_found"


def test_delete_removes_message_from_channel_state(api, client):
    ts = client.chat_postMessage(channel="C0OPS", text="bye")["ts"]
    client.chat_delete(channel="C0OPS", ts=ts)

    assert ("C0OPS", ts) not in api.messages
    assert api.message("C0OPS", ts).deleted


def test_post_ephemeral_is_recorded_for_one_user_and_not_in_channel_state(api, client):
    result = client.chat_postEphemeral(channel="C0OPS", user="U1", text="only you")

    assert result["message_ts"]
    assert [e["text"] for e in api.ephemerals("C0OPS", user="U1")] == ["only you"]
    assert api.posts() == []


def test_usergroup_members_are_listed_and_unknown_groups_fail(api, client):
    api.set_usergroup("S123", ["U1", "U2"])

    assert client.usergroups_users_list(usergroup="S123")["users"] == ["U1", "U2"]
    with pytest.raises(SlackApiError) as err:
        client.usergroups_users_list(usergroup="S999")
    assert err.value.response["error"] == "no_such_subgroup"


def test_auth_test_users_info_and_conversations_open_answer_like_slack(api, client):
    api.set_user("U1", "alice", real_name="Alice Admin", tz="Europe/Berlin")

    assert client.auth_test()["team_id"] == "T0WSIMG"
    assert client.users_info(user="U1")["user"]["real_name"] == "Alice Admin"
    dm = client.conversations_open(users="U1")["channel"]["id"]
    assert dm.startswith("D")
    # Posting to a user ID lands in the DM channel, and Slack says which one.
    assert client.chat_postMessage(channel="U1", text="hi")["channel"] == dm


def test_wrong_token_is_invalid_auth_and_missing_token_is_not_authed(api):
    with pytest.raises(SlackApiError) as err:
        WebClient(token="xoxb-wrong", base_url=api.api_url).chat_postMessage(
            channel="C0OPS", text="x"
        )
    assert err.value.response["error"] == "invalid_auth"
    with pytest.raises(SlackApiError) as err:
        WebClient(base_url=api.api_url).auth_test()
    assert err.value.response["error"] == "not_authed"
    assert api.posts() == []
    assert [c.error for c in api.calls] == ["invalid_auth", "not_authed"]


def test_unknown_method_answers_unknown_method(client):
    with pytest.raises(SlackApiError) as err:
        client.api_call("views.frobnicate")
    assert err.value.response["error"] == "unknown_method"


def test_get_requests_with_query_arguments_are_answered(api):
    api.set_usergroup("S1", ["U7"])
    conn = http.client.HTTPConnection("127.0.0.1", api.port, timeout=5)
    conn.request(
        "GET",
        "/api/usergroups.users.list?usergroup=S1",
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    answer = json.loads(conn.getresponse().read())
    conn.close()

    assert answer == {"ok": True, "users": ["U7"]}


def test_fail_injects_an_error_for_the_next_calls_only(api, client):
    api.fail("chat.postMessage", "not_in_channel")

    with pytest.raises(SlackApiError) as err:
        client.chat_postMessage(channel="C0OPS", text="x")
    assert err.value.response["error"] == "not_in_channel"
    assert client.chat_postMessage(channel="C0OPS", text="x")["ok"]


# -- Block Kit limits ------------------------------------------------------------------------

TOO_BIG = {
    "51 blocks": [section("x")] * 51,
    "section text 3001 chars": [section("x" * 3001)],
    "26 elements in actions": [
        {"type": "actions", "elements": [button(f"a{i}", "v") for i in range(26)]}
    ],
    "action_id 256 chars": [{"type": "actions", "elements": [button("a" * 256, "v")]}],
    "block_id 256 chars": [section("x", block_id="b" * 256)],
    "duplicate action_id in message": [
        {"type": "actions", "elements": [button("approve", "1")]},
        {"type": "actions", "elements": [button("approve", "2")]},
    ],
    "duplicate block_id": [section("x", block_id="b"), section("y", block_id="b")],
    "button value 2001 chars": [{"type": "actions", "elements": [button("a", "v" * 2001)]}],
    "empty section text": [section("")],
    "unknown block type": [{"type": "fancy"}],
}


@pytest.mark.parametrize("blocks", TOO_BIG.values(), ids=TOO_BIG.keys())
def test_validate_blocks_reports_limit_breaks(blocks):
    assert validate_blocks(blocks)


def test_blocks_exactly_at_the_limits_are_accepted(client):
    at_limits = [
        section("x" * 3000, block_id="b" * 255),
        {"type": "actions", "elements": [button(f"a{i}", "v" * 2000) for i in range(24)]},
        {"type": "actions", "elements": [button("z" * 255, "v")] * 1},
        *[{"type": "divider"}] * 47,
    ]
    assert len(at_limits) == 50
    assert validate_blocks(at_limits) == []
    assert client.chat_postMessage(channel="C0OPS", text="ok", blocks=at_limits)["ok"]


def test_invalid_blocks_are_refused_with_slack_error_and_json_pointer(api, client):
    with pytest.raises(SlackApiError) as err:
        client.chat_postMessage(channel="C0OPS", text="x", blocks=[section("x" * 3001)])

    assert err.value.response["error"] == "invalid_blocks"
    assert err.value.response["errors"] == [
        "must be less than 3001 characters [json-pointer:/blocks/0/text/text]"
    ]
    assert api.posts() == []


def test_update_with_invalid_blocks_is_refused(client):
    ts = client.chat_postMessage(channel="C0OPS", text="x")["ts"]
    with pytest.raises(SlackApiError) as err:
        client.chat_update(channel="C0OPS", ts=ts, text="x", blocks=[section("x")] * 51)
    assert err.value.response["error"] == "invalid_blocks"


# -- rate limits and waiting -----------------------------------------------------------------


def test_rate_limit_answers_429_with_retry_after(api, client):
    api.rate_limit("chat.postMessage", retry_after=7)

    with pytest.raises(SlackApiError) as err:
        client.chat_postMessage(channel="C0OPS", text="x")
    assert err.value.response.status_code == 429
    assert err.value.response.headers["Retry-After"] in ("7", ["7"])
    assert err.value.response["error"] == "ratelimited"


def test_rate_limited_post_succeeds_with_slack_sdk_retry_handler(api):
    api.rate_limit("chat.postMessage", times=1, retry_after=0)
    client = WebClient(
        token=TOKEN,
        base_url=api.api_url,
        retry_handlers=[RateLimitErrorRetryHandler(max_retry_count=1)],
    )

    assert client.chat_postMessage(channel="C0OPS", text="eventually")["ok"]
    assert [(c.status, c.error) for c in api.calls] == [(429, "ratelimited"), (200, None)]
    assert [m.text for m in api.posts()] == ["eventually"]


def test_wait_for_returns_a_call_made_later_by_another_thread(api, client):
    worker = threading.Thread(
        target=lambda: client.chat_postMessage(channel="C0OPS", text="follow-up")
    )
    worker.start()
    call = api.wait_for(lambda c: c.method == "chat.postMessage" and c.args["text"] == "follow-up")
    worker.join()

    assert call.ok
    assert api.wait_for("chat.postMessage") is call


def test_wait_for_gives_up_with_timeout_error_naming_calls_seen(api, client):
    client.auth_test()
    with pytest.raises(TimeoutError, match=r"auth\.test:ok"):
        api.wait_for("chat.postMessage", timeout=0.05)


# -- response_url ----------------------------------------------------------------------------


def test_response_url_posts_are_recorded_per_url(api):
    url = api.new_response_url(channel="C0OPS", user_id="U1")
    other = api.new_response_url(channel="C0OPS", user_id="U2")

    assert url.startswith(f"http://127.0.0.1:{api.port}/response/")
    response = WebhookClient(url).send(text="working on it")
    assert (response.status_code, response.body) == (200, "ok")
    assert api.responses_for(url) == [{"text": "working on it"}]
    assert api.responses_for(other) == []
    url_id, payload, when = api.responses[0]
    assert url.endswith(url_id) and payload["text"] == "working on it" and when > 0
    assert api.current_message(url)["text"] == "working on it"


def test_replace_and_delete_original_act_on_the_clicked_channel_message(api, client):
    ts = client.chat_postMessage(channel="C0OPS", text="Approve?", blocks=[section("Approve?")])[
        "ts"
    ]
    url = api.new_response_url(channel="C0OPS", user_id="U1", message_ts=ts)

    WebhookClient(url).send(text="checking…")  # ephemeral, the original stays
    assert api.messages[("C0OPS", ts)].text == "Approve?"
    WebhookClient(url).send(text="Approved by alice", replace_original=True)
    assert api.messages[("C0OPS", ts)].text == "Approved by alice"
    assert api.current_message(url)["text"] == "Approved by alice"
    WebhookClient(url).send(delete_original=True)
    assert ("C0OPS", ts) not in api.messages
    assert api.current_message(url) is None


def test_replace_original_on_a_command_response_url_replaces_the_last_response(api):
    url = api.new_response_url(channel="C0OPS", user_id="U1")
    WebhookClient(url).send(text="Looking…")
    WebhookClient(url).send(text="Found 2 updates", replace_original=True)

    assert api.current_message(url) == {"text": "Found 2 updates", "blocks": None}


def test_response_url_refuses_overuse_expiry_and_invalid_blocks(api):
    url = api.new_response_url(channel="C0OPS", user_id="U1")
    hook = WebhookClient(url)
    bad = hook.send(text="x", blocks=[section("x" * 3001)])
    assert (bad.status_code, bad.body) == (400, "invalid_blocks")
    for i in range(5):
        assert hook.send(text=f"use {i}").status_code == 200
    assert (hook.send(text="sixth").status_code, api.rejected_responses[-1][2]) == (
        404,
        "used_url",
    )
    expired = api.new_response_url(channel="C0OPS")
    api.expire_response_url(expired)
    assert WebhookClient(expired).send(text="late").body == "expired_url"
    assert len(api.responses) == 5


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


def test_find_buttons_lists_action_and_accessory_buttons_in_order():
    blocks = [
        section("a", block_id="s1", accessory=button("details", "d1", "Details")),
        {"type": "divider"},
        {"type": "actions", "block_id": "b2", "elements": [button("approve", "x", "Approve")]},
    ]

    assert [
        (b["action_id"], b["value"], b["block_id"], b["text"]) for b in find_buttons(blocks)
    ] == [
        ("details", "d1", "s1", "Details"),
        ("approve", "x", "b2", "Approve"),
    ]
    assert SlackUser.find_buttons(blocks) == find_buttons(blocks)


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


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        return


@pytest.fixture
def bolt_app(api: SlackWebAPI) -> Iterator[tuple[str, App]]:
    app = App(
        token=TOKEN,
        signing_secret=SECRET,
        client=WebClient(token=TOKEN, base_url=api.api_url),
    )
    server = make_server(
        "127.0.0.1",
        0,
        SlackRequestHandler(app),
        server_class=_ThreadingWSGIServer,
        handler_class=_QuietHandler,
    )
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
    )
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/slack/events", app
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


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


# -- rendering -------------------------------------------------------------------------------


def test_blocks_to_text_renders_each_block_kind_plainly():
    blocks = [
        {"type": "header", "text": {"type": "plain_text", "text": "Updates available"}},
        section("*wsi-abc123def* by <@U1> <https://example.com/x|details>"),
        {
            "type": "section",
            "fields": [
                {"type": "mrkdwn", "text": "*Region*\neu-west-1"},
                {"type": "mrkdwn", "text": "*State*\nAVAILABLE"},
            ],
        },
        {"type": "context", "elements": [{"type": "mrkdwn", "text": "asked by a"}]},
        {"type": "divider"},
        {"type": "actions", "elements": [button("a", "1", "Approve"), button("r", "1", "Reject")]},
    ]

    assert blocks_to_text(blocks, user_names={"U1": "alice"}) == "\n".join(
        [
            "Updates available",
            "wsi-abc123def by @alice details (https://example.com/x)",
            "  Region eu-west-1",
            "  State AVAILABLE",
            "asked by a",
            RULE,
            "[ Approve ]  [ Reject ]",
        ]
    )


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


# -- modals ----------------------------------------------------------------------------------


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


def test_views_open_with_a_click_trigger_opens_the_modal_for_the_clicking_user(api, client, events):
    url, capture = events
    SlackUser(url, SECRET, api).click("reject", "r-1", user_id="U2")
    trigger_id = sent_payload(capture)["trigger_id"]

    view = client.views_open(trigger_id=trigger_id, view=reason_modal())["view"]

    assert view["id"].startswith("V0") and view["hash"]
    assert (view["type"], view["team_id"], view["state"]) == ("modal", "T0WSIMG", {"values": {}})
    assert (view["callback_id"], view["private_metadata"]) == ("reject_reason", "r-1")
    assert view["title"] == plain("Reject update")
    assert view["root_view_id"] == view["id"] and view["previous_view_id"] is None
    (opened,) = api.views(user_id="U2")
    assert (opened.id, opened.user_id, opened.title, opened.view) == (
        view["id"],
        "U2",
        "Reject update",
        view,
    )
    assert api.views(user_id="U1") == []
    assert api.last_view("U2", callback_id="reject_reason").id == view["id"]
    assert api.view(view["id"]).trigger_id == trigger_id


def test_a_slash_command_trigger_opens_a_modal_too_sent_as_a_json_string(api, client, events):
    url, capture = events
    SlackUser(url, SECRET, api).command("reject r-1", user_id="U1")
    trigger_id = parse_qs(capture.requests[0][1].decode())["trigger_id"][0]

    answer = client.api_call(
        "views.open", params={"trigger_id": trigger_id, "view": json.dumps(reason_modal())}
    )

    assert answer["ok"] and api.last_view("U1").id == answer["view"]["id"]


def test_views_open_fills_in_the_block_and_action_ids_slack_generates(api, client):
    why = {"type": "input", "label": plain("Why"), "element": {"type": "plain_text_input"}}
    modal = reason_modal(blocks=[why])

    view = client.views_open(trigger_id=api.new_trigger_id(user_id="U1"), view=modal)["view"]

    block = view["blocks"][0]
    assert block["block_id"] and block["element"]["action_id"]


def test_a_trigger_id_opens_one_view_only(api, client):
    trigger_id = api.new_trigger_id(user_id="U1")
    with pytest.raises(SlackApiError) as err:  # refused views do not use the trigger up
        client.views_open(trigger_id=trigger_id, view=reason_modal(title=plain("x" * 25)))
    assert err.value.response["error"] == "invalid_arguments"

    client.views_open(trigger_id=trigger_id, view=reason_modal())
    with pytest.raises(SlackApiError) as err:
        client.views_open(trigger_id=trigger_id, view=reason_modal())
    assert err.value.response["error"] == "exchanged_trigger_id"
    assert len(api.views()) == 1


def test_unknown_and_expired_trigger_ids_are_refused(api, client):
    with pytest.raises(SlackApiError) as err:
        client.views_open(trigger_id="12345.98765.abcd2358fdea", view=reason_modal())
    assert err.value.response["error"] == "invalid_trigger_id"

    old = api.new_trigger_id(user_id="U1")
    api.expire_trigger_id(old)
    with pytest.raises(SlackApiError) as err:
        client.views_open(trigger_id=old, view=reason_modal())
    assert err.value.response["error"] == "expired_trigger_id"
    assert api.views() == []


def test_trigger_ids_expire_after_the_ttl_on_the_clock():
    with SlackWebAPI(bot_token=TOKEN, trigger_ttl=0.05) as api:
        client = WebClient(token=TOKEN, base_url=api.api_url)
        trigger_id = api.new_trigger_id(user_id="U1")
        time.sleep(0.1)
        with pytest.raises(SlackApiError) as err:
            client.views_open(trigger_id=trigger_id, view=reason_modal())
    assert err.value.response["error"] == "expired_trigger_id"
    assert SlackWebAPI().trigger_ttl == 3.0


INVALID_VIEWS = {
    "title 25 chars": reason_modal(title=plain("x" * 25)),
    "mrkdwn title": reason_modal(title={"type": "mrkdwn", "text": "*x*"}),
    "no title": {k: v for k, v in reason_modal().items() if k != "title"},
    "submit 25 chars": reason_modal(submit=plain("x" * 25)),
    "close 25 chars": reason_modal(close=plain("x" * 25)),
    "home tab": reason_modal(type="home"),
    "101 blocks": reason_modal(blocks=[{"type": "divider"}] * 101),
    "callback_id 256 chars": reason_modal(callback_id="c" * 256),
    "private_metadata 3001 chars": reason_modal(private_metadata="m" * 3001),
    "external_id 256 chars": reason_modal(external_id="e" * 256),
    "input without submit": {k: v for k, v in reason_modal().items() if k != "submit"},
    "input label 2001 chars": reason_modal(blocks=[reason_input(label=plain("l" * 2001))]),
    "input block_id 256 chars": reason_modal(blocks=[reason_input(block_id="b" * 256)]),
    "input with a button": reason_modal(
        blocks=[reason_input(element=button("a", "v"))],
    ),
    "input without element": reason_modal(
        blocks=[{"type": "input", "label": plain("Reason")}],
    ),
    "input optional not a boolean": reason_modal(blocks=[reason_input(optional="yes")]),
    "duplicate block_id": reason_modal(blocks=[reason_input(), reason_input()]),
    "section text 3001 chars": reason_modal(blocks=[section("x" * 3001)]),
    "file block": reason_modal(blocks=[{"type": "file", "external_id": "f", "source": "remote"}]),
}


@pytest.mark.parametrize("view", INVALID_VIEWS.values(), ids=INVALID_VIEWS.keys())
def test_invalid_views_are_refused_with_invalid_arguments(api, client, view):
    assert validate_view(view)
    with pytest.raises(SlackApiError) as err:
        client.views_open(trigger_id=api.new_trigger_id(user_id="U1"), view=view)

    assert err.value.response["error"] == "invalid_arguments"
    messages = err.value.response["response_metadata"]["messages"]
    assert messages and all(
        m.startswith("[ERROR] ") and "[json-pointer:/view" in m for m in messages
    )
    assert api.views() == []


def test_invalid_view_messages_name_the_field_as_slack_does(api, client):
    with pytest.raises(SlackApiError) as err:
        client.views_open(
            trigger_id=api.new_trigger_id(user_id="U1"),
            view=reason_modal(title=plain("x" * 25), submit=None),
        )

    assert err.value.response["response_metadata"]["messages"] == [
        "[ERROR] must be less than 25 characters [json-pointer:/view/title/text]",
        "[ERROR] must define `submit` to use `input` block [json-pointer:/view/blocks/1/input]",
    ]


def test_views_at_the_limits_are_accepted(api, client):
    blocks = [
        reason_input(label=plain("l" * 2000), block_id="b" * 255),
        # The same action_id in different blocks is fine in a view: state is keyed by block.
        reason_input(block_id="second", element={"type": "plain_text_input", "action_id": "text"}),
        *[{"type": "divider"}] * 98,
    ]
    view = reason_modal(
        title=plain("t" * 24),
        submit=plain("s" * 24),
        close=plain("c" * 24),
        callback_id="c" * 255,
        private_metadata="m" * 3000,
        external_id="e" * 255,
        blocks=blocks,
    )
    assert len(blocks) == 100
    assert validate_view(view) == []
    assert client.views_open(trigger_id=api.new_trigger_id(user_id="U1"), view=view)["ok"]


def test_views_update_by_id_checks_the_hash(api, client):
    opened = client.views_open(trigger_id=api.new_trigger_id(user_id="U1"), view=reason_modal())
    view_id, first_hash = opened["view"]["id"], opened["view"]["hash"]

    updated = client.views_update(
        view_id=view_id, hash=first_hash, view=reason_modal(title=plain("Rejecting…"))
    )["view"]
    assert (updated["id"], updated["title"]["text"]) == (view_id, "Rejecting…")
    assert updated["hash"] != first_hash
    with pytest.raises(SlackApiError) as err:
        client.views_update(view_id=view_id, hash=first_hash, view=reason_modal())
    assert err.value.response["error"] == "hash_conflict"

    record = api.view(view_id)
    assert record.title == "Rejecting…" and record.versions[0]["title"]["text"] == "Reject update"
    assert api.views() == [record]


def test_views_update_by_external_id_and_its_refusals(api, client):
    client.views_open(
        trigger_id=api.new_trigger_id(user_id="U1"), view=reason_modal(external_id="req-r-1")
    )

    updated = client.views_update(external_id="req-r-1", view=reason_modal(title=plain("Done")))
    assert updated["view"]["title"]["text"] == "Done"
    assert api.view("req-r-1").external_id == "req-r-1"
    with pytest.raises(SlackApiError) as err:  # external_ids are unique among open views
        client.views_open(
            trigger_id=api.new_trigger_id(user_id="U2"), view=reason_modal(external_id="req-r-1")
        )
    assert err.value.response["error"] == "duplicate_external_id"
    with pytest.raises(SlackApiError) as err:
        client.views_update(external_id="nope", view=reason_modal())
    assert err.value.response["error"] == "not_found"
    with pytest.raises(SlackApiError) as err:  # slack_sdk would send only one of the two
        client.api_call(
            "views.update",
            json={"view_id": "V1", "external_id": "req-r-1", "view": reason_modal()},
        )
    assert err.value.response["response_metadata"]["messages"] == [
        "[ERROR] Cannot provide both `view_id` and `external_id`"
    ]
    with pytest.raises(SlackApiError) as err:
        client.views_update(external_id="req-r-1", view=reason_modal(title=plain("x" * 25)))
    assert err.value.response["error"] == "invalid_arguments"


def test_a_new_modal_replaces_the_one_the_user_had_open(api, client):
    first = client.views_open(trigger_id=api.new_trigger_id(user_id="U1"), view=reason_modal())
    client.views_open(trigger_id=api.new_trigger_id(user_id="U1"), view=reason_modal())

    assert len(api.views("U1")) == 1
    assert api.view(first["view"]["id"]).closed_by == "replaced"
    with pytest.raises(SlackApiError) as err:
        client.views_update(view_id=first["view"]["id"], view=reason_modal())
    assert err.value.response["error"] == "not_found"


def test_submit_view_sends_a_signed_view_submission_and_an_empty_ack_closes_it(api, client, events):
    url, capture = events
    api.set_user("U2", "bob")
    client.views_open(trigger_id=api.new_trigger_id(user_id="U2"), view=reason_modal())
    view = api.last_view("U2")

    result = SlackUser(url, SECRET, api).submit_view(
        view, {"reason": {"text": "Not tested yet"}}, user_id="U2"
    )

    headers, body = capture.requests[0]
    assert SignatureVerifier(SECRET).is_valid_request(body, headers)
    assert list(parse_qs(body.decode())) == ["payload"]
    payload = sent_payload(capture)
    assert payload["type"] == "view_submission"
    assert payload["user"] == {"id": "U2", "username": "bob", "name": "bob", "team_id": "T0WSIMG"}
    assert payload["team"]["id"] == "T0WSIMG" and payload["api_app_id"]
    assert payload["token"] and payload["response_urls"] == []
    # A fresh trigger_id, good for opening another modal.
    assert payload["trigger_id"] != view.trigger_id
    assert client.views_open(trigger_id=payload["trigger_id"], view=reason_modal())["ok"]
    sent = payload["view"]
    assert (sent["id"], sent["hash"], sent["callback_id"], sent["private_metadata"]) == (
        view.id,
        view.hash,
        "reject_reason",
        "r-1",
    )
    assert sent["blocks"] == view.blocks and sent["title"] == plain("Reject update")
    # Every input block is in state, the unfilled optional one as null.
    assert sent["state"] == {
        "values": {
            "reason": {"text": {"type": "plain_text_input", "value": "Not tested yet"}},
            "when": {"pick": {"type": "static_select", "selected_option": None}},
        }
    }
    assert (result.status, result.view_id, result.view_outcome) == (200, view.id, "closed")
    assert result.view_closed and result.view_errors == {}
    record = api.view(view.id)
    assert record.closed_by == "submission"
    assert record.submissions[0].values == sent["state"]["values"]


def test_submitted_values_take_their_shape_from_the_element_type(api, events):
    url, capture = events
    modal = reason_modal()
    modal["blocks"] += [
        {
            "type": "input",
            "block_id": "who",
            "label": plain("Notify"),
            "element": {"type": "multi_users_select", "action_id": "users"},
        },
        {
            "type": "input",
            "block_id": "note",
            "label": plain("Note"),
            "element": {
                "type": "plain_text_input",
                "action_id": "note",
                "initial_value": "as discussed",
            },
        },
    ]
    WebClient(token=TOKEN, base_url=api.api_url).views_open(
        trigger_id=api.new_trigger_id(user_id="U2"), view=modal
    )

    SlackUser(url, SECRET, api).submit_view(
        api.last_view().id, {"reason": "Broken", "when": {"pick": "7d"}, "who": {"users": ["U1"]}}
    )

    values = sent_payload(capture)["view"]["state"]["values"]
    assert values["reason"]["text"]["value"] == "Broken"
    assert values["when"]["pick"] == {
        "type": "static_select",
        "selected_option": option("Next week", "7d"),
    }
    assert values["who"]["users"] == {"type": "multi_users_select", "selected_users": ["U1"]}
    assert values["note"]["note"]["value"] == "as discussed"  # left as it was shown


def test_errors_ack_keeps_the_view_open_until_an_empty_ack(api, client, events):
    url, capture = events
    client.views_open(trigger_id=api.new_trigger_id(user_id="U2"), view=reason_modal())
    view = api.last_view("U2")
    user = SlackUser(url, SECRET, api)
    capture.reply_type = "application/json"
    capture.reply_body = b'{"response_action": "errors", "errors": {"reason": "Say a bit more"}}'

    result = user.submit_view(view, {"reason": {"text": "no"}})

    assert result.response_action == "errors" and result.view_outcome == "errors"
    assert result.view_errors == {"reason": "Say a bit more"} and not result.view_closed
    assert [v.id for v in api.views("U2")] == [view.id]
    assert api.view(view.id).submissions[0].errors == {"reason": "Say a bit more"}

    capture.reply_body = b""
    assert user.submit_view(view, {"reason": {"text": "Not tested yet"}}).view_closed
    assert api.views("U2") == []
    with pytest.raises(ValueError, match="closed"):
        user.submit_view(view, {"reason": {"text": "again"}})


def test_acks_slack_cannot_use_leave_the_view_open(api, client, events):
    url, capture = events
    client.views_open(trigger_id=api.new_trigger_id(user_id="U2"), view=reason_modal())
    view = api.last_view("U2")
    user = SlackUser(url, SECRET, api)
    capture.reply_type = "application/json"

    capture.reply_body = b'{"response_action": "errors", "errors": {"nope": "x"}}'
    assert user.submit_view(view, {"reason": "x"}).view_outcome == "failed"
    capture.reply_status, capture.reply_body = 500, b""
    assert user.submit_view(view, {"reason": "x"}).view_outcome == "failed"

    record = api.view(view.id)
    assert not record.closed
    assert "nope" in record.submissions[0].problems[0]
    assert record.submissions[1].problems == ["the app answered HTTP 500"]


def test_update_push_and_clear_acks_act_on_the_view_stack(api, client, events):
    url, capture = events
    client.views_open(trigger_id=api.new_trigger_id(user_id="U2"), view=reason_modal())
    root = api.last_view("U2")
    user = SlackUser(url, SECRET, api)
    capture.reply_type = "application/json"
    thanks = {"type": "modal", "title": plain("Thanks"), "blocks": [section("Rejected.")]}

    capture.reply_body = json.dumps({"response_action": "update", "view": thanks}).encode()
    assert user.submit_view(root, {"reason": "x"}).view_outcome == "updated"
    assert api.view(root.id).title == "Thanks" and api.view(root.id).is_open

    capture.reply_body = json.dumps(
        {"response_action": "push", "view": reason_modal(callback_id="more")}
    ).encode()
    assert user.submit_view(root.id, {}).view_outcome == "pushed"
    pushed = api.last_view("U2")
    assert (pushed.callback_id, pushed.view["previous_view_id"]) == ("more", root.id)
    assert pushed.root_view_id == root.id

    capture.reply_body = b'{"response_action": "clear"}'
    assert user.submit_view(pushed, {"reason": "x"}).view_closed
    assert api.views("U2") == []


def test_submit_view_refuses_what_slack_would_not_let_the_user_send(api, client, events):
    url, capture = events
    client.views_open(trigger_id=api.new_trigger_id(user_id="U2"), view=reason_modal())
    view = api.last_view("U2")
    user = SlackUser(url, SECRET, api)

    with pytest.raises(ValueError, match="'Reason' is required"):
        user.submit_view(view, {})
    with pytest.raises(ValueError, match="no input element reasn/text"):
        user.submit_view(view, {"reasn": {"text": "typo"}})
    with pytest.raises(ValueError, match="no option with value '30d'"):
        user.submit_view(view, {"reason": "x", "when": {"pick": "30d"}})
    with pytest.raises(ValueError, match="no such view"):
        user.submit_view("V999", {})
    assert capture.requests == []


def test_close_view_tells_the_app_only_when_the_view_asks_for_it(api, client, events):
    url, capture = events
    user = SlackUser(url, SECRET, api)
    client.views_open(trigger_id=api.new_trigger_id(user_id="U2"), view=reason_modal())
    quiet = api.last_view("U2")

    assert user.close_view(quiet) is None
    assert api.view(quiet.id).closed_by == "user" and capture.requests == []

    client.views_open(
        trigger_id=api.new_trigger_id(user_id="U2"), view=reason_modal(notify_on_close=True)
    )
    noisy = api.last_view("U2")
    result = user.close_view(noisy)

    assert result.status == 200 and result.view_id == noisy.id
    payload = sent_payload(capture)
    assert (payload["type"], payload["view"]["id"], payload["is_cleared"]) == (
        "view_closed",
        noisy.id,
        False,
    )
    assert api.views() == []


def test_bolt_app_opens_a_modal_from_a_click_and_receives_its_submission(api, bolt_app):
    url, app = bolt_app
    received: list[dict[str, Any]] = []

    @app.action("reject")
    def on_reject(ack, body, client):
        ack()
        client.views_open(
            trigger_id=body["trigger_id"],
            view=reason_modal(private_metadata=body["actions"][0]["value"]),
        )

    @app.view("reject_reason")
    def on_reason(ack, body, view):
        reason = view["state"]["values"]["reason"]["text"]["value"]
        if len(reason) < 5:
            ack(response_action="errors", errors={"reason": "Say a bit more"})
            return
        ack()
        received.append({"user": body["user"]["id"], "request": view["private_metadata"]})
        received[-1]["reason"] = reason

    user = SlackUser(url, SECRET, api)
    blocks = [{"type": "actions", "elements": [button("reject", "r-7", "Reject")]}]
    clicked = user.click_button(find_buttons(blocks)[0], user_id="U2", message={"blocks": blocks})
    assert clicked.status == 200
    view = api.wait_for_view("U2", callback_id="reject_reason")

    short = user.submit_view(view, {"reason": {"text": "no"}}, user_id="U2")
    assert (short.status, short.view_errors) == (200, {"reason": "Say a bit more"})
    assert api.last_view("U2").id == view.id
    done = user.submit_view(view, {"reason": {"text": "Not tested yet"}}, user_id="U2")

    assert (done.status, done.body, done.view_outcome) == (200, "", "closed")
    assert received == [{"user": "U2", "request": "r-7", "reason": "Not tested yet"}]
    assert api.views() == []


def test_bolt_view_closed_listener_gets_the_close(api, bolt_app):
    url, app = bolt_app
    closed: list[str] = []

    @app.view_closed("reject_reason")
    def on_closed(ack, view):
        ack()
        closed.append(view["id"])

    WebClient(token=TOKEN, base_url=api.api_url).views_open(
        trigger_id=api.new_trigger_id(user_id="U2"), view=reason_modal(notify_on_close=True)
    )
    view = api.last_view("U2")

    assert SlackUser(url, SECRET, api).close_view(view).status == 200
    assert closed == [view.id]


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
