"""What the domain needs from the outside that is not storage or AWS, as protocols: the
notifier that tells Slack (bot/slack/notify.py implements it) and the user-group lookup of
the approval policy (bot/slack/groups.py). The domain depends on these, never on Slack."""

from __future__ import annotations

import enum
from typing import Protocol

from bot.domain.pages import Digest
from bot.domain.plans import Plan, Progress
from storage.models import Rollout, UpdateRequest


class Delivery(enum.Enum):
    """What became of a follow-up."""

    posted = "posted"
    undeliverable = "undeliverable"  # no place will ever take it
    retry = "retry"  # a passing failure: the next poll tries again


class Notifier(Protocol):
    def announce(self, request: UpdateRequest) -> tuple[str, str] | None:
        """Post the request in its channel; (channel, ts) of the post, None if nowhere took it."""

    def refresh(self, request: UpdateRequest) -> None:
        """Show the request's current state in its announcement."""

    def follow_up(self, request: UpdateRequest) -> Delivery:
        """Reply in the announcement's thread that the build ended."""

    def followed_up(self, request: UpdateRequest) -> bool:
        """Whether the thread already holds the request's follow-up."""

    def post_digest(self, channel_id: str, digest: Digest) -> int:
        """Post a digest to a channel; the number of messages."""

    def rollout_plan(self, plan: Plan) -> bool:
        """Post a rollout's plan in its update's thread; whether it was posted."""

    def rollout_progress(self, rollout: Rollout, progress: Progress) -> str | None:
        """Show the progress in the thread: edit the message at ``rollout.progress_ts``, or
        post one; the ts of the message showing it, None if Slack took neither."""


class GroupMembers(Protocol):
    def __call__(self, group_id: str) -> frozenset[str]:
        """The members of a user group (S…); empty when they cannot be read."""
