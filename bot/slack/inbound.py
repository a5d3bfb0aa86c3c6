"""What a signed request from Slack must look like before Bolt sees it.

The signature proves a request came from Slack, not that it is well formed. Bolt and our
listeners read fields by name and type, so a payload of the wrong shape (an ``actions`` that
is not a list of objects, a user id of 100 characters, a NUL byte, a response_url that is not
Slack's) would become a 500, a database error or a message posted to an arbitrary address.
Every response URL a payload carries (``response_url``, ``response_urls[]``) must be Slack's,
whatever the payload type, because Bolt's ``respond`` (and so the error path) posts to the
first one it finds; the reason modal's ``private_metadata`` must be what wsimg wrote.
``check`` lets through what Slack really sends for the requests wsimg handles (slash
commands, button clicks, the reason modal, the URL check, and the one event it subscribes to:
``app_home_opened``, the Home tab) and answers anything else with the reason it was refused;
the server turns that into a 400. A click on the Home tab is the one click without a
response_url (Slack sends none for a view): it is recognised by its container and view, and
handlers/home.py answers it on the Home tab itself.

It also hands Bolt slash commands as JSON: Bolt parses any form body that contains the text
"payload" as an interactive payload, so `/wsimg status payload` would be lost.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from bot.slack.ids import CLOSE_VIEW

SLACK_ID = re.compile(r"^[A-Z0-9]{1,32}$")  # users, channels, teams, enterprises
USER_ID = re.compile(r"^[UWB][A-Z0-9]{1,31}$")
ACTION_ID_MAX = 255
VALUE_MAX = 2000
TEXT_MAX = 100_000  # Slack caps it well below; the body limit is the real bound
INTERACTIONS = frozenset({"block_actions", "view_submission", "view_closed"})
EVENTS = frozenset({"app_home_opened"})  # the Slack app subscribes to these alone
# An event names its user, team and channel inside ``event``; Bolt would read these first.
NOT_IN_EVENTS = ("user", "team", "enterprise", "channel", "view", "response_url")
AUTHORIZATIONS_MAX = 10  # Slack sends one (the installation the event is delivered for)
RESPONSE_URLS_MAX = 100  # one per input block at most, and a view holds 100 blocks
# The reason modal's private_metadata (bot/slack/blocks.py reason_modal): a flat JSON object.
METADATA_KEYS = frozenset({"request", "cancel", "channel"})
REQUEST_ID = re.compile(r"[0-9A-Za-z_-]{1,32}")  # fits update_request.id (32 characters)


class Malformed(ValueError):
    """A signed request wsimg does not accept; the text says why."""


@dataclass(frozen=True)
class Inbound:
    body: bytes
    content_type: str


def check(body: bytes, content_type: str, *, api_url: str) -> Inbound:
    """The request to hand to Bolt, or ``Malformed``."""
    text = body.decode("utf-8")
    if content_type.split(";")[0].strip().lower() == "application/json" or text.startswith("{"):
        return _json_body(text, content_type)
    fields = _form(text)
    _no_nul(fields)
    if "payload" in fields:
        payload = _object(_json(fields["payload"]), "payload")
        _no_nul(payload)
        _interaction(payload, api_url)
        return Inbound(body, content_type)
    _command(fields, api_url)
    return Inbound(json.dumps(fields).encode(), "application/json")


def check_body(body: Any, *, api_url: str) -> None:
    """The same rules for a body Bolt has already parsed (Socket Mode delivers it parsed; over
    HTTP ``check`` ran on the raw body first): ``Malformed`` when it breaks one."""
    data = _object(body, "body")
    _no_nul(data)
    kind = data.get("type")
    if kind == "url_verification" or data.get("ssl_check") is not None:
        return  # Slack's own checks of the request URL: Bolt answers them
    if isinstance(kind, str) and kind in INTERACTIONS:
        _interaction(data, api_url)
    elif kind == "event_callback":
        _event(data)
    elif "command" in data and kind is None:
        _command(data, api_url)
    else:
        raise Malformed("not a request wsimg handles")


def _no_nul(value: Any, depth: int = 0) -> None:
    """No NUL character anywhere (PostgreSQL text cannot hold one, and Slack sends none)."""
    if depth > 32:
        raise Malformed("nested too deeply")
    if isinstance(value, str):
        if "\x00" in value:
            raise Malformed("NUL characters")
    elif isinstance(value, dict):
        for key, item in value.items():
            _no_nul(key, depth + 1)
            _no_nul(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            _no_nul(item, depth + 1)


def _json_body(text: str, content_type: str) -> Inbound:
    data = _object(_json(text), "body")
    _no_nul(data)
    # The JSON wsimg answers: the URL check Slack makes when a request URL is set, and the
    # Events API's callbacks.
    if data.get("type") == "event_callback":
        _event(data)
    elif data.get("type") != "url_verification" or not isinstance(data.get("challenge"), str):
        raise Malformed("not a request wsimg handles")
    return Inbound(text.encode(), content_type)


def _form(text: str) -> dict[str, str]:
    try:
        pairs = parse_qsl(text, keep_blank_values=True, max_num_fields=100)
    except ValueError as exc:  # more fields than any Slack request has
        raise Malformed("too many fields") from exc
    fields = dict(pairs)
    if len(fields) != len(pairs):
        raise Malformed("a field given twice")
    return fields


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise Malformed("not JSON") from exc


def _object(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise Malformed(f"{what} is not an object")
    return value


def _string(data: dict[str, Any], key: str, *, limit: int, required: bool = True) -> str | None:
    value = data.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or len(value) > limit:
        raise Malformed(f"{key} is not a string of at most {limit} characters")
    return value


def _id(data: dict[str, Any], key: str, pattern: re.Pattern[str], *, required: bool = True) -> None:
    value = _string(data, key, limit=32, required=required)
    if value is not None and not pattern.fullmatch(value):
        raise Malformed(f"{key} is not a Slack ID")


def _response_url(data: dict[str, Any], api_url: str, *, required: bool) -> None:
    url = _string(data, "response_url", limit=2000, required=required)
    if url is not None and not is_slack_url(url, api_url):
        raise Malformed("response_url is not Slack's")


def is_slack_url(url: str, api_url: str) -> bool:
    """Whether ``url`` is where Slack's response URLs live: hooks.<the API's domain> over
    https (hooks.slack.com for slack.com), or the API's own origin (a stand-in, in tests)."""
    parts, api = urlsplit(url), urlsplit(api_url)
    if not parts.hostname or parts.username or parts.password:
        return False
    if (parts.scheme, parts.netloc) == (api.scheme, api.netloc):
        return True
    return parts.scheme == "https" and parts.hostname == f"hooks.{api.hostname}"


