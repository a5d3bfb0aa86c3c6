"""The Home tab in the stand-in behaves like Slack's: views.publish checks the view and keeps one
per user, SlackUser sends the app_home_opened event and Home-tab clicks as Slack does, and a
real Bolt app accepts both."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.signature import SignatureVerifier

from bot.fakes.slack import (
    APP_ID,
    MAX_BLOCKS_PER_VIEW,
    SlackUser,
    find_buttons,
    render_transcript,
    validate_home_view,
)
from tests.fakes.slack_kit import SECRET, button, section, sent_payload


def _home(*blocks: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"type": "home", "blocks": list(blocks) or [section("Nothing yet")], **extra}


def _error(call: Any) -> dict[str, Any]:
    with pytest.raises(SlackApiError) as raised:
        call()
    return dict(raised.value.response.data)


# -- views.publish ----------------------------------------------------------------------------


def test_views_publish_keeps_one_home_per_user_with_its_earlier_versions(api, client):
    first = client.views_publish(user_id="U1", view=_home(section("one")))["view"]
    second = client.views_publish(user_id="U1", view=_home(section("two")))["view"]

    assert first["type"] == "home" and first["id"].startswith("V") and first["hash"]
    assert (first["team_id"], first["app_id"], first["state"]) == (
        "T0WSIMG",
        APP_ID,
        {"values": {}},
    )
    assert second["id"] == first["id"]  # the same Home, shown anew
    assert api.home("U1") == second
    assert [v["blocks"][0]["text"]["text"] for v in api.home_versions("U1")] == ["one", "two"]
    assert api.home("U2") is None and api.home_versions("U2") == []


def test_views_publish_refuses_what_slack_refuses(api, client):
    too_many = [section(f"line {n}") for n in range(MAX_BLOCKS_PER_VIEW + 1)]

    a_modal = _error(lambda: client.views_publish(user_id="U1", view={**_home(), "type": "modal"}))
    too_long = _error(lambda: client.views_publish(user_id="U1", view=_home(*too_many)))
    no_user = _error(lambda: client.api_call("views.publish", json={"view": _home()}))
    bad_user = _error(lambda: client.views_publish(user_id="C0OPS", view=_home()))

    assert a_modal["error"] == "invalid_arguments"
    assert "/view/type" in str(a_modal["response_metadata"])
    assert too_long["error"] == "invalid_arguments"
    assert "no more than 100 items allowed" in str(too_long["response_metadata"])
    assert no_user["error"] == "invalid_arguments" and bad_user["error"] == "user_not_found"
    assert api.home("U1") is None
    assert client.views_publish(user_id="U1", view=_home(*too_many[:MAX_BLOCKS_PER_VIEW]))["ok"]


def test_views_publish_with_a_stale_hash_is_a_conflict(api, client):
    shown = client.views_publish(user_id="U1", view=_home(section("one")))["view"]
    client.views_publish(user_id="U1", view=_home(section("two")), hash=shown["hash"])

    stale = _error(
        lambda: client.views_publish(user_id="U1", view=_home(section("3")), hash=shown["hash"])
    )

    assert stale["error"] == "hash_conflict"
    assert api.home("U1")["blocks"][0]["text"]["text"] == "two"


def test_validate_home_view_checks_the_limits_of_a_view():
    assert validate_home_view(_home()) == []
    assert validate_home_view({**_home(), "private_metadata": "x" * 3001})
    assert validate_home_view(_home({"type": "file", "source": "remote", "external_id": "f"}))
    duplicate = [section("a", block_id="b"), section("b", block_id="b")]
    assert any("duplicate block_id" in e for e in validate_home_view(_home(*duplicate)))
    assert validate_home_view({"type": "home"}) == [
        "missing required field: blocks [json-pointer:/view/blocks]"
    ]


def test_wait_for_home_returns_once_a_matching_home_is_published(api, client):
    later = threading.Timer(
        0.2, lambda: client.views_publish(user_id="U1", view=_home(section("ready")))
    )
    later.start()
    try:
        shown = api.wait_for_home("U1", lambda view: "ready" in json.dumps(view), timeout=5)
    finally:
        later.join()
    assert shown["blocks"][0]["text"]["text"] == "ready"
    with pytest.raises(TimeoutError):
        api.wait_for_home("U2", timeout=0.1)


# -- SlackUser on the Home tab ------------------------------------------------------------------


def test_open_home_sends_a_signed_app_home_opened_event_with_the_home_last_published(
    api, client, events
):
    url, capture = events
    user = SlackUser(url, SECRET, api)
    user.open_home(user_id="U1")
    published = client.views_publish(user_id="U1", view=_home(section("hello")))["view"]
    user.open_home(user_id="U1", tab="messages")

    (h1, b1), (_h2, b2) = capture.requests
    assert SignatureVerifier(SECRET).is_valid_request(b1, h1)
    assert h1["content-type"] == "application/json"
    first, second = json.loads(b1), json.loads(b2)
    assert (first["type"], first["team_id"], first["api_app_id"]) == (
        "event_callback",
        "T0WSIMG",
        APP_ID,
    )
    assert first["event"]["type"] == "app_home_opened"
    assert (first["event"]["user"], first["event"]["tab"], first["event"]["channel"]) == (
        "U1",
        "home",
        "D1",
    )
    assert "view" not in first["event"]  # nothing was published for U1 yet
    assert second["event"]["tab"] == "messages" and second["event"]["view"] == published
    assert first["event_id"] != second["event_id"]


def test_click_home_sends_a_view_click_without_channel_or_response_url(api, client, events):
    url, capture = events
    user = SlackUser(url, SECRET, api)
    with pytest.raises(ValueError, match="no Home tab"):
        user.click_home(button("pause:1", "r-1"), user_id="U1")
    view = _home(section("Rollout"), {"type": "actions", "elements": [button("pause:1", "r-1")]})
    published = client.views_publish(user_id="U1", view=view)["view"]

    (pause,) = find_buttons(api.home("U1")["blocks"])
    user.click_home(pause, user_id="U1")

    payload = sent_payload(capture)
    assert payload["type"] == "block_actions"
    assert payload["container"] == {"type": "view", "view_id": published["id"]}
    assert payload["view"] == published
    assert "channel" not in payload and "response_url" not in payload and "message" not in payload
    assert (payload["user"]["id"], payload["team"]["id"], payload["api_app_id"]) == (
        "U1",
        "T0WSIMG",
        APP_ID,
    )
    (action,) = payload["actions"]
    assert (action["action_id"], action["value"], action["block_id"]) == (
        "pause:1",
        "r-1",
        pause["block_id"],
    )


def test_the_transcript_shows_the_home_tab_opened_shown_and_clicked(api, client, events):
    url, _capture = events
    api.set_user("U1", "alice")
    user = SlackUser(url, SECRET, api)
    user.open_home(user_id="U1")
    client.views_publish(user_id="U1", view=_home(section("Updates"), section("Rollouts: 0")))
    pause = {"type": "actions", "elements": [button("p", "r", "Pause")]}
    client.views_publish(
        user_id="U1", view=_home(section("Updates"), section("Rollouts: 1"), pause)
    )
    user.click_home(find_buttons(api.home("U1")["blocks"])[0], user_id="U1")

    text = render_transcript(api)

    assert "> alice opened wsimg's Home tab" in text
    assert "Home tab of alice:\n    Updates\n    Rollouts: 0" in text  # the first in full
    assert "Home tab of alice (changed lines):" in text  # the next as what changed
    assert "    - Rollouts: 0\n    + Rollouts: 1\n    + [ Pause ]" in text
    assert '> alice in the Home tab clicked [Pause] on "Rollouts: 1"' in text


# -- a real Bolt app ----------------------------------------------------------------------------


def test_bolt_takes_the_event_and_the_click_and_publishes_through_the_fake(api, bolt_app):
    url, app = bolt_app
    clicked: list[tuple[str, str]] = []

    @app.event("app_home_opened")
    def on_open(event: dict[str, Any], client: WebClient) -> None:
        actions = {"type": "actions", "elements": [button("pause:1", "r-1", "Pause")]}
        client.views_publish(user_id=event["user"], view=_home(section("Hi"), actions))

    @app.action("pause:1")
    def on_pause(ack: Any, body: dict[str, Any]) -> None:
        ack()
        clicked.append((body["container"]["type"], body["actions"][0]["value"]))

    user = SlackUser(url, SECRET, api)
    assert user.open_home(user_id="U1").status == 200
    shown = api.wait_for_home("U1")
    assert user.click_home(find_buttons(shown["blocks"])[0], user_id="U1").status == 200

    deadline = time.monotonic() + 5
    while not clicked and time.monotonic() < deadline:
        time.sleep(0.02)
    assert clicked == [("view", "r-1")]
