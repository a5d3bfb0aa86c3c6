"""SQLModel tables: listed images (offers), update requests and the append-only event log."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, Index, UniqueConstraint, text
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    """Aware UTC; SQLModel's UTCDateTime stores it on SQLite and PostgreSQL alike."""
    return datetime.now(UTC)


class State(StrEnum):
    requested = "requested"
    approved = "approved"
    submitting = "submitting"
    pending = "pending"
    available = "available"
    error = "error"
    rejected = "rejected"
    cancelled = "cancelled"
    expired = "expired"
    failed = "failed"


TERMINAL = frozenset(
    {State.available, State.error, State.rejected, State.cancelled, State.expired, State.failed}
)
IN_FLIGHT = frozenset({State.requested, State.approved, State.submitting, State.pending})


class OfferBase(SQLModel):
    listing_id: str = Field(max_length=32, index=True)
    page: int = 1
    position: int = 0
    account_id: str = Field(max_length=12)
    region: str = Field(max_length=32)
    image_id: str = Field(max_length=80)
    image_name: str = Field(max_length=255)
    platform: str | None = Field(default=None, max_length=32)
    update_description: str | None = Field(default=None, max_length=512)
    not_updatable_reason: str | None = Field(default=None, max_length=512)
    listed_by: str = Field(max_length=32)
    channel_id: str | None = Field(default=None, max_length=32)
    # Set when a click found the image gone or no longer in need of its update.
    withdrawn_reason: str | None = Field(default=None, max_length=512)


class Offer(OfferBase, table=True):
    """One image shown in a listing. Its random ``key`` is the only thing a button carries."""

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=64, unique=True)
    created_at: datetime = Field(default_factory=utcnow)

    @property
    def image_key(self) -> str:
        return image_key(self.account_id, self.region, self.image_id)


def image_key(account_id: str, region: str, image_id: str) -> str:
    return f"{account_id}:{region}:{image_id}"


class UpdateRequestBase(SQLModel):
    account_id: str = Field(max_length=12)
    region: str = Field(max_length=32)
    source_image_id: str = Field(max_length=80, index=True)
    source_image_name: str = Field(max_length=255)
    update_description: str | None = Field(default=None, max_length=512)
    requested_by: str = Field(max_length=32)
    approved_by: str | None = Field(default=None, max_length=32)
    channel_id: str | None = Field(default=None, max_length=32)
    message_ts: str | None = Field(default=None, max_length=32)
    offer_key: str | None = Field(default=None, max_length=64)
    new_image_name: str | None = Field(default=None, max_length=64)
    new_image_id: str | None = Field(default=None, max_length=80, index=True)
    error_code: str | None = Field(default=None, max_length=128)
    error_message: str | None = Field(default=None, max_length=2048)
    # Who rejected or cancelled the request, and why.
    closed_by: str | None = Field(default=None, max_length=32)
    close_reason: str | None = Field(default=None, max_length=512)


class UpdateRequest(UpdateRequestBase, table=True):
    __tablename__ = "update_request"
    __table_args__ = (Index("ix_update_request_state_updated", "state", "updated_at"),)

    id: str = Field(primary_key=True, max_length=32)
    state: str = Field(default=State.requested.value, max_length=16)
    # Set to account:region:image while the request is in flight and NULL once it ends: the
    # unique index allows one in-flight update per source image across all listings and
    # processes (NULLs never collide, on SQLite and PostgreSQL alike).
    active_key: str | None = Field(default=None, max_length=160, unique=True)
    # The process (host:pid:token) that moved it to approved/submitting last: a process that
    # finds that one dead on its own host takes the request over at once (bot/domain/poller.py).
    worker_id: str | None = Field(default=None, max_length=96)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    approved_at: datetime | None = None
    submitted_at: datetime | None = None
    completed_at: datetime | None = None
    # Claimed before the follow-up is posted so that two pollers never both post it; the
    # claimant (a process id as in worker_id) may be taken over at once once it is dead.
    followup_claimed_at: datetime | None = None
    followup_claimed_by: str | None = Field(default=None, max_length=96)
    followup_posted_at: datetime | None = None
    # An image that ended in ERROR: WorkSpaces' ErrorDetails, [code, message] pairs in its
    # order. The server default fills the rows written before the column existed.
    error_details: list[list[str]] = Field(
        default_factory=list,
        sa_column=Column(JSON, nullable=False, server_default=text("'[]'")),
    )
    # The bulk approval it belongs to, if any: its announcement is the batch's one message.
    batch_id: str | None = Field(default=None, max_length=32, index=True)
    # One of WSIMG_MAX_CONCURRENT_UPDATES numbered slots, held from `submitting` until the
    # request ends: the unique index keeps two builds off one slot across processes (as
    # active_key does for images); an approved request that finds none free waits, queued.
    slot: int | None = Field(default=None, unique=True)

    @property
    def short_id(self) -> str:
        return self.id[:8]

    @property
    def image_key(self) -> str:
        return image_key(self.account_id, self.region, self.source_image_id)