def _command(fields: dict[str, str], api_url: str) -> None:
    _string(fields, "command", limit=64)
    _string(fields, "text", limit=TEXT_MAX)
    _id(fields, "user_id", USER_ID)
    _id(fields, "channel_id", SLACK_ID)
    _id(fields, "team_id", SLACK_ID, required=False)
    _string(fields, "trigger_id", limit=255, required=False)
    _response_url(fields, api_url, required=True)


def _interaction(payload: dict[str, Any], api_url: str) -> None:
    kind = payload.get("type")
    if not isinstance(kind, str) or kind not in INTERACTIONS:
        raise Malformed("not an interaction wsimg handles")
    _id(_object(payload.get("user"), "user"), "id", USER_ID)
    for key in ("team", "channel", "container"):
        if payload.get(key) is not None:
            _object(payload[key], key)
    if isinstance(payload.get("channel"), dict):
        _id(payload["channel"], "id", SLACK_ID, required=False)
    _string(payload, "trigger_id", limit=255, required=False)
    home = _home_click(payload)
    _response_url(payload, api_url, required=kind == "block_actions" and not home)
    _response_urls(payload, api_url)
    if kind == "block_actions":
        actions = payload.get("actions")
        if not isinstance(actions, list) or not actions:
            raise Malformed("actions is not a list")
        for action in actions:
            action = _object(action, "action")
            _string(action, "action_id", limit=ACTION_ID_MAX)
            _string(action, "value", limit=VALUE_MAX, required=False)
            _string(action, "block_id", limit=ACTION_ID_MAX, required=False)
    else:
        view = _object(payload.get("view"), "view")
        _string(view, "type", limit=32)  # Bolt reads it unguarded (workflow_step or not)
        _string(view, "callback_id", limit=ACTION_ID_MAX)
        metadata = _string(view, "private_metadata", limit=3000, required=False)
        if view.get("callback_id") == CLOSE_VIEW and not _is_reason_metadata(metadata):
            raise Malformed("private_metadata is not the reason modal's")
        if view.get("state") is not None:
            _object(_object(view["state"], "state").get("values", {}), "values")


