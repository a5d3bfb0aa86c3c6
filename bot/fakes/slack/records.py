"""What the Slack stand-in records and hands to tests: the identities its payloads carry,
the calls and responses it received, the channel state, people's interactions and modals."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, NamedTuple

BOT_USER_ID = "U0WSIMGBOT"
BOT_ID = "B0WSIMG"
APP_ID = "A0WSIMG"
BOT_NAME = "wsimg"
VERIFICATION_TOKEN = "fake-verification-token"  # noqa: S105 - deprecated Slack field, not a secret
STALE_SECONDS = 6 * 60  # older than Slack's 5-minute signature window
TRIGGER_TTL_SECONDS = 3.0  # a trigger_id opens a modal within 3 seconds, once
MAX_VIEW_STACK = 3  # views a modal stack can hold (root + 2 pushed)


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

    kind: str  # "command", "click", "view_submission", "view_closed" or "home_opened"
    user_id: str
    channel_id: str  # "" for modal and Home tab interactions
    text: str  # "/wsimg updates", the button's label, the modal's title, or the tab opened
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
