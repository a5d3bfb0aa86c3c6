"""Socket Mode gets the same gate as HTTP: a payload of the wrong shape, a foreign response
URL or another workspace is refused before any listener; a good one is served.

Requests are handed to the app exactly as slack_bolt's SocketModeHandler hands them
(``run_bolt_app``: a ``BoltRequest`` in ``socket_mode`` with the parsed payload), so nothing
passes the HTTP server's own check first.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import pytest
from slack_bolt import App
from slack_bolt.adapter.socket_mode.internals import run_bolt_app
from slack_sdk.socket_mode.request import SocketModeRequest

from bot.fakes.slack import APP_ID
from bot.fakes.slack.listeners import TrackingExecutor
from bot.runtime import build_app
from tests.conftest import APPROVER, World

FOREIGN = "https://attacker.example/steal"


@pytest.fixture
def socket_app(world: World) -> Iterator[App]:
    app = build_app(world.services.settings, world.services, socket_mode=True)
    listeners = TrackingExecutor.around(app)
    yield app
    # What a click set going here (a Home refresh after the answer) ends before the world's
    # database is dropped; it is this app's pool, not the world's, so the world cannot wait.
    raised, running = listeners.settle(10)
    assert (raised, running) == ([], 0)


def _deliver(app: App, kind: str, payload: dict[str, Any]) -> int:
    request = SocketModeRequest(type=kind, envelope_id=secrets.token_hex(8), payload=payload)
    return int(run_bolt_app(app, request).status)


def _click(world: World, button: dict[str, Any], **changes: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "type": "block_actions",
        "user": {"id": APPROVER, "team_id": "T0WSIMG"},
        "team": {"id": "T0WSIMG"},
        "api_app_id": APP_ID,
        "channel": {"id": "C0OPS"},
        "container": {"type": "message", "channel_id": "C0OPS", "is_ephemeral": True},
        "trigger_id": "1.2.3",
        "response_url": world.slack.new_response_url(channel="C0OPS", user_id=APPROVER),
        "actions": [{"action_id": button["action_id"], "value": button["value"]}],
    }
    payload.update(changes)
    return payload


@pytest.mark.parametrize(
    "changes",
    [
        {"response_url": FOREIGN},
        {"actions": "not a list"},
        {"user": {"id": APPROVER + "\n", "team_id": "T0WSIMG"}},
        {"team": {"id": "T0OTHER"}, "user": {"id": APPROVER, "team_id": "T0OTHER"}},
        {"api_app_id": "A0OTHER"},
    ],
    ids=["foreign-response-url", "actions-not-a-list", "newline-in-id", "other-team", "other-app"],
)
def test_a_bad_socket_mode_click_is_refused_before_any_listener(
    world: World, socket_app: App, changes: dict[str, Any]
) -> None:
    image = world.simulator.add_image(region="us-east-1", name="Win-Socket")
    button = world.approve_button(world.listing(), image)

    status = _deliver(socket_app, "interactive", _click(world, button, **changes))

    assert status in (400, 403)
    assert len(world.creates()) == 0


def test_a_good_socket_mode_click_is_served(world: World, socket_app: App) -> None:
    image = world.simulator.add_image(region="us-east-1", name="Win-Socket-Good")
    button = world.approve_button(world.listing(), image)
    payload = _click(world, button)

    assert _deliver(socket_app, "interactive", payload) == 200

    world.slack.wait_for_response(payload["response_url"], timeout=15)
    assert len(world.creates()) == 1


def test_a_socket_mode_command_with_a_foreign_response_url_is_refused(
    world: World, socket_app: App
) -> None:
    command = {
        "command": "/wsimg",
        "text": "history",
        "user_id": APPROVER,
        "channel_id": "C0OPS",
        "team_id": "T0WSIMG",
        "api_app_id": APP_ID,
        "response_url": FOREIGN,
    }
    assert _deliver(socket_app, "slash_commands", command) == 400
    good = {**command, "response_url": world.slack.new_response_url(channel="C0OPS")}
    assert _deliver(socket_app, "slash_commands", good) == 200
    answer = world.slack.wait_for_response(good["response_url"], timeout=15)
    assert "requested in this channel" in str(answer)