def _home_click(payload: dict[str, Any]) -> bool:
    """Whether ``payload`` is a click on the Home tab: its container is a view, the view is a
    Home tab (checked: an object with an ID and a type), and it names no channel."""
    container = payload.get("container")
    if payload.get("type") != "block_actions" or not isinstance(container, dict):
        return False
    if container.get("type") != "view" or payload.get("channel") is not None:
        return False
    view = _object(payload.get("view"), "view")
    _id(view, "id", SLACK_ID)
    _string(view, "type", limit=32)
    if view.get("state") is not None:
        _object(_object(view["state"], "state").get("values", {}), "values")
    return view["type"] == "home"


def _event(body: dict[str, Any]) -> None:
    """An Events API callback: its envelope, then the one event wsimg handles."""
    for key in (
        "api_app_id",
        "team_id",
        "enterprise_id",
        "context_team_id",
        "context_enterprise_id",
    ):
        _id(body, key, SLACK_ID, required=False)  # bot/slack/installation.py compares some
    _string(body, "event_id", limit=64, required=False)
    for key in NOT_IN_EVENTS:
        if key in body:
            raise Malformed(f"an event with {key} outside it")
    if body.get("is_ext_shared_channel") not in (None, True, False):
        raise Malformed("is_ext_shared_channel is not a boolean")
    _authorizations(body.get("authorizations"))
    event = _object(body.get("event"), "event")
    kind = event.get("type")
    if not isinstance(kind, str) or kind not in EVENTS:
        raise Malformed("not an event wsimg handles")
    _id(event, "user", USER_ID)
    _id(event, "channel", SLACK_ID, required=False)
    _string(event, "tab", limit=32, required=False)
    _string(event, "event_ts", limit=32, required=False)
    if event.get("view") is not None:  # the Home tab last published for the user, if any
        view = _object(event["view"], "view")
        _id(view, "id", SLACK_ID, required=False)
        _string(view, "type", limit=32, required=False)


def _authorizations(entries: Any) -> None:
    """What Bolt reads first for the event's team and enterprise: a short list of objects."""
    if entries is None:
        return
    if not isinstance(entries, list) or len(entries) > AUTHORIZATIONS_MAX:
        raise Malformed(f"authorizations is not a list of at most {AUTHORIZATIONS_MAX}")
    for entry in entries:
        entry = _object(entry, "an authorizations entry")
        for key in ("team_id", "enterprise_id"):
            _id(entry, key, SLACK_ID, required=False)
        _id(entry, "user_id", USER_ID, required=False)
        for key in ("is_bot", "is_enterprise_install"):
            if entry.get(key) not in (None, True, False):
                raise Malformed(f"authorizations {key} is not a boolean")


def _response_urls(payload: dict[str, Any], api_url: str) -> None:
    """``response_urls`` of a view_submission: one object per conversation input (Slack
    sends an empty list when there is none)."""
    entries = payload.get("response_urls")
    if entries is None:
        return
    if not isinstance(entries, list) or len(entries) > RESPONSE_URLS_MAX:
        raise Malformed(f"response_urls is not a list of at most {RESPONSE_URLS_MAX}")
    for entry in entries:
        entry = _object(entry, "a response_urls entry")
        _response_url(entry, api_url, required=True)
        _string(entry, "block_id", limit=ACTION_ID_MAX)
        _string(entry, "action_id", limit=ACTION_ID_MAX)
        _id(entry, "channel_id", SLACK_ID)


def _is_reason_metadata(text: str | None) -> bool:
    """Whether ``text`` is what bot/slack/blocks.py reason_modal writes: {"request": id, "cancel":
    bool, "channel": ID or null}. It came back through the client, so it is read as untrusted:
    its nesting is bounded before it is parsed (json.loads recurses once per level)."""
    if text is None or _nesting(text) > 1:
        return False
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        return False
    if not isinstance(data, dict) or not set(data) <= METADATA_KEYS:
        return False
    request, cancel, channel = data.get("request"), data.get("cancel"), data.get("channel")
    return (
        isinstance(request, str)
        and REQUEST_ID.fullmatch(request) is not None
        and isinstance(cancel, bool)
        and (
            channel is None
            or (isinstance(channel, str) and SLACK_ID.fullmatch(channel) is not None)
        )
    )


def _nesting(text: str) -> int:
    """How deeply arrays and objects nest in JSON ``text`` (strings skipped), without parsing."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest
