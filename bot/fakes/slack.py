"""The Slack side of the fake world, shared by the tests and by ``wsimg demo``.

Three pieces, all reached over real HTTP on 127.0.0.1 so the code under test runs unchanged:

* :class:`SlackWebAPI` stands in for the Slack Web API. Point ``slack_sdk.WebClient(base_url=...)``
  (or ``SLACK_API_URL``) at :attr:`SlackWebAPI.api_url`. It answers the methods the bot uses,
  checks the bot token, enforces the Block Kit limits Slack enforces (``invalid_blocks``), can
  inject rate limits (HTTP 429 + ``Retry-After``) and other errors, serves ``response_url``
  endpoints, and records every call and the resulting channel state for assertions.
  It also plays modals: views.open (with Slack's single-use, 3-second trigger_ids) and
  views.update, validated like Slack (``invalid_arguments``), kept per user in
  :meth:`SlackWebAPI.views`.
* :class:`SlackUser` plays the Slack platform toward the bot app: it sends signed slash
  commands, button clicks and modal submissions (v0 HMAC-SHA256) to the app's events URL,
  exactly as Slack does, and can also send unsigned, wrongly signed or stale requests.
* :func:`render_transcript` / :func:`blocks_to_text` turn what the bot said into plain text for
  a terminal (the ``wsimg demo`` transcript, and readable test failure output).

Only the standard library is used, so the module ships in the package for the demo.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import itertools
import json
import re
import secrets
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from email import policy
from email.parser import BytesParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, NamedTuple
from urllib.parse import parse_qsl, urlencode, urlsplit

from bot.fakes.workspaces import Hold
from bot.slack.render import blocks_to_text, mrkdwn_to_text

__all__ = [
    "BOT_ID",
    "BOT_USER_ID",
    "HttpResult",
    "Interaction",
    "Message",
    "ModalView",
    "RecordedCall",
    "RecordedResponse",
    "SlackUser",
    "SlackWebAPI",
    "TimelineEntry",
    "ViewSubmission",
    "blocks_to_text",
    "find_buttons",
    "mrkdwn_to_text",
    "render_transcript",
    "sign_request",
    "validate_blocks",
    "validate_view",
]

BOT_USER_ID = "U0WSIMGBOT"
BOT_ID = "B0WSIMG"
APP_ID = "A0WSIMG"
BOT_NAME = "wsimg"
VERIFICATION_TOKEN = "fake-verification-token"  # noqa: S105 - deprecated Slack field, not a secret
STALE_SECONDS = 6 * 60  # older than Slack's 5-minute signature window
TRIGGER_TTL_SECONDS = 3.0  # a trigger_id opens a modal within 3 seconds, once
MAX_VIEW_STACK = 3  # views a modal stack can hold (root + 2 pushed)

_TS_BASE_MICROS = 1_700_000_000_000_000
_TS_STEP_MICROS = 100


def _format_ts(micros: int) -> str:
    return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"


# --------------------------------------------------------------------------------------------
# Block Kit validation
# --------------------------------------------------------------------------------------------

MAX_BLOCKS_PER_MESSAGE = 50
MAX_BLOCKS_PER_VIEW = 100
_BLOCK_TYPES = frozenset(
    {
        "section",
        "header",
        "context",
        "actions",
        "divider",
        "image",
        "input",
        "rich_text",
        "video",
        "file",
        "markdown",
    }
)
_VIEW_BLOCK_TYPES = _BLOCK_TYPES - {"file", "markdown"}  # those two are for messages only
_TEXT_INPUT_TYPES = frozenset(
    {"plain_text_input", "email_text_input", "url_text_input", "number_input"}
)
_INPUT_ELEMENT_TYPES = _TEXT_INPUT_TYPES | {
    "static_select",
    "multi_static_select",
    "external_select",
    "multi_external_select",
    "users_select",
    "multi_users_select",
    "conversations_select",
    "multi_conversations_select",
    "channels_select",
    "multi_channels_select",
    "checkboxes",
    "radio_buttons",
    "datepicker",
    "timepicker",
    "datetimepicker",
    "rich_text_input",
    "file_input",
}
MODAL_TEXT_MAX = 24  # title, submit and close of a modal


class _BlockChecker:
    def __init__(
        self,
        max_blocks: int,
        *,
        root: str = "",
        block_types: frozenset[str] = _BLOCK_TYPES,
        action_ids_per_block: bool = False,
    ) -> None:
        self.max_blocks = max_blocks
        self.root = root  # prefix of every json-pointer ("/view" for views)
        self.block_types = block_types
        self.action_ids_per_block = action_ids_per_block
        self.errors: list[str] = []
        self.block_ids: set[str] = set()
        self.action_ids: set[str] = set()

    def err(self, pointer: str, message: str) -> None:
        self.errors.append(f"{message} [json-pointer:{self.root}{pointer}]")

    def boolean(self, value: Any, p: str) -> None:
        if value is not None and not isinstance(value, bool):
            self.err(p, "must be a boolean")

    def view(self, v: Any) -> None:
        """A modal view object, as views.open / views.update / a response_action take it."""
        if not isinstance(v, dict):
            self.err("", "must be an object")
            return
        if v.get("type") is None:
            self.err("/type", "missing required field: type")
        elif v["type"] != "modal":
            self.err("/type", "must be a valid enum value")
        self.text(v.get("title"), "/title", MODAL_TEXT_MAX, plain_only=True)
        for key in ("submit", "close"):
            self.text(v.get(key), f"/{key}", MODAL_TEXT_MAX, plain_only=True, required=False)
        for key, limit in (("callback_id", 255), ("private_metadata", 3000), ("external_id", 255)):
            self.max_str(v.get(key), f"/{key}", limit)
        for key in ("clear_on_close", "notify_on_close"):
            self.boolean(v.get(key), f"/{key}")
        if v.get("blocks") is None:
            self.err("/blocks", "missing required field: blocks")
            return
        self.check(v["blocks"])
        if v.get("submit") is None and isinstance(v["blocks"], list):
            inputs = [
                i
                for i, b in enumerate(v["blocks"])
                if isinstance(b, dict) and b.get("type") == "input"
            ]
            if inputs:
                self.err(f"/blocks/{inputs[0]}/input", "must define `submit` to use `input` block")

    def check(self, blocks: Any) -> None:
        if not isinstance(blocks, list):
            self.err("/blocks", "must be an array")
            return
        if len(blocks) > self.max_blocks:
            self.err("/blocks", f"no more than {self.max_blocks} items allowed")
        for i, block in enumerate(blocks):
            self.block(block, f"/blocks/{i}")

    def text(
        self, obj: Any, p: str, max_len: int, *, plain_only: bool = False, required: bool = True
    ) -> None:
        if obj is None:
            if required:
                self.err(p, "missing required field")
            return
        if not isinstance(obj, dict):
            self.err(p, "must be an object")
            return
        allowed = ("plain_text",) if plain_only else ("plain_text", "mrkdwn")
        if obj.get("type") not in allowed:
            self.err(f"{p}/type", "must be a valid enum value")
        text = obj.get("text")
        if not isinstance(text, str):
            self.err(f"{p}/text", "missing required field: text")
        elif not text:
            self.err(f"{p}/text", "must be more than 0 characters")
        elif len(text) > max_len:
            self.err(f"{p}/text", f"must be less than {max_len + 1} characters")

    def max_str(self, value: Any, p: str, max_len: int) -> None:
        if value is None:
            return
        if not isinstance(value, str):
            self.err(p, "must be a string")
        elif len(value) > max_len:
            self.err(p, f"must be less than {max_len + 1} characters")

    def items(self, value: Any, p: str, lo: int, hi: int) -> list[Any]:
        if not isinstance(value, list):
            self.err(p, "must be an array")
            return []
        if len(value) < lo:
            self.err(p, f"must provide at least {lo} items")
        if len(value) > hi:
            self.err(p, f"no more than {hi} items allowed")
        return value

    def block(self, b: Any, p: str) -> None:
        if not isinstance(b, dict) or not isinstance(b.get("type"), str):
            self.err(p, "missing required field: type")
            return
        kind = b["type"]
        if kind not in self.block_types:
            self.err(f"{p}/type", "must be a valid enum value")
            return
        if self.action_ids_per_block:
            self.action_ids = set()
        if "block_id" in b:
            block_id = b["block_id"]
            self.max_str(block_id, f"{p}/block_id", 255)
            if isinstance(block_id, str):
                if block_id in self.block_ids:
                    self.err(f"{p}/block_id", f"duplicate block_id: {block_id}")
                self.block_ids.add(block_id)
        if kind == "section":
            if b.get("text") is None and not b.get("fields"):
                self.err(p, "must provide either text or fields")
            self.text(b.get("text"), f"{p}/text", 3000, required=False)
            if b.get("fields") is not None:
                for i, f in enumerate(self.items(b["fields"], f"{p}/fields", 1, 10)):
                    self.text(f, f"{p}/fields/{i}", 2000)
            if b.get("accessory") is not None:
                self.element(b["accessory"], f"{p}/accessory")
        elif kind == "header":
            self.text(b.get("text"), f"{p}/text", 150, plain_only=True)
        elif kind == "context":
            for i, e in enumerate(self.items(b.get("elements"), f"{p}/elements", 1, 10)):
                if isinstance(e, dict) and e.get("type") == "image":
                    self.max_str(e.get("alt_text"), f"{p}/elements/{i}/alt_text", 2000)
                else:
                    self.text(e, f"{p}/elements/{i}", 3000)
        elif kind == "actions":
            for i, e in enumerate(self.items(b.get("elements"), f"{p}/elements", 1, 25)):
                self.element(e, f"{p}/elements/{i}")
        elif kind == "image":
            if not isinstance(b.get("alt_text"), str):
                self.err(f"{p}/alt_text", "missing required field: alt_text")
            self.max_str(b.get("alt_text"), f"{p}/alt_text", 2000)
            self.text(b.get("title"), f"{p}/title", 2000, plain_only=True, required=False)
        elif kind == "input":
            self.input_block(b, p)

    def input_block(self, b: dict[str, Any], p: str) -> None:
        self.text(b.get("label"), f"{p}/label", 2000, plain_only=True)
        self.text(b.get("hint"), f"{p}/hint", 2000, plain_only=True, required=False)
        for key in ("optional", "dispatch_action"):
            self.boolean(b.get(key), f"{p}/{key}")
        element = b.get("element")
        if element is None:
            self.err(f"{p}/element", "missing required field: element")
        elif isinstance(element, dict) and element.get("type") not in _INPUT_ELEMENT_TYPES:
            self.err(f"{p}/element/type", "must be a valid enum value")
        else:
            self.element(element, f"{p}/element")

    def element(self, e: Any, p: str) -> None:
        if not isinstance(e, dict) or not isinstance(e.get("type"), str):
            self.err(p, "missing required field: type")
            return
        if "action_id" in e:
            action_id = e["action_id"]
            self.max_str(action_id, f"{p}/action_id", 255)
            if isinstance(action_id, str):
                if action_id in self.action_ids:
                    self.err(f"{p}/action_id", f"duplicate action_id: {action_id}")
                self.action_ids.add(action_id)
        kind = e["type"]
        if kind == "button":
            self.text(e.get("text"), f"{p}/text", 75, plain_only=True)
            self.max_str(e.get("value"), f"{p}/value", 2000)
            self.max_str(e.get("url"), f"{p}/url", 3000)
            if e.get("style") is not None and e["style"] not in ("primary", "danger"):
                self.err(f"{p}/style", "must be a valid enum value")
            if e.get("confirm") is not None:
                self.confirm(e["confirm"], f"{p}/confirm")
        elif kind in ("static_select", "multi_static_select", "overflow"):
            if kind == "overflow":
                options = self.items(e.get("options"), f"{p}/options", 1, 5)
            else:
                self.text(e.get("placeholder"), f"{p}/placeholder", 150, required=False)
                options = e.get("options") or []
                if options:
                    options = self.items(options, f"{p}/options", 1, 100)
            for i, o in enumerate(options):
                self.option(o, f"{p}/options/{i}")
        elif kind in ("checkboxes", "radio_buttons"):
            for i, o in enumerate(self.items(e.get("options"), f"{p}/options", 1, 10)):
                self.option(o, f"{p}/options/{i}")
        elif kind in _TEXT_INPUT_TYPES:
            self.text_input(e, p)
        elif kind == "image":
            self.max_str(e.get("alt_text"), f"{p}/alt_text", 2000)

    def text_input(self, e: dict[str, Any], p: str) -> None:
        self.text(e.get("placeholder"), f"{p}/placeholder", 150, plain_only=True, required=False)
        self.max_str(e.get("initial_value"), f"{p}/initial_value", 3000)
        for key in ("multiline", "focus_on_load"):
            self.boolean(e.get(key), f"{p}/{key}")
        for key, lo in (("min_length", 0), ("max_length", 1)):
            value = e.get(key)
            if value is None:
                continue
            if not isinstance(value, int) or isinstance(value, bool):
                self.err(f"{p}/{key}", "must be an integer")
            elif value < lo:
                self.err(f"{p}/{key}", f"must be at least {lo}")
            elif value > 3000:
                self.err(f"{p}/{key}", "must be at most 3000")

    def option(self, o: Any, p: str) -> None:
        if not isinstance(o, dict):
            self.err(p, "must be an object")
            return
        self.text(o.get("text"), f"{p}/text", 75)
        self.max_str(o.get("value"), f"{p}/value", 150)

    def confirm(self, c: Any, p: str) -> None:
        if not isinstance(c, dict):
            self.err(p, "must be an object")
            return
        self.text(c.get("title"), f"{p}/title", 100, plain_only=True)
        self.text(c.get("text"), f"{p}/text", 300)
        self.text(c.get("confirm"), f"{p}/confirm", 30, plain_only=True)
        self.text(c.get("deny"), f"{p}/deny", 30, plain_only=True)


def validate_blocks(blocks: Any, *, max_blocks: int = MAX_BLOCKS_PER_MESSAGE) -> list[str]:
    """Check ``blocks`` against the Block Kit limits Slack enforces for a message.

    Returns Slack-style error strings (``"must be less than 3001 characters
    [json-pointer:/blocks/0/text/text]"``); an empty list means Slack would accept them.
    Checked: at most ``max_blocks`` blocks (50 for messages, 100 for views), section text
    ≤ 3000 and fields ≤ 10 of ≤ 2000, header ≤ 150, context ≤ 10 elements, actions ≤ 25 elements,
    block_id/action_id ≤ 255 and unique in the message, button text ≤ 75, value ≤ 2000, url ≤
    3000, non-empty text objects of a valid type.
    """
    checker = _BlockChecker(max_blocks)
    checker.check(blocks)
    return checker.errors


def validate_view(view: Any) -> list[str]:
    """Check a modal view object the way views.open / views.update do.

    Returns Slack-style error strings with json-pointers under ``/view`` (an empty list means
    Slack would accept it). Checked: ``type`` is ``modal``; ``title`` (required), ``submit`` and
    ``close`` are plain_text of at most 24 characters; ``callback_id`` ≤ 255, ``private_metadata``
    ≤ 3000, ``external_id`` ≤ 255; at most 100 blocks, checked as :func:`validate_blocks` does
    (block_ids unique in the view, action_ids unique within a block) plus ``input`` blocks
    (label ≤ 2000, an input element such as plain_text_input or static_select); a view holding
    an ``input`` block must define ``submit``.
    """
    checker = _BlockChecker(
        MAX_BLOCKS_PER_VIEW,
        root="/view",
        block_types=_VIEW_BLOCK_TYPES,
        action_ids_per_block=True,
    )
    checker.view(view)
    return checker.errors


# --------------------------------------------------------------------------------------------
# Records
# --------------------------------------------------------------------------------------------


@dataclass
class RecordedCall:
    """One Web API request as the fake received it (``args`` has blocks parsed, no token)."""

    method: str
    args: dict[str, Any]
    time: float
    response: dict[str, Any] = field(default_factory=dict)
    status: int = 200

    @property
    def ok(self) -> bool:
        return self.status == 200 and bool(self.response.get("ok"))

    @property
    def error(self) -> str | None:
        return None if self.ok else self.response.get("error")


class RecordedResponse(NamedTuple):
    """One accepted POST to a response_url: ``(response_url_id, payload, time)``."""

    url_id: str
    payload: dict[str, Any]
    time: float


@dataclass
class Message:
    """A message in the fake's channel state (posted with chat.postMessage or in_channel)."""

    channel: str
    ts: str
    text: str | None
    blocks: list[dict[str, Any]] | None
    thread_ts: str | None = None
    user: str = BOT_USER_ID
    metadata: dict[str, Any] | None = None
    deleted: bool = False
    edits: list[dict[str, Any]] = field(default_factory=list)  # earlier versions, oldest first

    @property
    def is_reply(self) -> bool:
        return self.thread_ts is not None and self.thread_ts != self.ts

    def as_payload(self, team_id: str = "T0WSIMG") -> dict[str, Any]:
        """The message as Slack includes it in events and interaction payloads."""
        payload: dict[str, Any] = {
            "type": "message",
            "subtype": "bot_message",
            "text": self.text or "",
            "user": self.user,
            "bot_id": BOT_ID,
            "app_id": APP_ID,
            "team": team_id,
            "ts": self.ts,
            "blocks": copy.deepcopy(self.blocks or []),
        }
        if self.thread_ts:
            payload["thread_ts"] = self.thread_ts
        if self.metadata:
            payload["metadata"] = copy.deepcopy(self.metadata)
        return payload


@dataclass
class Interaction:
    """Something a person did in Slack (sent by :class:`SlackUser`) and the app's ack."""

    kind: str  # "command", "click", "view_submission" or "view_closed"
    user_id: str
    channel_id: str  # "" for modal interactions
    text: str  # "/wsimg updates", the clicked button's label, or the modal's title
    time: float
    status: int | None = None
    ack: Any = None  # parsed JSON ack, ack text, or None when the ack was empty
    # modal interactions: view_id, values ([(label, shown value)]), and once acked, outcome
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass
class ViewSubmission:
    """One view_submission sent by :meth:`SlackUser.submit_view`, and what Slack made of the ack.

    ``outcome`` is ``"closed"`` (empty ack: the view closes), ``"cleared"`` (the whole stack
    closes), ``"errors"`` (the view stays open showing ``errors``), ``"updated"``, ``"pushed"``
    or ``"failed"`` (an HTTP error or an ack Slack cannot use: the user sees "We had some
    trouble connecting" and the view stays open; ``problems`` says why).
    """

    user_id: str
    values: dict[str, Any]  # state.values as sent
    time: float
    status: int | None = None
    ack: Any = None
    outcome: str | None = None
    errors: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


@dataclass
class ModalView:
    """A modal in the fake's records: opened by views.open (or pushed by an ack), per user.

    ``view`` is the view as Slack returns it (``id``, ``hash``, ``state``, generated block_ids
    and action_ids filled in); ``versions`` holds earlier versions, oldest first.
    """

    id: str
    user_id: str
    view: dict[str, Any]
    opened: float
    trigger_id: str | None = None
    closed: bool = False
    closed_by: str | None = None  # "submission", "user", "clear", "replaced"
    versions: list[dict[str, Any]] = field(default_factory=list)
    submissions: list[ViewSubmission] = field(default_factory=list)

    @property
    def callback_id(self) -> str:
        return str(self.view.get("callback_id") or "")

    @property
    def external_id(self) -> str:
        return str(self.view.get("external_id") or "")

    @property
    def private_metadata(self) -> str:
        return str(self.view.get("private_metadata") or "")

    @property
    def hash(self) -> str:
        return str(self.view.get("hash") or "")

    @property
    def title(self) -> str:
        return str((self.view.get("title") or {}).get("text") or "")

    @property
    def blocks(self) -> list[dict[str, Any]]:
        return list(self.view.get("blocks") or [])

    @property
    def root_view_id(self) -> str:
        return str(self.view.get("root_view_id") or self.id)

    @property
    def is_open(self) -> bool:
        return not self.closed


@dataclass
class TimelineEntry:
    """One thing that happened, in order: a successful call, a response, an interaction."""

    kind: str  # "call" | "response" | "interaction"
    time: float
    call: RecordedCall | None = None
    response: RecordedResponse | None = None
    interaction: Interaction | None = None
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Injection:
    status: int
    error: str
    times: int
    headers: dict[str, str]


@dataclass
class _Trigger:
    user_id: str
    issued: float  # time.monotonic()
    used: bool = False


@dataclass
class _ResponseUrl:
    url_id: str
    channel: str | None
    user_id: str | None
    original: tuple[str, str] | None  # (channel, ts) of a channel message, if any
    current: dict[str, Any] | None  # what replace_original/delete_original act on
    uses: int = 0
    expired: bool = False


Predicate = Callable[[RecordedCall], bool] | str


def _matcher(predicate: Predicate) -> Callable[[RecordedCall], bool]:
    if isinstance(predicate, str):
        method = predicate
        return lambda c: c.method == method and c.ok
    return predicate


def _json_loads_maybe(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes")
    return bool(value)


# --------------------------------------------------------------------------------------------
# The Web API stand-in
# --------------------------------------------------------------------------------------------


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    api: SlackWebAPI


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    server_version = "FakeSlack/1.0"

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def log_message(self, format: str, *args: Any) -> None:
        return

    def _dispatch(self, verb: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        try:
            status, headers, payload = self.server.api._handle(
                verb, self.path, dict(self.headers.items()), body
            )
        except Exception as exc:  # noqa: BLE001 - a fake must answer, never kill its thread
            status, headers = 500, {"Content-Type": "application/json; charset=utf-8"}
            payload = json.dumps({"ok": False, "error": "fatal_error", "detail": repr(exc)})
        data = payload.encode("utf-8")
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class SlackWebAPI:
    """A Slack Web API stand-in that slack_sdk reaches over real HTTP on 127.0.0.1.

    Use as a context manager (or ``start()``/``stop()``); point ``WebClient(base_url=...)`` or
    ``SLACK_API_URL`` at :attr:`api_url`. All state is guarded by one lock; the accessors return
    copies, so tests may read while the bot writes.
    """

    def __init__(
        self,
        bot_token: str = "xoxb-test",  # noqa: S107 - a fake's default, not a credential
        *,
        team_id: str = "T0WSIMG",
        team_domain: str = "wsimg-demo",
        response_url_uses: int = 5,
        trigger_ttl: float = TRIGGER_TTL_SECONDS,
    ) -> None:
        self.bot_token = bot_token
        self.team_id = team_id
        self.team_domain = team_domain
        self.response_url_uses = response_url_uses
        self.trigger_ttl = trigger_ttl
        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._ts_counter = itertools.count(_TS_BASE_MICROS + _TS_STEP_MICROS, _TS_STEP_MICROS)
        self._calls: list[RecordedCall] = []
        self._responses: list[RecordedResponse] = []
        self._rejected_responses: list[tuple[str, Any, str]] = []
        self._timeline: list[TimelineEntry] = []
        self._messages: dict[tuple[str, str], Message] = {}
        self._ephemerals: list[dict[str, Any]] = []
        self._response_urls: dict[str, _ResponseUrl] = {}
        self._usergroups: dict[str, list[str]] = {}
        self._users: dict[str, dict[str, Any]] = {}
        self._channels: dict[str, str] = {}
        self._injections: dict[str, list[_Injection]] = {}
        self._holds: dict[str, tuple[Hold, Callable[[dict[str, Any]], bool]]] = {}
        self._triggers: dict[str, _Trigger] = {}
        self._trigger_counter = itertools.count(1)
        self._views: dict[str, ModalView] = {}  # by view id, in the order they were opened
        self._view_counter = itertools.count(1)
        self.set_user(BOT_USER_ID, BOT_NAME, is_bot=True)

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> SlackWebAPI:
        if self._server is not None:
            return self
        server = _Server(("127.0.0.1", 0), _Handler)
        server.api = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.02},  # so stop() returns promptly
            name="fake-slack-web-api",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join(timeout=5)

    def __enter__(self) -> SlackWebAPI:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("SlackWebAPI is not started")
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_url(self) -> str:
        """The Web API base URL, with trailing slash (what SLACK_API_URL is set to)."""
        return f"{self.base_url}/api/"

    # -- configuration -----------------------------------------------------------------------

    def set_usergroup(self, usergroup_id: str, user_ids: Iterable[str]) -> None:
        with self._lock:
            self._usergroups[usergroup_id] = list(user_ids)

    def set_user(
        self,
        user_id: str,
        name: str,
        *,
        real_name: str | None = None,
        tz: str = "UTC",
        is_bot: bool = False,
    ) -> None:
        with self._lock:
            self._users[user_id] = {
                "id": user_id,
                "team_id": self.team_id,
                "name": name,
                "real_name": real_name or name,
                "deleted": False,
                "is_bot": is_bot,
                "tz": tz,
                "profile": {"display_name": name, "real_name": real_name or name},
            }

    def set_channel(self, channel_id: str, name: str) -> None:
        with self._lock:
            self._channels[channel_id] = name

    def user_name(self, user_id: str) -> str:
        with self._lock:
            user = self._users.get(user_id)
        return user["name"] if user else user_id

    def channel_name(self, channel_id: str) -> str:
        with self._lock:
            name = self._channels.get(channel_id)
        if name:
            return name
        if channel_id.startswith("D"):
            return "directmessage"
        return channel_id.lower()

    @staticmethod
    def dm_channel_id(user_id: str) -> str:
        return "D" + user_id[1:]

    # -- fault injection ---------------------------------------------------------------------

    def rate_limit(self, method: str, times: int = 1, retry_after: int = 1) -> None:
        """Answer the next ``times`` calls of ``method`` with HTTP 429 + Retry-After."""
        self.inject(
            method,
            "ratelimited",
            status=429,
            times=times,
            headers={"Retry-After": str(retry_after)},
        )

    def fail(self, method: str, error: str, times: int = 1) -> None:
        """Answer the next ``times`` calls of ``method`` with ``{"ok": false, "error": error}``."""
        self.inject(method, error, times=times)

    def hold(self, method: str, when: Callable[[dict[str, Any]], bool] = lambda args: True) -> Hold:
        """Carry out calls of ``method`` whose arguments match ``when``, then keep their reply
        waiting until the hold is released: a caller killed meanwhile has posted, say, and
        never learns of it."""
        hold = Hold(method, timeout=60.0)
        with self._lock:
            self._holds[method] = (hold, when)
        return hold

    def inject(
        self,
        method: str,
        error: str,
        *,
        status: int = 200,
        times: int = 1,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        with self._lock:
            self._injections.setdefault(method, []).append(
                _Injection(status, error, times, dict(headers or {}))
            )

    # -- records -----------------------------------------------------------------------------

    @property
    def calls(self) -> list[RecordedCall]:
        """Every Web API request received, in order, including failed ones."""
        with self._lock:
            return list(self._calls)

    def calls_to(self, method: str, *, ok_only: bool = True) -> list[RecordedCall]:
        with self._lock:
            return [c for c in self._calls if c.method == method and (c.ok or not ok_only)]

    @property
    def responses(self) -> list[RecordedResponse]:
        """Accepted response_url POSTs: ``(response_url_id, payload, time)``."""
        with self._lock:
            return list(self._responses)

    @property
    def rejected_responses(self) -> list[tuple[str, Any, str]]:
        """response_url POSTs refused: ``(response_url_id, payload, error)``."""
        with self._lock:
            return list(self._rejected_responses)

    @property
    def timeline(self) -> list[TimelineEntry]:
        with self._lock:
            return list(self._timeline)

    @property
    def messages(self) -> dict[tuple[str, str], Message]:
        """Channel state: live (not deleted) messages keyed by ``(channel, ts)``, edits applied."""
        with self._lock:
            return {k: copy.deepcopy(m) for k, m in self._messages.items() if not m.deleted}

    def message(self, channel: str, ts: str) -> Message | None:
        """One message by key, deleted ones included (check ``.deleted``)."""
        with self._lock:
            m = self._messages.get((channel, ts))
            return copy.deepcopy(m) if m else None

    def posts(self, channel: str | None = None, *, include_replies: bool = True) -> list[Message]:
        """Live messages, oldest first, optionally one channel's and/or top-level only."""
        with self._lock:
            found = [
                copy.deepcopy(m)
                for m in self._messages.values()
                if not m.deleted
                and (channel is None or m.channel == channel)
                and (include_replies or not m.is_reply)
            ]
        return sorted(found, key=lambda m: m.ts)

    def thread(self, channel: str, ts: str) -> list[Message]:
        """Live replies in the thread under ``(channel, ts)``, oldest first (parent excluded)."""
        return [m for m in self.posts(channel) if m.is_reply and m.thread_ts == ts]

    def ephemerals(
        self, channel: str | None = None, user: str | None = None
    ) -> list[dict[str, Any]]:
        """chat.postEphemeral messages: dicts with channel, user, ts, text, blocks, thread_ts."""
        with self._lock:
            return [
                copy.deepcopy(e)
                for e in self._ephemerals
                if (channel is None or e["channel"] == channel)
                and (user is None or e["user"] == user)
            ]

    def wait_for(
        self, predicate: Predicate, timeout: float = 10.0, *, since: int = 0
    ) -> RecordedCall:
        """Block until a recorded call (from index ``since`` on) matches, and return it.

        ``predicate`` is a callable on :class:`RecordedCall` or a method name (which matches
        successful calls of that method). Raises ``TimeoutError`` listing the calls seen.
        """
        match = _matcher(predicate)
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for c in self._calls[since:]:
                    if match(c):
                        return c
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    seen = ", ".join(f"{c.method}:{c.error or 'ok'}" for c in self._calls)
                    raise TimeoutError(f"no matching Slack call within {timeout}s; saw [{seen}]")
                self._cond.wait(remaining)

    def wait_for_response(
        self,
        url: str | None = None,
        predicate: Callable[[dict[str, Any]], bool] | None = None,
        timeout: float = 10.0,
        *,
        since: int = 0,
    ) -> dict[str, Any]:
        """Block until a response_url payload (for ``url`` if given) matches; return it."""
        url_id = self._url_id(url) if url else None
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for r in self._responses[since:]:
                    if (url_id is None or r.url_id == url_id) and (
                        predicate is None or predicate(r.payload)
                    ):
                        return r.payload
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(
                        f"no matching response_url payload within {timeout}s; "
                        f"saw {len(self._responses)}"
                    )
                self._cond.wait(remaining)

    def views(self, user_id: str | None = None, *, include_closed: bool = False) -> list[ModalView]:
        """Modals, oldest first: the open ones (all with ``include_closed``), optionally one
        user's. Each is a copy; ``.view`` is the view as Slack returned it."""
        with self._lock:
            return [
                copy.deepcopy(v)
                for v in self._views.values()
                if (include_closed or not v.closed) and (user_id is None or v.user_id == user_id)
            ]

    def view(self, view_id: str) -> ModalView | None:
        """One modal by view id (or by external_id, preferring an open one), closed included."""
        with self._lock:
            found = self._find_view(view_id, None)
            return copy.deepcopy(found) if found else None

    def last_view(
        self,
        user_id: str | None = None,
        *,
        callback_id: str | None = None,
        include_closed: bool = False,
    ) -> ModalView | None:
        """The most recently opened modal matching (open ones only unless ``include_closed``)."""
        found = [
            v
            for v in self.views(user_id, include_closed=include_closed)
            if callback_id is None or v.callback_id == callback_id
        ]
        return found[-1] if found else None

    def wait_for_view(
        self,
        user_id: str | None = None,
        *,
        callback_id: str | None = None,
        exclude: Iterable[str] = (),
        timeout: float = 10.0,
    ) -> ModalView:
        """Block until an open modal matches (view ids in ``exclude`` do not), and return it.

        Bolt runs listeners after the ack, so the app may open its modal only after the click
        that asked for it has returned.
        """
        skip = set(exclude)
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for v in reversed(self._views.values()):
                    if (
                        not v.closed
                        and v.id not in skip
                        and (user_id is None or v.user_id == user_id)
                        and (callback_id is None or v.callback_id == callback_id)
                    ):
                        return copy.deepcopy(v)
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    seen = ", ".join(c.method + ":" + (c.error or "ok") for c in self._calls)
                    raise TimeoutError(f"no matching open modal within {timeout}s; saw [{seen}]")
                self._cond.wait(remaining)

    def expire_trigger_id(self, trigger_id: str) -> None:
        """Make a trigger_id older than Slack's 3 seconds (views.open: expired_trigger_id)."""
        with self._lock:
            trigger = self._triggers.get(trigger_id)
            if trigger:
                trigger.issued = time.monotonic() - self.trigger_ttl - 1

    def reset(self) -> None:
        """Forget recorded calls, messages, responses and modals (configuration is kept)."""
        with self._lock:
            self._views.clear()
            self._calls.clear()
            self._responses.clear()
            self._rejected_responses.clear()
            self._timeline.clear()
            self._messages.clear()
            self._ephemerals.clear()
            self._response_urls.clear()
            self._injections.clear()

    # -- response_url ------------------------------------------------------------------------

    def new_response_url(
        self,
        *,
        channel: str | None = None,
        user_id: str | None = None,
        message_ts: str | None = None,
        original: Mapping[str, Any] | None = None,
    ) -> str:
        """A fresh response_url. With ``message_ts`` it acts on that channel message (as for a
        click on a channel message); with ``original`` on that (ephemeral) message."""
        url_id = secrets.token_hex(10)
        key = (channel, message_ts) if channel and message_ts else None
        with self._lock:
            current = None
            if key and key in self._messages:
                m = self._messages[key]
                current = {"text": m.text, "blocks": copy.deepcopy(m.blocks)}
            elif original is not None:
                current = {
                    "text": original.get("text"),
                    "blocks": copy.deepcopy(original.get("blocks")),
                }
            self._response_urls[url_id] = _ResponseUrl(url_id, channel, user_id, key, current)
        return f"{self.base_url}/response/{url_id}"

    def responses_for(self, url: str) -> list[dict[str, Any]]:
        """Payloads accepted at one response_url (full URL or its id), oldest first."""
        url_id = self._url_id(url)
        with self._lock:
            return [copy.deepcopy(r.payload) for r in self._responses if r.url_id == url_id]

    def current_message(self, url: str) -> dict[str, Any] | None:
        """What the user now sees for this response_url (None once deleted)."""
        with self._lock:
            state = self._response_urls.get(self._url_id(url))
            return copy.deepcopy(state.current) if state else None

    def expire_response_url(self, url: str) -> None:
        """Make a response_url answer 404 expired_url, as after 30 minutes."""
        with self._lock:
            state = self._response_urls.get(self._url_id(url))
            if state:
                state.expired = True

    @staticmethod
    def _url_id(url: str) -> str:
        return url.rstrip("/").rsplit("/", 1)[-1]

    # -- used by SlackUser -------------------------------------------------------------------

    def next_ts(self) -> str:
        with self._lock:
            return _format_ts(next(self._ts_counter))

    def new_trigger_id(self, *, user_id: str) -> str:
        """A trigger_id as Slack puts in an interaction: good for one views.open, 3 seconds."""
        n = next(self._trigger_counter)
        trigger_id = f"{1000000000 + n}.{1000000 + n}.{secrets.token_hex(16)}"
        with self._lock:
            self._triggers[trigger_id] = _Trigger(user_id, time.monotonic())
        return trigger_id

    def view_submitted(self, view_id: str, submission: ViewSubmission) -> ViewSubmission:
        """Record a submission of an open modal and apply the app's ack to it as Slack does
        (see :class:`ViewSubmission`); returns the submission with its outcome filled in."""
        with self._cond:
            record = self._views.get(view_id)
            if record is not None:
                submission.outcome, submission.errors, submission.problems = self._apply_view_ack(
                    record, submission.status, submission.ack
                )
                record.submissions.append(submission)
            self._cond.notify_all()
        return copy.deepcopy(submission)

    def view_closed_by_user(self, view_id: str, *, clear: bool = False) -> None:
        """The user closed the modal (its whole stack with ``clear``)."""
        with self._cond:
            record = self._views.get(view_id)
            if record is not None:
                if clear:
                    self._close_stack(record.root_view_id, "user")
                else:
                    self._close_view(record, "user")
            self._cond.notify_all()

    def record_interaction(self, interaction: Interaction) -> None:
        with self._cond:
            self._timeline.append(
                TimelineEntry("interaction", interaction.time, interaction=interaction)
            )
            self._cond.notify_all()

    # -- HTTP handling -----------------------------------------------------------------------

    def _handle(
        self, verb: str, raw_path: str, headers: Mapping[str, str], body: bytes
    ) -> tuple[int, dict[str, str], str]:
        split = urlsplit(raw_path)
        path = split.path
        if path.startswith("/api/"):
            method = path[len("/api/") :]
            args = dict(parse_qsl(split.query, keep_blank_values=True))
            if verb == "POST":
                try:
                    args.update(_parse_body(body, headers.get("Content-Type", "")))
                except ValueError:
                    answer = json.dumps({"ok": False, "error": "invalid_json"})
                    return 200, {"Content-Type": "application/json; charset=utf-8"}, answer
            return self._api_call(method, args, headers)
        if path.startswith("/response/") and verb == "POST":
            return self._response_post(path[len("/response/") :], body)
        return 404, {"Content-Type": "text/plain"}, "not_found"

    def _api_call(
        self, method: str, args: dict[str, Any], headers: Mapping[str, str]
    ) -> tuple[int, dict[str, str], str]:
        token = None
        auth = headers.get("Authorization") or ""
        if auth.startswith("Bearer "):
            token = auth[len("Bearer ") :].strip()
        token = token or args.pop("token", None)
        args.pop("token", None)
        for key in ("blocks", "attachments", "metadata", "view"):
            if key in args:
                args[key] = _json_loads_maybe(args[key])
        status, extra = 200, {}
        with self._cond:
            if not token:
                response: dict[str, Any] = {"ok": False, "error": "not_authed"}
            elif not hmac.compare_digest(token, self.bot_token):
                response = {"ok": False, "error": "invalid_auth"}
            elif injection := self._take_injection(method):
                status, extra = injection.status, injection.headers
                response = {"ok": False, "error": injection.error}
            else:
                handler = _METHODS.get(method)
                if handler is None:
                    response = {"ok": False, "error": "unknown_method"}
                else:
                    response = handler(self, args)
            call = RecordedCall(method, copy.deepcopy(args), time.time(), response, status)
            self._calls.append(call)
            if call.ok:
                self._timeline.append(
                    TimelineEntry("call", call.time, call=call, detail=response.pop("_detail", {}))
                )
            response.pop("_detail", None)
            self._cond.notify_all()
            held = self._holds.get(method)
        if held is not None and call.ok and held[1](call.args) and not held[0].released:
            held[0].block()  # carried out; the reply waits (outside the lock)
        out_headers = {"Content-Type": "application/json; charset=utf-8", **extra}
        return status, out_headers, json.dumps(response)

    def _take_injection(self, method: str) -> _Injection | None:
        queue = self._injections.get(method)
        if not queue:
            return None
        injection = queue[0]
        injection.times -= 1
        if injection.times <= 0:
            queue.pop(0)
        return injection

    def _response_post(self, url_id: str, body: bytes) -> tuple[int, dict[str, str], str]:
        text_plain = {"Content-Type": "text/html"}
        try:
            payload = json.loads(body.decode("utf-8") or "null")
        except ValueError:
            payload = None
        with self._cond:
            state = self._response_urls.get(url_id)
            error = None
            if state is None:
                return 404, text_plain, "no_such_url"
            if not isinstance(payload, dict):
                error = "invalid_payload"
            elif state.expired:
                error = "expired_url"
            elif state.uses >= self.response_url_uses:
                error = "used_url"
            elif _truthy(payload.get("delete_original")):
                pass
            elif not payload.get("text") and not payload.get("blocks"):
                error = "no_text"
            elif "blocks" in payload and validate_blocks(payload["blocks"]):
                error = "invalid_blocks"
            if error:
                self._rejected_responses.append((url_id, payload, error))
                self._cond.notify_all()
                return (404 if error in ("expired_url", "used_url") else 400), text_plain, error
            assert isinstance(payload, dict)
            state.uses += 1
            detail = self._apply_response(state, payload)
            record = RecordedResponse(url_id, copy.deepcopy(payload), time.time())
            self._responses.append(record)
            self._timeline.append(
                TimelineEntry("response", record.time, response=record, detail=detail)
            )
            self._cond.notify_all()
        return 200, text_plain, "ok"

    def _apply_response(self, state: _ResponseUrl, payload: dict[str, Any]) -> dict[str, Any]:
        """Apply a response_url payload the way Slack shows it.

        With a channel message behind the URL (a click on it), replace/delete act on that
        message and plain responses are new ephemeral messages. Without one (slash commands,
        clicks on ephemeral messages), replace/delete act on the latest message from the URL.
        """
        content = {"text": payload.get("text"), "blocks": copy.deepcopy(payload.get("blocks"))}
        detail: dict[str, Any] = {"channel": state.channel, "user": state.user_id}
        original = self._messages.get(state.original) if state.original else None
        if _truthy(payload.get("delete_original")):
            detail["effect"] = "deleted"
            if original is not None:
                original.deleted = True
            state.current = None
        elif _truthy(payload.get("replace_original")):
            detail["effect"] = "replaced"
            if original is not None and not original.deleted:
                original.edits.append({"text": original.text, "blocks": original.blocks})
                original.text, original.blocks = content["text"], content["blocks"]
            state.current = content
        elif payload.get("response_type") == "in_channel" and state.channel:
            detail["effect"] = "in_channel"
            ts = self.next_ts()
            thread_ts = self._thread_root(state.channel, payload.get("thread_ts"))
            self._messages[(state.channel, ts)] = Message(
                state.channel, ts, content["text"], content["blocks"], thread_ts
            )
            detail["ts"], detail["thread_ts"] = ts, thread_ts
            if original is None:
                state.original = (state.channel, ts)
                state.current = content
        else:
            detail["effect"] = "ephemeral"
            if original is None:
                state.current = content
        return detail

    def _thread_root(self, channel: str, thread_ts: Any) -> str | None:
        if not thread_ts:
            return None
        parent = self._messages.get((channel, str(thread_ts)))
        if parent is not None and parent.thread_ts:
            return parent.thread_ts
        return str(thread_ts)

    def _resolve_channel(self, channel: Any) -> str | None:
        if not channel or not isinstance(channel, str):
            return None
        if channel[0] in "UW" and channel[1:].isalnum() and channel.isupper():
            return self.dm_channel_id(channel)
        if channel.startswith("#"):
            for cid, name in self._channels.items():
                if name == channel[1:]:
                    return cid
        return channel

    # -- modals (called with the lock held) --------------------------------------------------

    def _find_view(self, view_id: Any, external_id: Any) -> ModalView | None:
        if view_id:
            found = self._views.get(str(view_id))
            if found is not None or external_id is not None:
                return found
            external_id = view_id
        if not external_id:
            return None
        matches = [v for v in self._views.values() if v.external_id == str(external_id)]
        open_ones = [v for v in matches if not v.closed]
        candidates = open_ones or matches
        return candidates[-1] if candidates else None

    def _external_id_taken(self, view: Mapping[str, Any], but: str | None = None) -> bool:
        external_id = view.get("external_id")
        return bool(external_id) and any(
            v.external_id == external_id and not v.closed and v.id != but
            for v in self._views.values()
        )

    def _view_payload(
        self, view_id: str, spec: Mapping[str, Any], previous: ModalView | None
    ) -> dict[str, Any]:
        """The view as Slack returns it: ids filled in, state empty, a fresh hash."""
        return {
            "id": view_id,
            "team_id": self.team_id,
            "type": "modal",
            "blocks": _fill_ids(copy.deepcopy(spec.get("blocks") or [])),
            "private_metadata": spec.get("private_metadata") or "",
            "callback_id": spec.get("callback_id") or "",
            "state": {"values": {}},
            "hash": f"{int(time.time())}.{secrets.token_hex(4)}",
            "title": copy.deepcopy(spec.get("title")),
            "clear_on_close": bool(spec.get("clear_on_close", False)),
            "notify_on_close": bool(spec.get("notify_on_close", False)),
            "close": copy.deepcopy(spec.get("close")),
            "submit": copy.deepcopy(spec.get("submit")),
            "previous_view_id": previous.id if previous else None,
            "root_view_id": previous.root_view_id if previous else view_id,
            "app_id": APP_ID,
            "external_id": spec.get("external_id") or "",
            "app_installed_team_id": self.team_id,
            "bot_id": BOT_ID,
        }

    def _new_view(
        self,
        user_id: str,
        spec: Mapping[str, Any],
        *,
        previous: ModalView | None = None,
        trigger_id: str | None = None,
    ) -> ModalView:
        view_id = f"V0{next(self._view_counter):09d}"
        record = ModalView(
            view_id, user_id, self._view_payload(view_id, spec, previous), time.time(), trigger_id
        )
        self._views[view_id] = record
        return record

    def _replace_view(self, record: ModalView, spec: Mapping[str, Any]) -> None:
        previous = self._views.get(record.view.get("previous_view_id") or "")
        payload = self._view_payload(record.id, spec, previous)
        if not spec.get("external_id"):
            payload["external_id"] = record.external_id  # updating by external_id keeps it
        payload["root_view_id"] = record.root_view_id
        record.versions.append(record.view)
        record.view = payload

    def _stack(self, root_view_id: str) -> list[ModalView]:
        return [v for v in self._views.values() if not v.closed and v.root_view_id == root_view_id]

    @staticmethod
    def _close_view(record: ModalView, how: str) -> None:
        if not record.closed:
            record.closed, record.closed_by = True, how

    def _close_stack(self, root_view_id: str, how: str) -> None:
        for v in self._stack(root_view_id):
            self._close_view(v, how)

    def _exchange_trigger(self, trigger_id: Any) -> tuple[_Trigger | None, str | None]:
        """The trigger behind ``trigger_id`` if it may open a view now, else Slack's error."""
        trigger = self._triggers.get(trigger_id) if isinstance(trigger_id, str) else None
        if trigger is None:
            return None, "invalid_trigger_id"
        if trigger.used:
            return None, "exchanged_trigger_id"
        if time.monotonic() - trigger.issued > self.trigger_ttl:
            return None, "expired_trigger_id"
        return trigger, None

    def _apply_view_ack(
        self, record: ModalView, status: int | None, ack: Any
    ) -> tuple[str, dict[str, str], list[str]]:
        """What Slack does with the app's answer to a view_submission."""
        if record.closed:
            return "failed", {}, [f"view {record.id} was already closed ({record.closed_by})"]
        if status != 200:
            return "failed", {}, [f"the app answered HTTP {status}"]
        if ack is None:
            self._close_view(record, "submission")
            return "closed", {}, []
        if not isinstance(ack, dict):
            return "failed", {}, ["the ack is neither empty nor a JSON object"]
        action = ack.get("response_action")
        if action is None:
            self._close_view(record, "submission")
            return "closed", {}, []
        if action == "clear":
            self._close_stack(record.root_view_id, "clear")
            return "cleared", {}, []
        if action == "errors":
            return self._errors_ack(record, ack.get("errors"))
        if action in ("update", "push"):
            problems = validate_view(ack.get("view"))
            if problems:
                return "failed", {}, problems
            if action == "update":
                self._replace_view(record, ack["view"])
                return "updated", {}, []
            if len(self._stack(record.root_view_id)) >= MAX_VIEW_STACK:
                return "failed", {}, ["push_limit_reached"]
            self._new_view(record.user_id, ack["view"], previous=record)
            return "pushed", {}, []
        return "failed", {}, [f"unknown response_action: {action!r}"]

    @staticmethod
    def _errors_ack(record: ModalView, errors: Any) -> tuple[str, dict[str, str], list[str]]:
        if not isinstance(errors, dict) or not errors:
            return "failed", {}, ["response_action errors needs a non-empty errors object"]
        inputs = {b.get("block_id") for b in record.blocks if b.get("type") == "input"}
        unknown = sorted(str(k) for k in errors if k not in inputs)
        if unknown:
            return "failed", {}, [f"errors name no input block of the view: {', '.join(unknown)}"]
        return "errors", {str(k): str(v) for k, v in errors.items()}, []

    def _views_open(self, args: dict[str, Any]) -> dict[str, Any]:
        if not args.get("trigger_id"):
            return _invalid_arguments(["missing required field: trigger_id"])
        if args.get("view") is None:
            return _invalid_arguments(["missing required field: view"])
        trigger, error = self._exchange_trigger(args["trigger_id"])
        if trigger is None:
            return {"ok": False, "error": error}
        spec = args["view"]
        if problems := validate_view(spec):
            return _invalid_arguments(problems)
        if self._external_id_taken(spec):
            return {"ok": False, "error": "duplicate_external_id"}
        trigger.used = True
        for v in list(self._views.values()):  # a new modal replaces whatever the user had open
            if v.user_id == trigger.user_id:
                self._close_view(v, "replaced")
        record = self._new_view(trigger.user_id, spec, trigger_id=args["trigger_id"])
        return {
            "ok": True,
            "view": copy.deepcopy(record.view),
            "_detail": self._view_detail(record),
        }

    def _views_update(self, args: dict[str, Any]) -> dict[str, Any]:
        view_id, external_id = args.get("view_id"), args.get("external_id")
        if view_id and external_id:
            return _invalid_arguments(["Cannot provide both `view_id` and `external_id`"])
        if not view_id and not external_id:
            return _invalid_arguments(["must provide either `view_id` or `external_id`"])
        if args.get("view") is None:
            return _invalid_arguments(["missing required field: view"])
        record = self._find_view(view_id, external_id or "")
        if record is None or record.closed:
            return {"ok": False, "error": "not_found"}
        if args.get("hash") and args["hash"] != record.hash:
            return {"ok": False, "error": "hash_conflict"}
        spec = args["view"]
        if problems := validate_view(spec):
            return _invalid_arguments(problems)
        if self._external_id_taken(spec, but=record.id):
            return {"ok": False, "error": "duplicate_external_id"}
        self._replace_view(record, spec)
        return {
            "ok": True,
            "view": copy.deepcopy(record.view),
            "_detail": self._view_detail(record),
        }

    @staticmethod
    def _view_detail(record: ModalView) -> dict[str, Any]:
        return {"user": record.user_id, "view_id": record.id, "title": record.title}

    # -- methods (called with the lock held) -------------------------------------------------

    def _check_message_content(self, args: dict[str, Any]) -> dict[str, Any] | None:
        blocks = args.get("blocks")
        if blocks is not None:
            if not isinstance(blocks, list):
                return {"ok": False, "error": "invalid_blocks_format"}
            errors = validate_blocks(blocks)
            if errors:
                return {
                    "ok": False,
                    "error": "invalid_blocks",
                    "errors": errors,
                    "response_metadata": {"messages": [f"[ERROR] {e}" for e in errors]},
                }
        return None

    def _auth_test(self, args: dict[str, Any]) -> dict[str, Any]:
        return {
            "ok": True,
            "url": f"https://{self.team_domain}.slack.com/",
            "team": "wsimg demo",
            "user": BOT_NAME,
            "team_id": self.team_id,
            "user_id": BOT_USER_ID,
            "bot_id": BOT_ID,
            "app_id": APP_ID,
            "is_enterprise_install": False,
        }

    def _chat_post_message(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._resolve_channel(args.get("channel"))
        if channel is None:
            return {"ok": False, "error": "channel_not_found"}
        if not args.get("text") and not args.get("blocks") and not args.get("attachments"):
            return {"ok": False, "error": "no_text"}
        if problem := self._check_message_content(args):
            return problem
        ts = self.next_ts()
        thread_ts = self._thread_root(channel, args.get("thread_ts"))
        message = Message(
            channel,
            ts,
            args.get("text"),
            copy.deepcopy(args.get("blocks")),
            thread_ts,
            metadata=args.get("metadata") if isinstance(args.get("metadata"), dict) else None,
        )
        self._messages[(channel, ts)] = message
        return {
            "ok": True,
            "channel": channel,
            "ts": ts,
            "message": message.as_payload(self.team_id),
            "_detail": {"channel": channel, "ts": ts, "thread_ts": thread_ts},
        }

    def _chat_update(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._resolve_channel(args.get("channel"))
        ts = str(args.get("ts") or "")
        message = self._messages.get((channel or "", ts))
        if channel is None or not ts or message is None or message.deleted:
            return {"ok": False, "error": "message_not_found"}
        if "text" not in args and "blocks" not in args and "attachments" not in args:
            return {"ok": False, "error": "no_text"}
        if problem := self._check_message_content(args):
            return problem
        message.edits.append({"text": message.text, "blocks": copy.deepcopy(message.blocks)})
        if "text" in args:
            message.text = args["text"]
        if "blocks" in args:  # Slack keeps the old blocks when none are sent
            message.blocks = copy.deepcopy(args["blocks"])
        if isinstance(args.get("metadata"), dict):
            message.metadata = args["metadata"]
        return {
            "ok": True,
            "channel": channel,
            "ts": ts,
            "text": message.text or "",
            "message": message.as_payload(self.team_id),
            "_detail": {"channel": channel, "ts": ts, "thread_ts": message.thread_ts},
        }

    def _chat_post_ephemeral(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._resolve_channel(args.get("channel"))
        user = args.get("user")
        if channel is None:
            return {"ok": False, "error": "channel_not_found"}
        if not user:
            return {"ok": False, "error": "user_not_found"}
        if not args.get("text") and not args.get("blocks") and not args.get("attachments"):
            return {"ok": False, "error": "no_text"}
        if problem := self._check_message_content(args):
            return problem
        ts = self.next_ts()
        self._ephemerals.append(
            {
                "channel": channel,
                "user": user,
                "ts": ts,
                "text": args.get("text"),
                "blocks": copy.deepcopy(args.get("blocks")),
                "thread_ts": args.get("thread_ts"),
            }
        )
        return {"ok": True, "message_ts": ts, "_detail": {"channel": channel, "user": user}}

    def _chat_delete(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._resolve_channel(args.get("channel"))
        ts = str(args.get("ts") or "")
        message = self._messages.get((channel or "", ts))
        if message is None or message.deleted:
            return {"ok": False, "error": "message_not_found"}
        message.deleted = True
        return {
            "ok": True,
            "channel": channel,
            "ts": ts,
            "_detail": {"channel": channel, "ts": ts, "thread_ts": message.thread_ts},
        }

    def _usergroups_users_list(self, args: dict[str, Any]) -> dict[str, Any]:
        group = args.get("usergroup")
        if not group:
            return {"ok": False, "error": "invalid_arguments"}
        if group not in self._usergroups:
            return {"ok": False, "error": "no_such_subgroup"}
        return {"ok": True, "users": list(self._usergroups[group])}

    def _users_info(self, args: dict[str, Any]) -> dict[str, Any]:
        user_id = args.get("user")
        if not isinstance(user_id, str) or not re.fullmatch(r"[UW][A-Z0-9]+", user_id):
            return {"ok": False, "error": "user_not_found"}
        user = self._users.get(user_id)
        if user is None:
            name = user_id.lower()
            user = {
                "id": user_id,
                "team_id": self.team_id,
                "name": name,
                "real_name": name,
                "deleted": False,
                "is_bot": False,
                "tz": "UTC",
                "profile": {"display_name": name, "real_name": name},
            }
        return {"ok": True, "user": copy.deepcopy(user)}

    def _conversations_replies(self, args: dict[str, Any]) -> dict[str, Any]:
        """The parent and its live replies, oldest first, paged with ``cursor``/``limit``;
        message metadata only with ``include_all_metadata``."""
        channel = self._resolve_channel(args.get("channel"))
        ts = str(args.get("ts") or "")
        if channel is None:
            return {"ok": False, "error": "channel_not_found"}
        parent = self._messages.get((channel, ts))
        if parent is None or parent.deleted:
            return {"ok": False, "error": "thread_not_found"}
        replies = sorted(
            (
                m
                for m in self._messages.values()
                if m.channel == channel and m.is_reply and m.thread_ts == ts and not m.deleted
            ),
            key=lambda m: m.ts,
        )
        thread = [parent, *replies]
        try:
            limit = min(max(int(args.get("limit") or 1000), 1), 1000)
            start = int(str(args.get("cursor") or "0"))
        except ValueError:
            return {"ok": False, "error": "invalid_cursor"}
        page = thread[start : start + limit]
        messages = []
        for message in page:
            payload = message.as_payload(self.team_id)
            if not _truthy(args.get("include_all_metadata")):
                payload.pop("metadata", None)
            messages.append(payload)
        more = start + limit < len(thread)
        return {
            "ok": True,
            "messages": messages,
            "has_more": more,
            "response_metadata": {"next_cursor": str(start + limit) if more else ""},
        }

    def _conversations_open(self, args: dict[str, Any]) -> dict[str, Any]:
        if args.get("channel"):
            return {"ok": True, "channel": {"id": args["channel"]}}
        users = args.get("users")
        if isinstance(users, list):
            users = ",".join(users)
        ids = [u.strip() for u in str(users or "").split(",") if u.strip()]
        if not ids:
            return {"ok": False, "error": "users_list_not_supplied"}
        if len(ids) == 1:
            return {"ok": True, "channel": {"id": self.dm_channel_id(ids[0])}}
        digest = hashlib.sha256(",".join(sorted(ids)).encode()).hexdigest()[:10].upper()
        return {"ok": True, "channel": {"id": f"G{digest}"}}


_METHODS: dict[str, Callable[[SlackWebAPI, dict[str, Any]], dict[str, Any]]] = {
    "auth.test": SlackWebAPI._auth_test,
    "chat.postMessage": SlackWebAPI._chat_post_message,
    "chat.update": SlackWebAPI._chat_update,
    "chat.postEphemeral": SlackWebAPI._chat_post_ephemeral,
    "chat.delete": SlackWebAPI._chat_delete,
    "usergroups.users.list": SlackWebAPI._usergroups_users_list,
    "users.info": SlackWebAPI._users_info,
    "conversations.open": SlackWebAPI._conversations_open,
    "conversations.replies": SlackWebAPI._conversations_replies,
    "views.open": SlackWebAPI._views_open,
    "views.update": SlackWebAPI._views_update,
}


def _invalid_arguments(problems: Iterable[str]) -> dict[str, Any]:
    return {
        "ok": False,
        "error": "invalid_arguments",
        "response_metadata": {"messages": [f"[ERROR] {p}" for p in problems]},
    }


def _fill_ids(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Give blocks and their interactive elements the block_id / action_id Slack generates
    for those sent without one (state.values is keyed by them)."""
    for block in blocks:
        if not isinstance(block, dict):
            continue
        block.setdefault("block_id", secrets.token_urlsafe(3))
        for element in _block_elements(block):
            if element.get("type") not in (None, "image", "mrkdwn", "plain_text"):
                element.setdefault("action_id", secrets.token_urlsafe(3))
    return blocks


def _block_elements(block: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The interactive elements of a block: input element, actions elements, accessory."""
    kind = block.get("type")
    if kind == "input" and isinstance(block.get("element"), dict):
        return [block["element"]]
    if kind == "actions":
        return [e for e in block.get("elements") or [] if isinstance(e, dict)]
    if kind == "section" and isinstance(block.get("accessory"), dict):
        return [block["accessory"]]
    return []


def _parse_body(body: bytes, content_type: str) -> dict[str, Any]:
    if not body:
        return {}
    ctype = content_type.split(";", 1)[0].strip().lower()
    if ctype == "application/json":
        data = json.loads(body.decode("utf-8"))
        return dict(data) if isinstance(data, dict) else {}
    if ctype == "multipart/form-data":
        message = BytesParser(policy=policy.HTTP).parsebytes(
            b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body
        )
        out: dict[str, Any] = {}
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            raw = part.get_payload(decode=True) or b""
            if name and isinstance(raw, bytes):
                out[str(name)] = raw.decode("utf-8", errors="replace")
        return out
    return dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))


# --------------------------------------------------------------------------------------------
# The Slack platform toward the app
# --------------------------------------------------------------------------------------------


def sign_request(signing_secret: str, timestamp: int | str, body: bytes) -> str:
    """Slack's v0 signature: ``v0=`` + hex HMAC-SHA256 over ``v0:{timestamp}:{body}``."""
    base = b"v0:" + str(timestamp).encode("ascii") + b":" + body
    return "v0=" + hmac.new(signing_secret.encode("utf-8"), base, hashlib.sha256).hexdigest()


@dataclass
class HttpResult:
    """The app's answer to a request. ``headers`` keys are lower-case."""

    status: int
    headers: dict[str, str]
    body: str
    json: Any
    elapsed: float
    request_body: bytes = field(default=b"", repr=False)
    content_type: str = field(default="", repr=False)
    response_url: str | None = None
    view_id: str | None = None  # the modal a view_submission / view_closed was about
    view_outcome: str | None = None  # what Slack did with the ack (see ViewSubmission.outcome)

    @property
    def response_action(self) -> str | None:
        """``response_action`` of a view_submission ack (None for an empty ack)."""
        return self.json.get("response_action") if isinstance(self.json, dict) else None

    @property
    def view_errors(self) -> dict[str, str]:
        """``{block_id: message}`` of a ``response_action: errors`` ack, else empty."""
        if self.response_action != "errors" or not isinstance(self.json.get("errors"), dict):
            return {}
        return {str(k): str(v) for k, v in self.json["errors"].items()}

    @property
    def view_closed(self) -> bool:
        """True when the ack closed the submitted modal (empty ack or ``clear``)."""
        return self.view_outcome in ("closed", "cleared")


def find_buttons(blocks: Iterable[Mapping[str, Any]] | None) -> list[dict[str, Any]]:
    """Every button in ``blocks`` (actions elements and section accessories), in order, as
    dicts with ``action_id``, ``value``, ``block_id``, ``text``, ``style`` and ``url``."""
    found: list[dict[str, Any]] = []
    for block in blocks or []:
        if block.get("type") == "actions":
            elements = list(block.get("elements") or [])
        elif block.get("type") == "section" and block.get("accessory"):
            elements = [block["accessory"]]
        else:
            continue
        for e in elements:
            if e.get("type") != "button":
                continue
            found.append(
                {
                    "action_id": e.get("action_id"),
                    "value": e.get("value"),
                    "block_id": block.get("block_id"),
                    "text": (e.get("text") or {}).get("text", ""),
                    "style": e.get("style"),
                    "url": e.get("url"),
                }
            )
    return found


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
    ) -> HttpResult:
        """Click a button as Slack does (``payload=<block_actions json>``, signed).

        ``message`` is the message holding the button: a :class:`Message` from the fake (a
        channel message, with ts) or a dict (e.g. a response/ack; without ``ts`` it is treated
        as ephemeral and, as Slack does, left out of the payload and named in ``container``).
        ``block_id`` and the button label are taken from the message when not given.
        """
        msg = message.as_payload(self.team_id) if isinstance(message, Message) else message
        msg = dict(msg) if msg is not None else None
        button = next(
            (
                b
                for b in find_buttons((msg or {}).get("blocks"))
                if b["action_id"] == action_id and (block_id is None or b["block_id"] == block_id)
            ),
            None,
        )
        if block_id is None:
            block_id = (button or {}).get("block_id") or secrets.token_hex(3)
        label = (button or {}).get("text") or action_id
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
        self.api.record_interaction(interaction)
        body = urlencode({"payload": json.dumps(payload)}).encode("utf-8")
        result = self.post(body)
        result.response_url = response_url
        _set_ack(interaction, result)
        return result

    def click_button(self, button: Mapping[str, Any], *, user_id: str, **kwargs: Any) -> HttpResult:
        """Click a button dict as returned by :func:`find_buttons`."""
        kwargs.setdefault("block_id", button.get("block_id"))
        return self.click(button["action_id"], button.get("value"), user_id=user_id, **kwargs)

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
    **dict.fromkeys(_TEXT_INPUT_TYPES, "value"),
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
        for e in _block_elements(b)
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


# --------------------------------------------------------------------------------------------
# Transcript rendering
# --------------------------------------------------------------------------------------------


def _content_text(
    text: Any, blocks: Any, names: Mapping[str, str], *, attachments: Any = None
) -> str:
    if blocks:
        return blocks_to_text(blocks, user_names=names)
    if isinstance(text, str) and text:
        return mrkdwn_to_text(text, names)
    if attachments:
        return "\n".join(str(a.get("fallback") or a.get("text") or "") for a in attachments if a)
    return ""


def _indent(text: str, prefix: str) -> list[str]:
    return [prefix + line if line else prefix.rstrip() for line in text.splitlines() or [""]]


_VIEW_OUTCOMES = {
    "updated": f"  {BOT_NAME} updated the modal",
    "pushed": f"  {BOT_NAME} opened another modal on top",
    "failed": '  (Slack showed "We had some trouble connecting"; the modal stayed open)',
}


def _modal_interaction_lines(i: Interaction, who: Callable[[str | None], str]) -> list[str]:
    if i.kind == "view_closed":
        return [f'> {who(i.user_id)} closed "{i.text}"']
    lines = [f'> {who(i.user_id)} submitted "{i.text}"']
    for label, value in i.detail.get("values") or []:
        lines.extend(_indent(f"{label}: {value}", "    "))
    if i.status is not None and i.status >= 300:
        lines.append(f"    (the app answered HTTP {i.status})")
    outcome = i.detail.get("outcome")
    if outcome == "errors":
        lines.append(f"  {BOT_NAME} kept the modal open:")
        lines.extend(f"    {message}" for message in (i.detail.get("errors") or {}).values())
    elif outcome in _VIEW_OUTCOMES:
        lines.append(_VIEW_OUTCOMES[outcome])
    return lines


def render_transcript(api: SlackWebAPI, *, user_names: dict[str, str] | None = None) -> str:
    """Everything people did and the bot said, in time order, as readable plain text.

    Covers slash commands and clicks sent by :class:`SlackUser` (with their acks),
    chat.postMessage / update / postEphemeral / delete, response_url payloads, and modals
    (``modal opened for bob: Reject update``, then what was submitted). Thread replies are
    indented under a ``↳`` marker.
    """
    names: dict[str, str] = {}
    with api._lock:
        for uid, user in api._users.items():
            names[uid] = user["name"]
    names.update(user_names or {})

    def who(user_id: str | None) -> str:
        return names.get(user_id or "", user_id or "someone")

    def where(channel: str | None) -> str:
        if not channel:
            return "?"
        if channel.startswith("D"):
            return f"DM with {who('U' + channel[1:])}"
        with api._lock:
            known = channel in api._channels
        return "#" + api.channel_name(channel) if known else channel

    out: list[list[str]] = []

    def emit(header: str, body: str, *, reply: bool = False) -> None:
        if reply:
            out.append([f"  ↳ {header}", *_indent(body, "      ")])
        else:
            out.append([header, *_indent(body, "    ")])

    for entry in api.timeline:
        if entry.interaction is not None:
            i = entry.interaction
            if i.kind in ("view_submission", "view_closed"):
                out.append(_modal_interaction_lines(i, who))
                continue
            if i.kind == "command":
                lines = [f"> {who(i.user_id)} in {where(i.channel_id)}: {i.text}"]
            else:
                lines = [f"> {who(i.user_id)} clicked [ {i.text} ] in {where(i.channel_id)}"]
            if i.status is not None and i.status >= 300:
                lines.append(f"    (the app answered HTTP {i.status})")
            ack = i.ack
            if isinstance(ack, Mapping) and (ack.get("text") or ack.get("blocks")):
                lines.append(f"  {BOT_NAME} (only visible to {who(i.user_id)}):")
                body = _content_text(ack.get("text"), ack.get("blocks"), names)
                lines.extend(_indent(body, "    "))
            elif isinstance(ack, str) and ack.strip():
                lines.append(f"  {BOT_NAME} (only visible to {who(i.user_id)}):")
                lines.extend(_indent(ack.strip(), "    "))
            out.append(lines)
        elif entry.call is not None:
            call, d = entry.call, entry.detail
            args = call.args
            body = _content_text(
                args.get("text"), args.get("blocks"), names, attachments=args.get("attachments")
            )
            reply = bool(d.get("thread_ts")) and d.get("thread_ts") != d.get("ts")
            channel = d.get("channel")
            if call.method == "chat.postMessage":
                head = "reply in thread" if reply else where(channel)
                emit(f"{head} · {BOT_NAME}:", body, reply=reply)
            elif call.method == "chat.update":
                emit(f"{where(channel)} · {BOT_NAME} edited its message:", body, reply=reply)
            elif call.method == "chat.postEphemeral":
                emit(f"{where(channel)} · {BOT_NAME} (only visible to {who(d.get('user'))}):", body)
            elif call.method == "chat.delete":
                out.append([f"{where(channel)} · {BOT_NAME} deleted its message"])
            elif call.method in ("views.open", "views.update"):
                verb = "opened" if call.method == "views.open" else "updated"
                out.append([f"modal {verb} for {who(d.get('user'))}: {d.get('title')}"])
        elif entry.response is not None:
            payload, d = entry.response.payload, entry.detail
            body = _content_text(payload.get("text"), payload.get("blocks"), names)
            effect = d.get("effect")
            if effect == "deleted":
                out.append([f"{BOT_NAME} deleted the message"])
            elif effect == "replaced":
                emit(f"{BOT_NAME} replaced the message:", body)
            elif effect == "in_channel":
                reply = bool(d.get("thread_ts"))
                head = "reply in thread" if reply else where(d.get("channel"))
                emit(f"{head} · {BOT_NAME}:", body, reply=reply)
            else:
                emit(f"{BOT_NAME} (only visible to {who(d.get('user'))}):", body)
    return "\n\n".join("\n".join(block) for block in out) + ("\n" if out else "")
