"""Slack toward the app: :class:`SlackUser` sends signed slash commands, button clicks,
modal submissions / closes and the Home tab's event and clicks (v0 HMAC-SHA256) to the app's
events URL, exactly as Slack does, and can also send unsigned, wrongly signed or stale
requests and Slack's retries."""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import secrets
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlencode, urlsplit

from bot.fakes.slack.api import SlackWebAPI
from bot.fakes.slack.blockkit import TEXT_INPUT_TYPES, block_elements, find_buttons
from bot.fakes.slack.home import home_click, home_opened
from bot.fakes.slack.records import (
    APP_ID,
    VERIFICATION_TOKEN,
    HttpResult,
    Interaction,
    Message,
    ModalView,
    ViewSubmission,
)
from bot.slack.render import blocks_to_text


def sign_request(signing_secret: str, timestamp: int | str, body: bytes) -> str:
    """Slack's v0 signature: ``v0=`` + hex HMAC-SHA256 over ``v0:{timestamp}:{body}``."""
    base = b"v0:" + str(timestamp).encode("ascii") + b":" + body
    return "v0=" + hmac.new(signing_secret.encode("utf-8"), base, hashlib.sha256).hexdigest()


class SlackUser:
    """Plays Slack toward the app over real HTTP: signed slash commands, button clicks, and
    modal submissions / closes (:meth:`submit_view`, :meth:`close_view`).

    ``team_id``, ``enterprise_id`` (Enterprise Grid; None outside it) and ``app_id`` are the
    workspace, org and app every request names, as Slack fills them in for where the user is.
    """

    find_buttons = staticmethod(find_buttons)

    def __init__(
        self,
        events_url: str,
        signing_secret: str,
        api: SlackWebAPI,
        team_id: str = "T0WSIMG",
        *,
        enterprise_id: str | None = None,
        app_id: str = APP_ID,
        timeout: float = 30.0,
    ) -> None:
        if urlsplit(events_url).scheme not in ("http", "https"):
            raise ValueError(f"events_url must be http(s): {events_url!r}")
        self.events_url = events_url
        self.signing_secret = signing_secret
        self.api = api
        self.team_id = team_id
        self.enterprise_id = enterprise_id
        self.app_id = app_id
        self.timeout = timeout
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    # -- low level ---------------------------------------------------------------------------

    def sign(self, timestamp: int | str, body: bytes) -> str:
        return sign_request(self.signing_secret, timestamp, body)

    def post(
        self,
        body: bytes,
        content_type: str = "application/x-www-form-urlencoded",
        *,
        timestamp: int | str | None = None,
        signature: str | None = None,
        sign: bool = True,
        headers: Mapping[str, str] | None = None,
    ) -> HttpResult:
        """POST ``body`` to the events URL.

        ``sign=True`` adds a correct signature for ``timestamp`` (default: now); pass an old
        timestamp (``time.time() - STALE_SECONDS``) for a stale request, or ``signature=`` for
        a wrong one. ``sign=False`` sends no signature header (and a timestamp header only if
        ``timestamp`` is given).
        """
        req_headers = {"Content-Type": content_type, "User-Agent": "Slackbot 1.0"}
        if sign or signature is not None:
            ts = str(int(time.time()) if timestamp is None else timestamp)
            req_headers["X-Slack-Request-Timestamp"] = ts
            req_headers["X-Slack-Signature"] = signature or self.sign(ts, body)
        elif timestamp is not None:
            req_headers["X-Slack-Request-Timestamp"] = str(timestamp)
        req_headers.update(headers or {})
        request = urllib.request.Request(  # noqa: S310 - scheme checked in __init__
            self.events_url, data=body, headers=req_headers, method="POST"
        )
        started = time.monotonic()
        try:
            with self._opener.open(request, timeout=self.timeout) as resp:
                status, resp_headers, raw = resp.status, resp.headers, resp.read()
        except urllib.error.HTTPError as exc:
            status, resp_headers, raw = exc.code, exc.headers, exc.read()
        elapsed = time.monotonic() - started
        text = raw.decode("utf-8", errors="replace")
        parsed = None
        if text.strip():
            try:
                parsed = json.loads(text)
            except ValueError:
                parsed = None
        return HttpResult(
            status=status,
            headers={k.lower(): v for k, v in resp_headers.items()},
            body=text,
            json=parsed,
            elapsed=elapsed,
            request_body=body,
            content_type=content_type,
        )

    def replay(
        self, result: HttpResult, *, retry_num: int = 1, reason: str = "http_timeout"
    ) -> HttpResult:
        """Send the same request again, freshly signed, as Slack's retry does."""
        again = self.post(
            result.request_body,
            result.content_type,
            headers={"X-Slack-Retry-Num": str(retry_num), "X-Slack-Retry-Reason": reason},
        )
        again.response_url = result.response_url
        return again

    # -- what people do ----------------------------------------------------------------------

    def _trigger_id(self, user_id: str) -> str:
        return self.api.new_trigger_id(user_id=user_id)

    def command(
        self,
        text: str,
        *,
        user_id: str,
        channel_id: str = "C0OPS",
        command: str = "/wsimg",
        user_name: str | None = None,
    ) -> HttpResult:
        """Send a slash command as Slack does (form-encoded, signed); returns the app's ack."""
        response_url = self.api.new_response_url(channel=channel_id, user_id=user_id)
        fields = {
            "token": VERIFICATION_TOKEN,
            "team_id": self.team_id,
            "team_domain": self.api.team_domain,
            "channel_id": channel_id,
            "channel_name": self.api.channel_name(channel_id),
            "user_id": user_id,
            "user_name": user_name or self.api.user_name(user_id),
            "command": command,
            "text": text,
            "api_app_id": self.app_id,
            "is_enterprise_install": "false",
            "response_url": response_url,
            "trigger_id": self._trigger_id(user_id),
        }
        if self.enterprise_id is not None:
            fields.update(enterprise_id=self.enterprise_id, enterprise_name="wsimg org")
        interaction = Interaction(
            "command", user_id, channel_id, f"{command} {text}".strip(), time.time()
        )
        self.api.record_interaction(interaction)
        result = self.post(urlencode(fields).encode("utf-8"))
        result.response_url = response_url
        _set_ack(interaction, result)
        return result

    def click(
        self,
        action_id: str,
        value: str | None,
        *,
        user_id: str,
        channel_id: str = "C0OPS",
        message: Message | Mapping[str, Any] | None = None,
        block_id: str | None = None,
        response_url: str | None = None,
        container: Mapping[str, Any] | None = None,
        user_name: str | None = None,
        button: Mapping[str, Any] | None = None,
    ) -> HttpResult:
        """Click a button as Slack does (``payload=<block_actions json>``, signed).

        ``message`` is the message holding the button: a :class:`Message` from the fake (a
        channel message, with ts) or a dict (e.g. a response/ack; without ``ts`` it is treated
        as ephemeral and, as Slack does, left out of the payload and named in ``container``).
        ``block_id`` and the button label are taken from the message when not given, else from
        ``button`` (a dict from :func:`find_buttons`). The transcript shows the label, the
        section the button belongs to and its confirmation dialog, as the user saw them.
        """
        msg = message.as_payload(self.team_id) if isinstance(message, Message) else message
        msg = dict(msg) if msg is not None else None
        found = next(
            (
                b
                for b in find_buttons((msg or {}).get("blocks"))
                if b["action_id"] == action_id and (block_id is None or b["block_id"] == block_id)
            ),
            None,
        )
        shown = found or button or {}
        if block_id is None:
            block_id = shown.get("block_id") or secrets.token_hex(3)
        label = shown.get("text") or action_id
        message_ts = msg.get("ts") if msg else None
        is_ephemeral = msg is not None and not message_ts
        if container is None:
            container = {
                "type": "message",
                "message_ts": message_ts or self.api.next_ts(),
                "channel_id": channel_id,
                "is_ephemeral": is_ephemeral,
            }
        if response_url is None:
            response_url = self.api.new_response_url(
                channel=channel_id,
                user_id=user_id,
                message_ts=message_ts,
                original=msg if is_ephemeral else None,
            )
        name = user_name or self.api.user_name(user_id)
        payload: dict[str, Any] = {
            "type": "block_actions",
            "user": {"id": user_id, "username": name, "name": name, "team_id": self.team_id},
            "api_app_id": self.app_id,
            "token": VERIFICATION_TOKEN,
            "container": dict(container),
            "trigger_id": self._trigger_id(user_id),
            "team": {"id": self.team_id, "domain": self.api.team_domain},
            "enterprise": self._enterprise(),
            "is_enterprise_install": False,
            "channel": {"id": channel_id, "name": self.api.channel_name(channel_id)},
            "state": {"values": {}},
            "response_url": response_url,
            "actions": [
                {
                    "action_id": action_id,
                    "block_id": block_id,
                    "text": {"type": "plain_text", "text": label, "emoji": True},
                    "value": value,
                    "type": "button",
                    "action_ts": self.api.next_ts(),
                }
            ],
        }
        if value is None:
            del payload["actions"][0]["value"]
        if msg is not None and not is_ephemeral:
            payload["message"] = msg
        interaction = Interaction("click", user_id, channel_id, label, time.time())
        interaction.detail = {"section": shown.get("section"), "confirm": shown.get("confirm")}
        self.api.record_interaction(interaction)
        body = urlencode({"payload": json.dumps(payload)}).encode("utf-8")
        result = self.post(body)
        result.response_url = response_url
        _set_ack(interaction, result)
        return result

    def click_button(self, button: Mapping[str, Any], *, user_id: str, **kwargs: Any) -> HttpResult:
        """Click a button dict as returned by :func:`find_buttons`."""
        kwargs.setdefault("block_id", button.get("block_id"))
        return self.click(
            button["action_id"], button.get("value"), user_id=user_id, button=button, **kwargs
        )

    def open_home(self, *, user_id: str, tab: str = "home") -> HttpResult:
        """Open the app's Home tab (``tab="messages"``: its Messages tab) as ``user_id``: the
        signed JSON ``app_home_opened`` event Slack sends, with the Home last published."""
        body = home_opened(
            self.api,
            user_id=user_id,
            team_id=self.team_id,
            app_id=self.app_id,
            enterprise_id=self.enterprise_id,
            tab=tab,
        )
        interaction = Interaction("home_opened", user_id, "", tab, time.time())
        self.api.record_interaction(interaction)
        result = self.post(json.dumps(body).encode("utf-8"), "application/json")
        _set_ack(interaction, result)
        return result

    def click_home(self, button: Mapping[str, Any], *, user_id: str) -> HttpResult:
        """Click ``button`` (from :func:`find_buttons` on ``api.home(user_id)["blocks"]``, or
        a forged one) on ``user_id``'s Home tab, as Slack sends it: no channel, no
        response_url, the Home view in the payload."""
        view = self.api.home(user_id)
        if view is None:
            raise ValueError(f"no Home tab is published for {user_id}")
        payload = home_click(
            view,
            button,
            user=self._user(user_id, None),
            team={"id": self.team_id, "domain": self.api.team_domain},
            enterprise=self._enterprise(),
            app_id=self.app_id,
            trigger_id=self._trigger_id(user_id),
            action_ts=self.api.next_ts(),
        )
        label = str(button.get("text") or button["action_id"])
        interaction = Interaction("click", user_id, "", label, time.time())
        interaction.detail = {"section": button.get("section"), "confirm": button.get("confirm")}
        self.api.record_interaction(interaction)
        result = self.post(urlencode({"payload": json.dumps(payload)}).encode("utf-8"))
        _set_ack(interaction, result)
        return result

    def _modal(
        self, view: ModalView | Mapping[str, Any] | str
    ) -> tuple[dict[str, Any], ModalView | None]:
        """The view payload to send and the fake's record of it (None for a hand-made dict)."""
        view_id: Any = view.id if isinstance(view, ModalView) else view
        if isinstance(view_id, Mapping):
            view_id = view_id.get("id")
        record = self.api.view(view_id) if isinstance(view_id, str) else None
        if record is not None:
            if record.closed:
                raise ValueError(f"view {record.id} is closed ({record.closed_by})")
            return record.view, record
        if isinstance(view, Mapping):
            return copy.deepcopy(dict(view)), None
        raise ValueError(f"no such view: {view_id!r}")

    def _enterprise(self) -> dict[str, str] | None:
        if self.enterprise_id is None:
            return None
        return {"id": self.enterprise_id, "name": "wsimg org"}

    def _user(self, user_id: str, user_name: str | None) -> dict[str, Any]:
        name = user_name or self.api.user_name(user_id)
        return {"id": user_id, "username": name, "name": name, "team_id": self.team_id}

    def submit_view(
        self,
        view: ModalView | Mapping[str, Any] | str,
        values: Mapping[str, Any] | None = None,
        *,
        user_id: str | None = None,
        user_name: str | None = None,
    ) -> HttpResult:
        """Submit a modal as Slack does (``payload=<view_submission json>``, signed).

        ``view`` is a :class:`ModalView`, a view dict or a view id. ``values`` are what the
        user entered, ``{block_id: {action_id: value}}`` (or ``{block_id: value}`` for an input
        block's one element); each element's type comes from the view's blocks, so a value is
        a string for text inputs, an option value (or option dict) for selects, a list for
        multi-selects. Inputs left out keep their initial value. As Slack's client does, a
        required input left empty (or a text outside min/max_length) raises ``ValueError``
        instead of being sent. ``result.view_outcome`` says what the ack did; the fake's record
        is closed only when the ack closes the view.
        """
        payload_view, record = self._modal(view)
        user_id = user_id or (record.user_id if record else None)
        if not user_id:
            raise ValueError("user_id is needed for a view that is not in the fake's records")
        state, shown = _state_values(payload_view.get("blocks") or [], values or {})
        payload_view["state"] = {"values": state}
        payload = {
            "type": "view_submission",
            "team": {"id": self.team_id, "domain": self.api.team_domain},
            "user": self._user(user_id, user_name),
            "api_app_id": self.app_id,
            "token": VERIFICATION_TOKEN,
            "trigger_id": self._trigger_id(user_id),
            "view": payload_view,
            "response_urls": [],
            "is_enterprise_install": False,
            "enterprise": self._enterprise(),
        }
        title = str((payload_view.get("title") or {}).get("text") or "")
        interaction = Interaction("view_submission", user_id, "", title, time.time())
        interaction.detail = {"view_id": payload_view.get("id"), "values": shown}
        self.api.record_interaction(interaction)
        result = self.post(urlencode({"payload": json.dumps(payload)}).encode("utf-8"))
        _set_ack(interaction, result)
        result.view_id = payload_view.get("id")
        if record is not None:
            submission = ViewSubmission(user_id, state, interaction.time, result.status)
            submission.ack = interaction.ack
            done = self.api.view_submitted(record.id, submission)
            result.view_outcome = done.outcome
            interaction.detail.update(outcome=done.outcome, errors=done.errors)
        return result

    def close_view(
        self,
        view: ModalView | Mapping[str, Any] | str,
        *,
        user_id: str | None = None,
        user_name: str | None = None,
        is_cleared: bool = False,
    ) -> HttpResult | None:
        """Close a modal with its Cancel/X button, as the user does.

        The fake's record closes (its whole stack with ``is_cleared``). As Slack does, the app
        is told with a signed ``view_closed`` payload only when the view has
        ``notify_on_close``; then the app's ack is returned, else None.
        """
        payload_view, record = self._modal(view)
        user_id = user_id or (record.user_id if record else None)
        if not user_id:
            raise ValueError("user_id is needed for a view that is not in the fake's records")
        if record is not None:
            self.api.view_closed_by_user(record.id, clear=is_cleared)
        title = str((payload_view.get("title") or {}).get("text") or "")
        interaction = Interaction("view_closed", user_id, "", title, time.time())
        interaction.detail = {"view_id": payload_view.get("id")}
        self.api.record_interaction(interaction)
        if not payload_view.get("notify_on_close"):
            return None
        payload = {
            "type": "view_closed",
            "team": {"id": self.team_id, "domain": self.api.team_domain},
            "user": self._user(user_id, user_name),
            "api_app_id": self.app_id,
            "token": VERIFICATION_TOKEN,
            "view": payload_view,
            "is_cleared": is_cleared,
            "is_enterprise_install": False,
            "enterprise": self._enterprise(),
        }
        result = self.post(urlencode({"payload": json.dumps(payload)}).encode("utf-8"))
        _set_ack(interaction, result)
        result.view_id = payload_view.get("id")
        return result


