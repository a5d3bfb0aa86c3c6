"""The Slack Web API stand-in answers real slack_sdk calls like Slack: methods, errors,
rate limits, waiting for calls and response_url."""

from __future__ import annotations

import http.client
import json
import threading

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler
from slack_sdk.webhook import WebhookClient

from tests.fakes.slack_kit import TOKEN, section

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