class BatchState(StrEnum):
    requested = "requested"  # four eyes: waiting for one approver's decision on all of it
    approved = "approved"
    rejected = "rejected"
    cancelled = "cancelled"
    expired = "expired"


class Batch(SQLModel, table=True):
    """One "Approve all N" click: the requests it made (``UpdateRequest.batch_id``) and the one
    message that shows them. The unique (listing, scope) makes a second click on the same
    button (another approver's, a retry) find this batch instead of making another."""

    __table_args__ = (UniqueConstraint("listing_id", "scope"),)

    id: str = Field(primary_key=True, max_length=32)
    listing_id: str = Field(max_length=32)
    scope: str = Field(max_length=64)  # "all" or "account:region"
    scope_text: str = Field(max_length=255)  # the scope in words, for its message
    state: str = Field(default=BatchState.requested.value, max_length=16)
    count: int = 0  # the requests it made
    created_by: str = Field(max_length=32)
    decided_by: str | None = Field(default=None, max_length=32)
    close_reason: str | None = Field(default=None, max_length=512)
    channel_id: str | None = Field(default=None, max_length=32)
    message_ts: str | None = Field(default=None, max_length=32)
    created_at: datetime = Field(default_factory=utcnow)
    decided_at: datetime | None = None

    @property
    def short_id(self) -> str:
        return self.id[:8]


class Event(SQLModel, table=True):
    """Append-only: who did what, when. Never updated, never deleted."""

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=utcnow, index=True)
    request_id: str | None = Field(default=None, max_length=32, index=True)
    actor: str = Field(max_length=64)
    kind: str = Field(max_length=32)
    detail: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class Listing(SQLModel, table=True):
    """One answer to `/wsimg updates` or one digest: the offers on it share its id."""

    id: str = Field(primary_key=True, max_length=32)
    kind: str = Field(max_length=16)  # "updates" | "digest"
    created_by: str = Field(max_length=32)
    channel_id: str | None = Field(default=None, max_length=32)
    region: str | None = Field(default=None, max_length=32)
    failures: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    # Images each account owns per region ("account:region" -> count), against the quota.
    image_counts: dict[str, int] = Field(
        default_factory=dict, sa_column=Column(JSON, nullable=False, server_default="{}")
    )
    # When the fleet scan it was made from began: how old what it shows is.
    scanned_at: datetime | None = None
    # The command's filters other than the region, as its words ("" for none): what its
    # Refresh asks again, what "Approve all" on a filtered summary covers.
    filters: str = Field(default="", max_length=255, sa_column_kwargs={"server_default": ""})
    created_at: datetime = Field(default_factory=utcnow)


class Subscription(SQLModel, table=True):
    """A channel's digest schedule. Unsubscribing deactivates it; the row stays as a record."""

    id: int | None = Field(default=None, primary_key=True)
    channel_id: str = Field(max_length=32, unique=True)
    cron: str = Field(max_length=128)
    timezone: str = Field(max_length=64)
    quiet: bool = False  # post nothing (instead of one line) when no image needs an update
    active: bool = True
    source: str = Field(default="slack", max_length=16)  # "slack" | "env"
    created_by: str = Field(max_length=32)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class DigestSlot(SQLModel, table=True):
    """One scheduled digest of one subscription. The unique key is the claim: the process that
    inserts the row posts the digest, every other process's insert does nothing.

    The key is the slot's local wall-clock time, so the hour a DST change repeats still counts
    as one slot.
    """

    __tablename__ = "digest_slot"
    __table_args__ = (UniqueConstraint("subscription_id", "slot_local"),)

    id: int | None = Field(default=None, primary_key=True)
    subscription_id: int = Field(foreign_key="subscription.id", index=True)
    slot_local: str = Field(max_length=19)  # YYYY-MM-DDTHH:MM:SS in the subscription's zone
    slot_at: datetime  # the same instant in UTC
    state: str = Field(max_length=16)  # claimed | posted | skipped | failed
    claimed_by: str = Field(max_length=64)
    claimed_at: datetime = Field(default_factory=utcnow)
    finished_at: datetime | None = None
    messages: int = 0
    detail: str | None = Field(default=None, max_length=1024)


class Snooze(SQLModel, table=True):
    """An image's update hidden from digests until ``until``."""

    id: int | None = Field(default=None, primary_key=True)
    image_key: str = Field(max_length=160, index=True)
    until: datetime
    snoozed_by: str = Field(max_length=32)
    created_at: datetime = Field(default_factory=utcnow)


class Sighting(SQLModel, table=True):
    """When wsimg first saw an image's update available: how long it has been waiting."""

    image_key: str = Field(primary_key=True, max_length=160)
    first_seen_at: datetime = Field(default_factory=utcnow)
    last_seen_at: datetime = Field(default_factory=utcnow)


class RolloutState(StrEnum):
    open = "open"  # the plan is offered; bundles may be moved, the image shared
    rebuilding = "rebuilding"  # waves of rebuilds run
    paused = "paused"  # no new wave starts until someone resumes
    done = "done"  # every WorkSpace of the rollout is rebuilt or accounted for
    cancelled = "cancelled"