# state.values: the key each element type keeps its value under in a view_submission
_STATE_KEYS = {
    **dict.fromkeys(TEXT_INPUT_TYPES, "value"),
    **dict.fromkeys(("static_select", "external_select", "radio_buttons"), "selected_option"),
    **dict.fromkeys(
        ("multi_static_select", "multi_external_select", "checkboxes"), "selected_options"
    ),
    "users_select": "selected_user",
    "multi_users_select": "selected_users",
    "conversations_select": "selected_conversation",
    "multi_conversations_select": "selected_conversations",
    "channels_select": "selected_channel",
    "multi_channels_select": "selected_channels",
    "datepicker": "selected_date",
    "timepicker": "selected_time",
    "datetimepicker": "selected_date_time",
    "rich_text_input": "rich_text_value",
    "file_input": "files",
}


def _state_values(
    blocks: Iterable[Mapping[str, Any]], values: Mapping[str, Any]
) -> tuple[dict[str, dict[str, Any]], list[tuple[str, str]]]:
    """``view.state.values`` for a submission of ``blocks`` with ``values`` entered, and the
    entries as ``(label, shown value)`` for the transcript. Every input block is included, as
    Slack does (``None`` / ``[]`` when left empty); other elements only when given."""
    elements: dict[tuple[str, str], tuple[Mapping[str, Any], dict[str, Any]]] = {
        (str(b.get("block_id")), str(e.get("action_id"))): (b, e)
        for b in blocks
        for e in block_elements(b)
        if e.get("type") in _STATE_KEYS
    }
    given: dict[tuple[Any, Any], Any] = {}
    for block_id, entry in values.items():
        if isinstance(entry, Mapping):
            given.update(((block_id, action_id), v) for action_id, v in entry.items())
            continue
        keys = [k for k in elements if k[0] == block_id]
        if len(keys) != 1:
            raise ValueError(f"block {block_id!r}: give {{action_id: value}} for it")
        given[keys[0]] = entry
    unknown = sorted(f"{b}/{a}" for b, a in given if (b, a) not in elements)
    if unknown:
        raise ValueError(f"the view has no input element {', '.join(unknown)}")
    state: dict[str, dict[str, Any]] = {}
    shown: list[tuple[str, str]] = []
    for (block_id, action_id), (block, element) in elements.items():
        if (block_id, action_id) not in given and block.get("type") != "input":
            continue
        key = _STATE_KEYS[element["type"]]
        if (block_id, action_id) in given:
            value = _state_value(element, given[(block_id, action_id)])
        else:
            value = _initial_value(element, key)
        _check_entered(block, element, value)
        state.setdefault(block_id, {})[action_id] = {"type": element["type"], key: value}
        if value not in (None, "", []):
            label = (block.get("label") or {}).get("text") or f"{block_id}/{action_id}"
            shown.append((str(label), _shown(value)))
    return state, shown


