"""Slack request signing: anything not signed by Slack gets 401 and changes nothing."""

from __future__ import annotations

import json
import time
from urllib.parse import urlencode

import pytest
from sqlmodel import select

from storage.db import session_scope
from storage.models import Event, Offer, UpdateRequest
from tests.conftest import APPROVER, World


def _nothing_changed(world: World) -> None:
    """No AWS call, no answer, no row, once every listener the app started (a wrongly
    started one included) has finished."""
    world.settle()
    assert world.simulator.calls == []
    assert world.slack.responses == []
    with session_scope(world.services.engine) as session:
        for table in (Offer, UpdateRequest, Event):
            assert session.exec(select(table)).all() == []


def _command_body() -> bytes:
    return urlencode(
        {
            "command": "/wsimg",
            "text": "updates",
            "user_id": APPROVER,
            "channel_id": "C0OPS",
            "team_id": "T0WSIMG",
            "response_url": "http://127.0.0.1:9/nowhere",
        }
    ).encode()


def _click_body() -> bytes:
    payload = {
        "type": "block_actions",
        "user": {"id": APPROVER},
        "team": {"id": "T0WSIMG"},
        "actions": [{"action_id": "wsimg.approve:0", "value": "k", "type": "button"}],
    }
    return urlencode({"payload": json.dumps(payload)}).encode()


@pytest.mark.parametrize("body", [_command_body(), _click_body()], ids=["command", "click"])
@pytest.mark.parametrize(
    "how",
    [
        {"sign": False},
        {"signature": "v0=" + "0" * 64},
        {"timestamp": int(time.time()) - 6 * 60},
    ],
    ids=["unsigned", "wrongly-signed", "stale"],
)
def test_requests_not_signed_by_slack_get_401(world: World, body: bytes, how: dict) -> None:
    world.simulator.add_image(region="us-east-1", name="Win-Signed")
    result = world.user.post(body, **how)
    assert result.status == 401
    _nothing_changed(world)


def test_healthz_answers_when_the_database_does(world: World) -> None:
    import urllib.request

    url = world.events_url.replace("/slack/events", "/healthz")
    with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 (loopback URL)
        assert response.status == 200
        assert json.loads(response.read()) == {"ok": True, "database": "ok"}


MALFORMED = {
    "not-form": b"\xff\xfe{{{not a form",
    "payload-not-json": b"payload=%7Bnot+json",
    "payload-a-list": b"payload=%5B1%2C2%5D",
    "json-body": b'{"type": "url_verification"',
    "empty": b"",
}


@pytest.mark.parametrize("body", MALFORMED.values(), ids=MALFORMED.keys())
@pytest.mark.parametrize(
    "how",
    [{"sign": False}, {"sign": False, "timestamp": "soon"}, {"signature": "v0=nonsense"}],
    ids=["unsigned", "bad-timestamp", "bad-signature"],
)
def test_malformed_unsigned_bodies_get_401_not_a_server_error(
    world: World, body: bytes, how: dict
) -> None:
    result = world.user.post(body, **how)
    assert result.status == 401
    _nothing_changed(world)


@pytest.mark.parametrize("body", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_signed_bodies_get_a_client_error_and_change_nothing(
    world: World, body: bytes
) -> None:
    result = world.user.post(body)
    assert result.status < 500  # 400, or 401 for bytes Slack never signs (not UTF-8)
    _nothing_changed(world)
    # and the app still serves
    assert world.listing()["blocks"]


def test_a_signed_body_with_more_fields_than_slack_sends_gets_400(world: World) -> None:
    body = "&".join(f"f{n}=x" for n in range(150)).encode()
    assert world.user.post(body).status == 400
    _nothing_changed(world)


def test_an_id_with_a_trailing_newline_is_refused_not_read_as_the_approver(world: World) -> None:
    image = world.simulator.add_image(region="us-east-1", name="Win-Newline")
    button = world.approve_button(world.listing(), image)

    clicked = world.user.click(button["action_id"], button["value"], user_id=APPROVER + "\n")
    asked = world.user.command("updates", user_id=APPROVER + "\n", channel_id="C0OPS")

    assert (clicked.status, asked.status) == (400, 400)
    assert world.simulator.count("CreateUpdatedWorkspaceImage") == 0
