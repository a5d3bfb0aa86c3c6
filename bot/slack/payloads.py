"""Every Slack request as a typed model, checked the same way over HTTP and Socket Mode.

``Gate`` is the one Bolt middleware that runs before authorization and any listener: it
checks a Socket Mode body's shape (bot/slack/inbound.py: the rules the HTTP server already
applied to an HTTP request's raw body), refuses what is not this installation's
(bot/slack/installation.py), and parses what is left into a ``Command``, ``Click``,
``Submission`` or ``HomeOpened`` that the listeners read from ``context["payload"]`` instead
of picking at dicts. Socket Mode requests arrive parsed over the app-token websocket and never
pass the HTTP server, so without this they would skip the check.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ConfigDict
from slack_bolt.middleware import Middleware
from slack_bolt.request import BoltRequest
from slack_bolt.response import BoltResponse

from bot.slack.ids import REASON_BLOCK, REASON_INPUT
from bot.slack.inbound import Malformed, check_body
from bot.slack.installation import Installation, refused

log = logging.getLogger(__name__)

PAYLOAD = "payload"  # the context key the listeners read


class SlackPayload(BaseModel):
    model_config = ConfigDict(frozen=True)

    user_id: str


class Command(SlackPayload):
    """A slash command: `/wsimg <text>` typed in ``channel_id``."""

    text: str
    channel_id: str


class Click(SlackPayload):
    """A button click. ``value`` is only an opaque key, looked up server-side; ``message`` is
    the (channel, ts) of the channel message clicked on, ("", "") for an ephemeral one or a
    view. ``home``: clicked on the clicker's Home tab (no channel, no response_url)."""

    action_id: str
    value: str
    channel_id: str | None
    message: tuple[str, str]
    trigger_id: str
    home: bool = False


class Submission(SlackPayload):
    """The reason modal submitted (or closed): which request, reject or cancel, and why."""

    request_id: str
    cancel: bool
    reason: str


class HomeOpened(SlackPayload):
    """The app's Home tab opened (the app_home_opened event); ``tab`` is "home", or "messages"
    for the app's Messages tab, which opens the same event."""

    tab: str


AnyPayload = Command | Click | Submission | HomeOpened


def parse(body: dict[str, Any]) -> AnyPayload | None:
    """The typed payload of a body ``check_body`` accepted; None for Slack's URL and SSL checks."""
    kind = body.get("type")
    if kind == "block_actions":
        return _click(body)
    if kind in ("view_submission", "view_closed"):
        return _submission(body)
    if kind == "event_callback":  # app_home_opened, the one event accepted
        event = body["event"]
        return HomeOpened(user_id=event["user"], tab=event.get("tab") or "home")
    if "command" in body:
        return Command(
            user_id=body["user_id"], channel_id=body["channel_id"], text=body.get("text") or ""
        )
    return None


def _click(body: dict[str, Any]) -> Click:
    action = body["actions"][0]
    channel = body.get("channel") or {}
    container = body.get("container") or {}
    at = (container.get("channel_id"), container.get("message_ts"))
    on_channel_message = not container.get("is_ephemeral") and all(
        isinstance(part, str) for part in at
    )
    return Click(
        user_id=body["user"]["id"],
        action_id=action["action_id"],
        value=action.get("value") or "",
        channel_id=channel.get("id"),
        message=(str(at[0]), str(at[1])) if on_channel_message else ("", ""),
        trigger_id=body.get("trigger_id") or "",
        home=container.get("type") == "view"
        and channel.get("id") is None
        and (body.get("view") or {}).get("type") == "home",
    )


def _submission(body: dict[str, Any]) -> Submission:
    view = body["view"]
    metadata = json.loads(view.get("private_metadata") or "{}")  # checked: flat, ours
    values = (view.get("state") or {}).get("values") or {}
    field = (values.get(REASON_BLOCK) or {}).get(REASON_INPUT) or {}
    reason = field.get("value") if isinstance(field, dict) else None
    return Submission(
        user_id=body["user"]["id"],
        request_id=str(metadata.get("request") or ""),
        cancel=metadata.get("cancel") is True,
        reason=reason if isinstance(reason, str) else "",
    )


class Gate(Middleware):
    """Shape, then installation, then the typed payload; a refusal ends the request here
    (Bolt returns the response as it is when ``next()`` is not called)."""

    def __init__(self, installation: Installation, *, api_url: str) -> None:
        self.installation = installation
        self.api_url = api_url

    def process(
        self,
        *,
        req: BoltRequest,
        resp: BoltResponse,
        next: Callable[[], BoltResponse],  # Bolt passes it by this name
    ) -> BoltResponse:
        body = req.body if isinstance(req.body, dict) else {}
        # Over HTTP the server checked these very rules on the raw body before Bolt parsed it
        # (bot/slack/server.py); Socket Mode bodies arrive parsed and are checked here.
        if req.mode != "http":
            try:
                check_body(body, api_url=self.api_url)
            except Malformed as problem:
                log.warning("Slack request refused: %s", problem)
                return BoltResponse(status=400, body="")
        if refused(self.installation, body):
            return BoltResponse(status=403, body="")
        req.context[PAYLOAD] = parse(body)
        return next()
