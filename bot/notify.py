"""Messages the bot posts on its own: approval announcements, their updates, follow-ups.

These go through chat.postMessage / chat.update with the stored channel and ts, never the
response_url, which expires after 30 minutes and a handful of uses.
"""

from __future__ import annotations

import logging

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot import blocks
from storage.models import UpdateRequest

log = logging.getLogger(__name__)


class Notifier:
    def __init__(self, client: WebClient) -> None:
        self._client = client

    def announce(self, request: UpdateRequest) -> tuple[str, str] | None:
        """Post the approval in its channel; (channel, ts) for the follow-up thread.

        When the bot cannot post there (not invited, say) the approver gets it as a DM instead.
        """
        message = blocks.announcement(request)
        for channel in filter(None, (request.channel_id, request.approved_by)):
            try:
                response = self._client.chat_postMessage(channel=channel, **message)
            except SlackApiError as exc:
                log.warning("could not post to %s: %s", channel, exc.response.get("error"))
                continue
            return response["channel"], response["ts"]
        return None

    def refresh(self, request: UpdateRequest) -> None:
        """Show the request's current state in its announcement."""
        if not (request.channel_id and request.message_ts):
            return
        try:
            self._client.chat_update(
                channel=request.channel_id, ts=request.message_ts, **blocks.announcement(request)
            )
        except SlackApiError as exc:
            log.warning("could not update announcement: %s", exc.response.get("error"))

    def follow_up(self, request: UpdateRequest) -> bool:
        """Reply in the announcement's thread (or DM the approver if there is none)."""
        message = blocks.followup(request)
        if request.channel_id and request.message_ts:
            target = {"channel": request.channel_id, "thread_ts": request.message_ts}
        elif request.approved_by:
            target = {"channel": request.approved_by}
        else:
            log.warning("request %s has nowhere to post its follow-up", request.short_id)
            return True  # retrying could never succeed
        try:
            self._client.chat_postMessage(**target, **message)
        except SlackApiError as exc:
            log.warning("could not post follow-up: %s", exc.response.get("error"))
            return False
        return True