class StepState(StrEnum):
    waiting = "waiting"  # not started (a WorkSpace: not rebuilt yet, maybe skipped for now)
    claimed = "claimed"  # a process is making the call; it records the outcome next
    rebuilding = "rebuilding"  # a WorkSpace whose rebuild WorkSpaces accepted
    done = "done"
    skipped = "skipped"  # nothing to do (a bundle someone else moved, a WorkSpace gone)
    failed = "failed"
    unconfirmed = "unconfirmed"  # its process died mid-call and AWS shows no sign of it


class Rollout(SQLModel, table=True):
    """Carrying one AVAILABLE update to the desktops. ``id`` is its update request's id."""

    id: str = Field(primary_key=True, max_length=32)
    account_id: str = Field(max_length=12)
    region: str = Field(max_length=32)
    source_image_id: str = Field(max_length=80)
    new_image_id: str = Field(max_length=80)
    channel_id: str | None = Field(default=None, max_length=32)
    thread_ts: str | None = Field(default=None, max_length=32)
    progress_ts: str | None = Field(default=None, max_length=32)
    state: str = Field(default=RolloutState.open.value, max_length=16, index=True)
    # Each phase is started once: the compare-and-set on these columns is the claim.
    bundles_by: str | None = Field(default=None, max_length=32)
    rebuild_by: str | None = Field(default=None, max_length=32)
    share_by: str | None = Field(default=None, max_length=32)
    retire_by: str | None = Field(default=None, max_length=32)
    wave: int = 0  # the last wave started
    batch: int = 10
    idle_hours: int = 8
    paused_reason: str | None = Field(default=None, max_length=512)
    # What stopped the last pass over the waves (an AWS sentence); cleared by the next good one.
    stalled: str | None = Field(default=None, max_length=512)
    # The progress line last shown in the thread: the message is edited only when it changes.
    progress_text: str | None = Field(default=None, max_length=512)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class RolloutStep(SQLModel, table=True):
    """One thing a rollout does once: point a bundle, rebuild a WorkSpace, share with or
    unshare from an account, delete the source. The unique key makes it once per rollout."""

    __tablename__ = "rollout_step"
    __table_args__ = (
        UniqueConstraint("rollout_id", "kind", "target"),
        Index("ix_rollout_step_rollout_state", "rollout_id", "state"),
    )

    id: int | None = Field(default=None, primary_key=True)
    rollout_id: str = Field(max_length=32)
    kind: str = Field(max_length=16)  # bundle | workspace | share | unshare | delete
    target: str = Field(max_length=80)  # bundle, WorkSpace, account or image id
    label: str | None = Field(default=None, max_length=255)  # bundle name, user name
    state: str = Field(default=StepState.waiting.value, max_length=16)
    wave: int | None = None
    claimed_by: str | None = Field(default=None, max_length=96)
    claimed_at: datetime | None = None
    detail: str | None = Field(default=None, max_length=512)  # why skipped, waiting or failed
    updated_at: datetime = Field(default_factory=utcnow)


class HomeViewer(SQLModel, table=True):
    """Someone who opened wsimg's Home tab, and when last: every process (a worker following
    waves, a restarted serve) redraws the Home tabs of those who opened one lately."""

    __tablename__ = "home_viewer"

    user_id: str = Field(primary_key=True, max_length=32)
    opened_at: datetime = Field(default_factory=utcnow, index=True)


class FleetImage(SQLModel, table=True):
    """One image as the last fleet scan saw it (upserted when it changed): what listings, digests
    and the Home tab read instead of asking AWS each time."""

    __tablename__ = "fleet_image"
    __table_args__ = (Index("ix_fleet_image_region_update", "region", "update_available"),)

    image_key: str = Field(primary_key=True, max_length=160)  # account:region:image
    account_id: str = Field(max_length=12)
    region: str = Field(max_length=32)
    image_id: str = Field(max_length=80)
    name: str = Field(max_length=255)
    description: str | None = Field(default=None, max_length=512)
    state: str = Field(max_length=32)
    platform: str | None = Field(default=None, max_length=32)
    update_available: bool = False
    update_description: str | None = Field(default=None, max_length=512)
    created: datetime | None = None
    # When the scan began that stored the image as it is (a scan rewrites only what changed).
    scanned_at: datetime = Field(default_factory=utcnow)


class FleetScan(SQLModel, table=True):
    """The fleet scan: one row. ``running_by`` is the claim that makes concurrent requests for
    a scan, in any thread of any process, share one; the others wait for it to finish."""

    __tablename__ = "fleet_scan"

    id: str = Field(primary_key=True, max_length=16)  # "fleet"
    running_by: str | None = Field(default=None, max_length=96)
    running_since: datetime | None = None
    started_at: datetime | None = None  # of the last finished scan: how old what it saw is
    finished_at: datetime | None = None
    failures: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
