"""The Slack Web API stand-in that slack_sdk reaches over real HTTP on 127.0.0.1.

:class:`SlackWebAPI` serves ``/api/<method>`` and the response URLs, checks the bot token,
injects rate limits (HTTP 429 + ``Retry-After``), other errors and held replies, and records
every call in order. The methods themselves live by subject: :mod:`~bot.fakes.slack.methods`
(chat, conversations, users), :mod:`~bot.fakes.slack.responses` (response_url),
:mod:`~bot.fakes.slack.views` (modals) and :mod:`~bot.fakes.slack.home` (the Home tab).
"""

from __future__ import annotations

import copy
import hmac
import json
import threading
import time
from collections.abc import Callable, Mapping
from email import policy
from email.parser import BytesParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from bot.fakes.hold import Hold
from bot.fakes.slack.home import HomeTabs
from bot.fakes.slack.methods import WebMethods
from bot.fakes.slack.records import Interaction, Message, RecordedCall, TimelineEntry
from bot.fakes.slack.responses import ResponseUrls
from bot.fakes.slack.state import Injection
from bot.fakes.slack.views import ModalViews

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


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    api: SlackWebAPI


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    server_version = "FakeSlack/1.0"
    disable_nagle_algorithm = True  # no delayed-ACK wait between headers and body

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


class SlackWebAPI(WebMethods, ResponseUrls, ModalViews, HomeTabs):
    """A Slack Web API stand-in that slack_sdk reaches over real HTTP on 127.0.0.1.

    Use as a context manager (or ``start()``/``stop()``); point ``WebClient(base_url=...)`` or
    ``SLACK_API_URL`` at :attr:`api_url`. All state is guarded by one lock; the accessors return
    copies, so tests may read while the bot writes.
    """

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
                Injection(status, error, times, dict(headers or {}))
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

    def reset(self) -> None:
        """Forget recorded calls, messages, responses, modals and Home tabs (configuration is
        kept)."""
        with self._lock:
            self._views.clear()
            self._homes.clear()
            self._calls.clear()
            self._responses.clear()
            self._rejected_responses.clear()
            self._timeline.clear()
            self._messages.clear()
            self._ephemerals.clear()
            self._response_urls.clear()
            self._injections.clear()

    # -- used by SlackUser -------------------------------------------------------------------

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

    def _take_injection(self, method: str) -> Injection | None:
        queue = self._injections.get(method)
        if not queue:
            return None
        injection = queue[0]
        injection.times -= 1
        if injection.times <= 0:
            queue.pop(0)
        return injection


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
    "views.publish": SlackWebAPI._views_publish,
}


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
