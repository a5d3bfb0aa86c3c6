"""What the domain needs from the outside that is not storage or AWS, as protocols: the
notifier that tells Slack (bot/slack/notify.py implements it) and the user-group lookup of
the approval policy (bot/slack/groups.py). The domain depends on these, never on Slack.

``Home`` is what the notifier is handed to show on a person's Home tab. It is defined here,
with the port that takes it, because bot/domain/home.py (which fills it in) needs the
services and so cannot be imported by this module."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from bot.domain.pages import Digest
from bot.domain.plans import Plan, Progress
from storage.models import Batch, Rollout, UpdateRequest


class Delivery(enum.Enum):
    """What became of a follow-up."""

    posted = "posted"
    undeliverable = "undeliverable"  # no place will ever take it
    retry = "retry"  # a passing failure: the next poll tries again


@dataclass(frozen=True)
class HomeRollout:
    """A rollout rebuilding (or paused), as a Home tab shows it."""

    rollout: Rollout
    request: UpdateRequest
    progress: Progress | None
    may_decide: bool  # the viewer may Pause / Resume it (checked again on the click)


@dataclass(frozen=True)
class FleetGlance:
    """The fleet as the last scan saw it, at a glance (a Home tab's first lines)."""

    updates: int  # images with an update available
    regions: int  # the regions they are in
    scanned_at: datetime | None  # when the last finished scan began; None: none has finished
    scanning: bool = False  # a scan runs now: the counts may be part old, part new


@dataclass(frozen=True)
class Home:
    """What one person's Home tab shows; bot/domain/home.py decides what they may see."""

    user_id: str
    everything: bool  # an approver: every channel's requests, not only their own
    waiting: list[UpdateRequest]  # for a decision (four eyes), oldest first
    building: list[UpdateRequest]  # approved, being created or PENDING, oldest first
    rollouts: list[HomeRollout]
    finished: list[UpdateRequest]  # the last few, newest first
    as_of: datetime  # when it was read: an older Home is never shown over a newer one
    notice: str | None = None  # the answer to a click on the Home tab, as Slack mrkdwn
    fleet: FleetGlance | None = None  # read from the last scan; None: not read


@dataclass(frozen=True)
class BatchView:
    """A bulk approval as its one message shows it: the batch and every request it made."""

    batch: Batch
    requests: list[UpdateRequest]
    max_concurrent: int  # WSIMG_MAX_CONCURRENT_UPDATES: builds under way at once

    def count(self, *states: str) -> int:
        return sum(1 for request in self.requests if request.state in states)

    @property
    def queued(self) -> int:
        """Approved and waiting for a build slot (nobody holds them)."""
        return sum(1 for r in self.requests if r.state == "approved" and r.worker_id is None)


class Notifier(Protocol):
    def announce(self, request: UpdateRequest) -> tuple[str, str] | None:
        """Post the request in its channel; (channel, ts) of the post, None if nowhere took it."""

    def refresh(self, request: UpdateRequest) -> None:
        """Show the request's current state in its announcement."""

    def announce_batch(self, view: BatchView) -> tuple[str, str] | None:
        """Post a bulk approval's one message; (channel, ts) of the post, None if nowhere
        took it. Its requests' follow-ups go in its thread."""

    def refresh_batch(self, view: BatchView) -> None:
        """Show the batch's current state in its message."""

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

    def publish_home(self, home: Home) -> bool:
        """Show ``home`` on its user's Home tab; whether it is shown (False too when a Home
        read later than this one is already shown to them)."""

    def home_viewers(self) -> list[str]:
        """The users whose Home tab this process has shown (a bounded number, in the order
        first shown): those whose Home a change refreshes."""


class GroupMembers(Protocol):
    def __call__(self, group_id: str) -> frozenset[str]:
        """The members of a user group (S…); empty when they cannot be read."""
