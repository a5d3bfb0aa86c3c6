"""response_url in the Slack stand-in: the URLs Slack hands the app with a command or a click
(about 5 uses within 30 minutes), and what a POST to one does to what people see (replace or
delete the original, post in the channel, or an ephemeral message)."""

from __future__ import annotations

import copy
import json
import secrets
import time
from collections.abc import Callable, Mapping
from typing import Any

from bot.fakes.slack.blockkit import validate_blocks
from bot.fakes.slack.records import Message, RecordedResponse, TimelineEntry
from bot.fakes.slack.state import ResponseUrlState, SlackState, truthy


class ResponseUrls(SlackState):
    """The response_url part of :class:`~bot.fakes.slack.api.SlackWebAPI`."""

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
            self._response_urls[url_id] = ResponseUrlState(url_id, channel, user_id, key, current)
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

    # -- HTTP handling (called by the server) ------------------------------------------------

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
            elif truthy(payload.get("delete_original")):
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

    def _apply_response(self, state: ResponseUrlState, payload: dict[str, Any]) -> dict[str, Any]:
        """Apply a response_url payload the way Slack shows it.

        With a channel message behind the URL (a click on it), replace/delete act on that
        message and plain responses are new ephemeral messages. Without one (slash commands,
        clicks on ephemeral messages), replace/delete act on the latest message from the URL.
        """
        content = {"text": payload.get("text"), "blocks": copy.deepcopy(payload.get("blocks"))}
        detail: dict[str, Any] = {"channel": state.channel, "user": state.user_id}
        original = self._messages.get(state.original) if state.original else None
        if truthy(payload.get("delete_original")):
            detail["effect"] = "deleted"
            if original is not None:
                original.deleted = True
            state.current = None
        elif truthy(payload.get("replace_original")):
            detail["effect"] = "replaced"
            shown = original if original is not None and not original.deleted else None
            before = {"text": shown.text, "blocks": shown.blocks} if shown else state.current
            detail["before"] = copy.deepcopy(before)  # the transcript shows what changed
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
