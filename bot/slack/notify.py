"""Messages the bot posts on its own: approval announcements, their updates, follow-ups,
digests, and the Home tabs. The domain's ``Notifier`` port (bot/domain/ports.py), implemented
for Slack.

These go through chat.postMessage / chat.update with the stored channel and ts, never the
response_url, which expires after 30 minutes and a handful of uses. Home tabs go through
views.publish, one user's at a time.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.domain.pages import Digest
from bot.domain.plans import Plan, Progress
from bot.domain.ports import BatchView, Delivery, Home
from bot.errors import WsimgError
from bot.slack import batch_view, blocks, digest_view, home_view, rollout_view
from storage.models import Rollout, UpdateRequest

log = logging.getLogger(__name__)

# Slack errors no retry can fix: the follow-up goes elsewhere or is given up.
UNDELIVERABLE = frozenset(
    {
        "channel_not_found",
        "is_archived",
        "not_in_channel",
        "thread_not_found",
        "message_not_found",
        "cannot_reply_to_message",
        "restricted_action",
        "user_not_found",
        "user_disabled",
        "account_inactive",
    }
)


FOLLOWUP_EVENT = "wsimg_followup"
# The Home tabs a change refreshes: those this process has shown, the first shown dropped first.
# Kept in memory: after a restart a Home tab is refreshed again once its user opens it.
MAX_HOME_VIEWERS = 200


def followup_metadata(request: UpdateRequest) -> dict[str, Any]:
    return {"event_type": FOLLOWUP_EVENT, "event_payload": {"request_id": request.id}}


class NotPosted(WsimgError):
    """Slack would not take a message (the digest): the sentence says why and what to do."""


class SlackNotifier:
    def __init__(self, client: WebClient) -> None:
        self._client = client
        self._homes_lock = threading.Lock()
        self._homes: dict[str, datetime] = {}  # user → when the Home last shown was read
        self._home_locks: dict[str, threading.Lock] = {}  # one publish per user at a time

    def announce(self, request: UpdateRequest) -> tuple[str, str] | None:
        """Post the approval in its channel; (channel, ts) for the follow-up thread.

        When the bot cannot post there (not invited, say) the approver gets it as a DM instead.
        """
        return self._post_first(
            (request.channel_id, request.approved_by), blocks.announcement(request)
        )

    def announce_batch(self, view: BatchView) -> tuple[str, str] | None:
        """Post a bulk approval's one message in its channel, or DM it to whoever approved it
        (never a batch waiting for a decision: nobody else could click its Approve in a DM)."""
        batch = view.batch
        return self._post_first(
            (batch.channel_id, batch.decided_by), batch_view.batch_message(view)
        )

    def _post_first(
        self, channels: tuple[str | None, ...], message: dict[str, Any]
    ) -> tuple[str, str] | None:
        """Post ``message`` in the first of ``channels`` that takes it: its (channel, ts)."""
        for channel in filter(None, channels):
            try:
                response = self._client.chat_postMessage(channel=channel, **message)
            except SlackApiError as exc:
                log.warning("could not post to %s: %s", channel, exc.response.get("error"))
                continue
            except OSError as exc:
                log.warning("could not reach Slack: %s", type(exc).__name__)
                continue
            return response["channel"], response["ts"]
        return None

    def refresh_batch(self, view: BatchView) -> None:
        """Show the batch's current state in its one message."""
        batch = view.batch
        self._update(batch.channel_id, batch.message_ts, lambda: batch_view.batch_message(view))

    def refresh(self, request: UpdateRequest) -> None:
        """Show the request's current state in its announcement."""
        self._update(request.channel_id, request.message_ts, lambda: blocks.announcement(request))

    def _update(
        self, channel: str | None, ts: str | None, message: Callable[[], dict[str, Any]]
    ) -> None:
        """Edit the message at (channel, ts), if there is one; a failure is only logged."""
        if not (channel and ts):
            return
        try:
            self._client.chat_update(channel=channel, ts=ts, **message())
        except SlackApiError as exc:
            log.warning("could not update a message: %s", exc.response.get("error"))
        except OSError as exc:
            log.warning("could not reach Slack: %s", type(exc).__name__)

    def followed_up(self, request: UpdateRequest) -> bool:
        """Whether the announcement's thread already holds this request's follow-up
        (conversations.replies). When the thread cannot be read, False: posting twice is
        better than never."""
        if not (request.channel_id and request.message_ts):
            return False
        wanted = followup_metadata(request)
        cursor = None
        try:
            for _page in range(20):  # 20 pages of 200 replies: far past any real thread
                response = self._client.conversations_replies(
                    channel=request.channel_id,
                    ts=request.message_ts,
                    include_all_metadata=True,
                    limit=200,
                    cursor=cursor,
                )
                for message in response.get("messages") or []:
                    metadata = message.get("metadata") if isinstance(message, dict) else None
                    if isinstance(metadata, dict) and (
                        metadata.get("event_type"),
                        (metadata.get("event_payload") or {}).get("request_id"),
                    ) == (wanted["event_type"], request.id):
                        return True
                cursor = (response.get("response_metadata") or {}).get("next_cursor")
                if not cursor:
                    return False
        except SlackApiError as exc:
            log.warning("could not read the thread: %s", exc.response.get("error"))
        except OSError as exc:
            log.warning("could not reach Slack to read a thread: %s", type(exc).__name__)
        return False

    def follow_up(self, request: UpdateRequest) -> Delivery:
        """Reply in the announcement's thread; where that can never work (channel archived or
        gone, bot removed), DM the approver instead. A passing failure is retried later.

        The reply carries the request's id as message metadata, so a poller that takes over
        from one that died can tell whether it was posted (``followed_up``)."""
        message = {**blocks.followup(request), "metadata": followup_metadata(request)}
        targets: list[dict[str, Any]] = []
        if request.channel_id and request.message_ts:
            targets.append({"channel": request.channel_id, "thread_ts": request.message_ts})
        if request.approved_by:
            targets.append({"channel": request.approved_by})
        for target in targets:
            try:
                self._client.chat_postMessage(**target, **message)
            except SlackApiError as exc:
                error = str(exc.response.get("error"))
                log.warning("could not post follow-up to %s: %s", target["channel"], error)
                if error not in UNDELIVERABLE:
                    return Delivery.retry
                continue
            except OSError as exc:  # Slack unreachable: the next poll tries again
                log.warning("could not reach Slack for a follow-up: %s", type(exc).__name__)
                return Delivery.retry
            return Delivery.posted
        log.warning("request %s: no place will take its follow-up", request.short_id)
        return Delivery.undeliverable

    def post_digest(self, channel_id: str, digest: Digest) -> int:
        """Post a digest's messages in order; the number posted. slack_sdk's
        RateLimitErrorRetryHandler waits out a 429 and posts again."""
        messages = digest_view.digest(digest)
        for message in messages:
            try:
                self._client.chat_postMessage(channel=channel_id, **message)
            except SlackApiError as exc:
                error = str(exc.response.get("error"))
                raise NotPosted(
                    f"Slack did not take the digest for {channel_id} ({error}). "
                    + (
                        "Invite wsimg to the channel (`/invite @wsimg`) or choose another."
                        if error in UNDELIVERABLE
                        else "Try again in a few minutes."
                    )
                ) from exc
            except OSError as exc:
                raise NotPosted(
                    f"Slack could not be reached to post the digest ({type(exc).__name__}). "
                    "Try again in a few minutes."
                ) from exc
        return len(messages)

    def rollout_plan(self, plan: Plan) -> bool:
        """Post the plan in the update's thread (or its channel when there is no thread)."""
        rollout = plan.rollout
        if not rollout.channel_id:
            return False
        target: dict[str, Any] = {"channel": rollout.channel_id}
        if rollout.thread_ts:
            target["thread_ts"] = rollout.thread_ts
        try:
            self._client.chat_postMessage(**target, **rollout_view.plan(plan))
        except SlackApiError as exc:
            log.warning("could not post a rollout plan: %s", exc.response.get("error"))
            return False
        except OSError as exc:
            log.warning("could not reach Slack for a rollout plan: %s", type(exc).__name__)
            return False
        return True

    def rollout_progress(self, rollout: Rollout, progress: Progress) -> str | None:
        """Edit the progress message, or post it in the thread the first time."""
        if not rollout.channel_id:
            return None
        message = rollout_view.progress(rollout, progress)
        try:
            if rollout.progress_ts:
                self._client.chat_update(
                    channel=rollout.channel_id, ts=rollout.progress_ts, **message
                )
                return rollout.progress_ts
            target: dict[str, Any] = {"channel": rollout.channel_id}
            if rollout.thread_ts:
                target["thread_ts"] = rollout.thread_ts
            response = self._client.chat_postMessage(**target, **message)
            return str(response["ts"])
        except SlackApiError as exc:
            log.warning("could not show a rollout's progress: %s", exc.response.get("error"))
        except OSError as exc:
            log.warning("could not reach Slack for a rollout's progress: %s", type(exc).__name__)
        return None

    def publish_home(self, home: Home) -> bool:
        """views.publish. One user's Home is published by one thread at a time, and one read
        before the Home last shown to them is dropped: a slow refresh never hides a newer one.
        A user Slack says is gone is no longer refreshed."""
        user = home.user_id
        with self._homes_lock:
            lock = self._home_locks.setdefault(user, threading.Lock())
        with lock:
            with self._homes_lock:
                shown = self._homes.get(user)
            if shown is not None and home.as_of < shown:
                return False
            try:
                self._client.views_publish(user_id=user, view=home_view.home(home))
            except SlackApiError as exc:
                error = str(exc.response.get("error"))
                log.warning("could not publish a Home tab: %s", error)
                if error in UNDELIVERABLE:
                    with self._homes_lock:
                        self._homes.pop(user, None)
                return False
            except OSError as exc:
                log.warning("could not reach Slack for a Home tab: %s", type(exc).__name__)
                return False
            with self._homes_lock:
                self._homes[user] = home.as_of
                while len(self._homes) > MAX_HOME_VIEWERS:
                    first = next(iter(self._homes))
                    del self._homes[first]
                    self._home_locks.pop(first, None)
        return True

    def home_viewers(self) -> list[str]:
        with self._homes_lock:
            return list(self._homes)
