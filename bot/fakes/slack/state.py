"""What the Slack stand-in holds, behind one lock: the workspace's users and channels, its
messages, response URLs, trigger_ids, modals and Home tabs. :class:`SlackState` is the base
the parts of :class:`~bot.fakes.slack.api.SlackWebAPI` share (the Web API methods, response
URLs, modals, Home tabs)."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from http.server import ThreadingHTTPServer
from typing import Any

from bot.fakes.hold import Hold
from bot.fakes.slack.records import (
    BOT_NAME,
    BOT_USER_ID,
    TRIGGER_TTL_SECONDS,
    Message,
    ModalView,
    RecordedCall,
    RecordedResponse,
    TimelineEntry,
)

_TS_BASE_MICROS = 1_700_000_000_000_000
_TS_STEP_MICROS = 100


def _format_ts(micros: int) -> str:
    return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"


@dataclass
class Injection:
    status: int
    error: str
    times: int
    headers: dict[str, str]


@dataclass
class Trigger:
    user_id: str
    issued: float  # time.monotonic()
    used: bool = False


@dataclass
class ResponseUrlState:
    url_id: str
    channel: str | None
    user_id: str | None
    original: tuple[str, str] | None  # (channel, ts) of a channel message, if any
    current: dict[str, Any] | None  # what replace_original/delete_original act on
    uses: int = 0
    expired: bool = False


def truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes")
    return bool(value)


class SlackState:
    """The state and the lock; configuration (users, channels, user groups) and the helpers
    every part uses. All state is guarded by one lock."""

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
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._ts_counter = itertools.count(_TS_BASE_MICROS + _TS_STEP_MICROS, _TS_STEP_MICROS)
        self._calls: list[RecordedCall] = []
        self._responses: list[RecordedResponse] = []
        self._rejected_responses: list[tuple[str, Any, str]] = []
        self._timeline: list[TimelineEntry] = []
        self._messages: dict[tuple[str, str], Message] = {}
        self._ephemerals: list[dict[str, Any]] = []
        self._response_urls: dict[str, ResponseUrlState] = {}
        self._usergroups: dict[str, list[str]] = {}
        self._users: dict[str, dict[str, Any]] = {}
        self._channels: dict[str, str] = {}
        self._injections: dict[str, list[Injection]] = {}
        self._holds: dict[str, tuple[Hold, Callable[[dict[str, Any]], bool]]] = {}
        self._triggers: dict[str, Trigger] = {}
        self._trigger_counter = itertools.count(1)
        self._views: dict[str, ModalView] = {}  # by view id, in the order they were opened
        self._view_counter = itertools.count(1)
        self._homes: dict[str, list[dict[str, Any]]] = {}  # user → Home views published, in order
        self.set_user(BOT_USER_ID, BOT_NAME, is_bot=True)

    # -- where it listens -------------------------------------------------------------------

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

    # -- shared helpers (called with the lock held, or taking it) -----------------------------

    def next_ts(self) -> str:
        with self._lock:
            return _format_ts(next(self._ts_counter))

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
