"""Modals in the stand-in behave like Slack's: trigger_ids, views.open/update checks, and
what each kind of view_submission ack does."""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import parse_qs

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.signature import SignatureVerifier

from bot.fakes.slack import SlackUser, SlackWebAPI, find_buttons, validate_view
from tests.fakes.slack_kit import (
    SECRET,
    TOKEN,
    button,
    option,
    plain,
    reason_input,
    reason_modal,
    section,
    sent_payload,
)

# -- modals ----------------------------------------------------------------------------------


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