def _initial_value(element: Mapping[str, Any], key: str) -> Any:
    if key in ("value", "rich_text_value"):
        return element.get("initial_value")
    value = element.get(key.replace("selected_", "initial_"))
    if value is None and key.endswith("s"):
        return []
    return copy.deepcopy(value)


def _state_value(element: Mapping[str, Any], value: Any) -> Any:
    kind = element["type"]
    key = _STATE_KEYS[kind]
    if key == "selected_option":
        return None if value is None else _option(element, value)
    if key == "selected_options":
        items = [value] if isinstance(value, str | Mapping) else list(value or [])
        return [_option(element, v) for v in items]
    if key == "rich_text_value" and isinstance(value, str):
        section = {"type": "rich_text_section", "elements": [{"type": "text", "text": value}]}
        return {"type": "rich_text", "elements": [section]}
    if key.endswith("s") and isinstance(value, str):
        return [value]
    return value


def _option(element: Mapping[str, Any], value: Any) -> dict[str, Any]:
    """The option a user picked, by its value, as the element defines it."""
    if isinstance(value, Mapping):
        return copy.deepcopy(dict(value))
    options = list(element.get("options") or [])
    for group in element.get("option_groups") or []:
        options.extend(group.get("options") or [])
    for option in options:
        if option.get("value") == value:
            return copy.deepcopy(option)
    if element["type"] in ("external_select", "multi_external_select"):
        return {"text": {"type": "plain_text", "text": str(value)}, "value": str(value)}
    raise ValueError(f"{element.get('action_id')}: no option with value {value!r}")


