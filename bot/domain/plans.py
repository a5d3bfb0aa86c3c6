"""What a rollout shows: its plan (bundles, shares, the image quota) and its progress."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from bot.aws.rollout import Bundle
from storage.models import Rollout, RolloutState, UpdateRequest

# The reason of a WorkSpace that waits only because the wave it fits in has not come yet.
QUEUED = "not yet"


@dataclass(frozen=True)
class BundleUse:
    bundle: Bundle
    workspaces: int
    states: dict[str, int]
    connected: int
    moved: bool  # already points at the new image


@dataclass(frozen=True)
class Progress:
    state: str
    wave: int
    total: int
    rebuilt: int
    in_flight: int
    waiting: dict[str, int]  # why not rebuilt yet -> how many
    failed: list[str]  # "ws-… (user): why"
    unconfirmed: list[str]
    skipped: int
    paused_reason: str | None
    problem: str | None = None  # what stopped the last pass (an AWS sentence), if anything

    def line(self) -> str:
        head = f"wave {self.wave}: " if self.wave else ""
        text = f"{head}{self.rebuilt} of {self.total} rebuilt"
        if self.in_flight:
            text += f", {self.in_flight} rebuilding"
        for why, count in sorted(self.waiting.items()):
            if why == QUEUED:
                text += f", {count} queued for a later wave"
            else:
                text += f", {count} skipped ({why})"
        text += f", {len(self.failed)} failed"
        if self.unconfirmed:
            text += f", {len(self.unconfirmed)} to check by hand"
        return text


@dataclass(frozen=True)
class Plan:
    rollout: Rollout
    request: UpdateRequest
    bundles: list[BundleUse]
    source_shares: list[str]
    new_shares: list[str]
    image_count: int | None
    quota: int
    snapshot_at: datetime | None  # the oldest latest-snapshot of the WorkSpaces to rebuild
    progress: Progress | None
    source_exists: bool
    bundles_known: bool = True  # False: AWS would not list the bundles (see ``problems``)
    problems: list[str] = field(default_factory=list)  # what AWS would not show, as sentences
    # Steps that failed (bundle, share, unshare, delete): kind -> "label: why"; a click retries.
    failed: dict[str, list[str]] = field(default_factory=dict)

    def may_retry(self, *kinds: str) -> bool:
        return any(self.failed.get(kind) for kind in kinds)

    @property
    def to_move(self) -> list[BundleUse]:
        return [use for use in self.bundles if not use.moved]

    @property
    def workspace_count(self) -> int:
        return sum(use.workspaces for use in self.bundles)

    @property
    def shares_missing(self) -> list[str]:
        return [a for a in self.source_shares if a not in self.new_shares]

    @property
    def can_rebuild(self) -> bool:
        rollout = self.rollout
        return rollout.state == RolloutState.open and bool(rollout.bundles_by) and not self.to_move

    @property
    def can_retire(self) -> bool:
        return (
            self.source_exists
            and self.bundles_known
            and not self.to_move
            and not self.shares_missing
            and (self.rollout.retire_by is None or self.may_retry("unshare", "delete"))
        )
