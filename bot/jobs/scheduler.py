"""The in-process scheduler: the follow-up poller and the digest tick.

Each process runs its own scheduler with an in-memory job store (APScheduler's FAQ: two
schedulers must never share a job store). Work that must happen once across processes is
guarded in the database, not by the scheduler.
"""

from __future__ import annotations

import logging
from datetime import datetime
from zoneinfo import ZoneInfo

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from bot.domain import bulk, decisions, digests, fleet, home, listing
from bot.domain.context import Services
from bot.jobs import followups, rollouts

log = logging.getLogger(__name__)

# How often each process looks for due digest slots. The slot's own time is what is posted
# and claimed; the tick only bounds how late after it the post goes out.
DIGEST_TICK_SECONDS = 15


def poll_job(services: Services) -> None:
    report = followups.run(services)
    if report.resumed or report.finished or report.started or report.followups:
        log.info("poll: %s", report)
    rollouts.run(services)
    expired = decisions.expire_requests(services) + bulk.expire_batches(services)
    if expired:
        log.info("expired %d request(s) nobody decided", expired)
    if report.resumed or report.finished or report.started or expired:
        home.refresh(services)  # requests moved: the Home tabs shown show it
    purged = listing.purge_listings(services)
    if purged:
        log.info("purged %d listing(s) older than the approval TTL", purged)


def scan_job(services: Services) -> None:
    """Keep the shared fleet scan fresh: scans only when the last one (by any process) is
    older than WSIMG_SCAN_SECONDS, so several processes' ticks make one scan."""
    fleet.snapshot(services)


def digest_job(services: Services) -> None:
    report = digests.run_due(services)
    if report.posted or report.skipped or report.failed:
        log.info("digests: %s", report)


def build_scheduler(services: Services) -> BackgroundScheduler:
    zone = ZoneInfo(services.settings.timezone)
    seconds = services.settings.poll_seconds
    scheduler = BackgroundScheduler(timezone=zone)
    scheduler.add_job(
        poll_job,
        IntervalTrigger(seconds=seconds, timezone=zone),
        args=[services],
        id="poll",
        name="follow pending images",
        next_run_time=datetime.now(zone),  # resume what a restart left pending at once
        coalesce=True,
        max_instances=1,
        # A poll late by less than one interval still runs; later than that the next one is due.
        misfire_grace_time=seconds,
    )
    if services.settings.scan_seconds > 0:
        scan = services.settings.scan_seconds
        scheduler.add_job(
            scan_job,
            IntervalTrigger(seconds=scan, timezone=zone),
            args=[services],
            id="scan",
            name="scan the fleet",
            coalesce=True,
            max_instances=1,
            misfire_grace_time=scan,
        )
    digests.ensure_default_subscription(services)
    scheduler.add_job(
        digest_job,
        IntervalTrigger(seconds=DIGEST_TICK_SECONDS, timezone=zone),
        args=[services],
        id="digests",
        name="post due digests",
        next_run_time=datetime.now(zone),
        coalesce=True,
        max_instances=1,
        misfire_grace_time=DIGEST_TICK_SECONDS,
    )
    return scheduler