def _check_entered(block: Mapping[str, Any], element: Mapping[str, Any], value: Any) -> None:
    """What Slack's client checks before it lets the user submit."""
    if block.get("type") != "input":
        return
    label = (block.get("label") or {}).get("text") or block.get("block_id")
    if value in (None, "", []):
        if not block.get("optional"):
            raise ValueError(f"{label!r} is required: Slack would not let the user submit")
        return
    if element["type"] == "plain_text_input" and isinstance(value, str):
        if len(value) < int(element.get("min_length") or 0):
            raise ValueError(f"{label!r} is shorter than min_length {element['min_length']}")
        if len(value) > int(element.get("max_length") or 3000):
            raise ValueError(f"{label!r} is longer than max_length")


def _shown(value: Any) -> str:
    """A submitted value as a person reads it."""
    if isinstance(value, Mapping):
        if isinstance(value.get("text"), Mapping):
            return str(value["text"].get("text") or value.get("value") or "")
        if value.get("type") == "rich_text":
            return blocks_to_text([value]).strip()
        return json.dumps(value)
    if isinstance(value, list):
        return ", ".join(_shown(v) for v in value)
    return str(value)


def _set_ack(interaction: Interaction, result: HttpResult) -> None:
    interaction.status = result.status
    if result.json is not None:
        interaction.ack = result.json
    elif result.body.strip():
        interaction.ack = result.body
    else:
        interaction.ack = None
