"""Digests: channel subscriptions, what a digest shows, and posting each slot exactly once.

Every process (each `wsimg serve`, each `wsimg worker`) runs the same tick. The tick reads the
subscriptions from the database, so a change made through any process takes effect in all of
them without a restart, and it claims each due slot with an INSERT … ON CONFLICT DO NOTHING on
(subscription, slot): the one process whose insert lands posts, the others do nothing. The
processes never share an APScheduler job store (its FAQ: duplicate or missed runs).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.triggers.cron import CronTrigger
from sqlalchemy.exc import IntegrityError

from bot.aws.gateway import Image
from bot.domain import listing as listings
from bot.domain.context import Services
from bot.domain.identity import WORKER_ID
from bot.domain.pages import OVERDUE_DAYS, Digest, ListingPage
from bot.domain.requests import NotAllowed, StaleButton, record_refusal
from bot.errors import WsimgError
from storage import crud
from storage.db import session_scope, unit_of_work
from storage.models import Snooze, Subscription, image_key, utcnow

log = logging.getLogger(__name__)

SNOOZE_DAYS = 7
SNOOZE = timedelta(days=SNOOZE_DAYS)
GRACE = timedelta(hours=1)
# How far back a tick looks for slots it has not handled (after a long outage, say).
LOOKBACK = timedelta(days=2)

CRON_MAX = 128  # the column that stores it
ACCEPTED_FORMS = (
    "Accepted forms:\n"
    "• `/wsimg subscribe` — every day on the default schedule\n"
    "• `/wsimg subscribe 08:30 [Europe/Berlin]` — every day at that time\n"
    "• `/wsimg subscribe 30 8 * * 1-5 [Europe/Berlin]` — a 5-field cron "
    "(minute hour day-of-month month day-of-week)\n"
    "Add `quiet` to post nothing on days when no image needs an update. "
    "The time zone is an IANA name such as `UTC`, `Europe/Berlin` or `America/New_York`."
)


class BadSchedule(WsimgError):
    def __init__(self, problem: str) -> None:
        super().__init__(f"{problem}\n{ACCEPTED_FORMS}")


class NotSubscribed(WsimgError):
    pass


class NotAllowedToManage(WsimgError):
    def __init__(self, what: str) -> None:
        super().__init__(
            f"You may not {what}: only approvers (WSIMG_APPROVERS) and digest managers "
            "(WSIMG_DIGEST_MANAGERS) may. Ask one of them, or ask an admin to add you."
        )


def _may_manage(services: Services, user_id: str, what: str, channel_id: str) -> None:
    """Digests post to a whole channel and scan the whole fleet: not for anyone to change."""
    if not services.policy.can_manage_digests(user_id):
        record_refusal(services, user_id, "", f"may not {what} in {channel_id}")
        raise NotAllowedToManage(what)


@dataclass(frozen=True)
class Schedule:
    cron: str
    timezone: str
    quiet: bool = False

    def trigger(self) -> CronTrigger:
        # Always with an explicit zone: without one, CronTrigger uses the machine's.
        return CronTrigger.from_crontab(self.cron, timezone=ZoneInfo(self.timezone))

    def describe(self) -> str:
        return f"`{self.cron}` ({self.timezone}){' quietly' if self.quiet else ''}"


def parse_schedule(words: Sequence[str], *, default_cron: str, default_zone: str) -> Schedule:
    """`[HH:MM | 5-field cron] [zone] [quiet]`, checked before anything is stored."""
    rest = list(words)
    quiet = bool(rest) and rest[-1].lower() == "quiet"
    if quiet:
        rest.pop()
    zone = default_zone
    if rest and ("/" in rest[-1] or rest[-1].upper() == "UTC"):
        zone = rest.pop()
    if not rest:
        cron = default_cron
    elif len(rest) == 1 and ":" in rest[0]:
        cron = _daily(rest[0])
    elif len(rest) == 5:
        cron = " ".join(rest)
    else:
        raise BadSchedule(f"`{' '.join(words)[:100]}` is not a schedule I understand.")
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise BadSchedule(f"`{zone[:64]}` is not a time zone I know.") from exc
    if len(cron) > CRON_MAX:
        raise BadSchedule(f"That cron expression is longer than {CRON_MAX} characters.")
    schedule = Schedule(cron=cron, timezone=zone, quiet=quiet)
    try:
        schedule.trigger()
    except ValueError as exc:
        raise BadSchedule(f"`{cron[:100]}` is not a valid cron expression: {exc}.") from exc
    return schedule


def _daily(text: str) -> str:
    hours, _, minutes = text.partition(":")
    digits = all(p.isascii() and p.isdecimal() and len(p) <= 2 for p in (hours, minutes))
    if not digits:
        raise BadSchedule(f"`{text[:20]}` is not a time of day (HH:MM).")
    h, m = int(hours), int(minutes)
    if not (0 <= h <= 23 and 0 <= m <= 59):
        raise BadSchedule(f"`{text[:20]}` is not a time of day (HH:MM, 00:00 to 23:59).")
    return f"{m} {h} * * *"


def subscribe(
    services: Services, *, channel_id: str, user_id: str, words: Sequence[str]
) -> Subscription:
    """A channel's digest, asked for in Slack: by a digest manager, at most every
    WSIMG_MIN_DIGEST_MINUTES (the operator's own WSIMG_DIGEST_CRON is not limited)."""
    _may_manage(services, user_id, "change this channel's digest", channel_id)
    settings = services.settings
    schedule = parse_schedule(
        words, default_cron=settings.digest_cron, default_zone=settings.timezone
    )
    check_frequency(schedule, minutes=settings.min_digest_minutes)
    return _save(
        services, channel_id=channel_id, user_id=user_id, schedule=schedule, source="slack"
    )


def _save(
    services: Services, *, channel_id: str, user_id: str, schedule: Schedule, source: str
) -> Subscription:
    with unit_of_work(services.engine) as session:
        found = crud.get_subscription(session=session, channel_id=channel_id)
        subscription = found or Subscription(
            channel_id=channel_id,
            cron=schedule.cron,
            timezone=schedule.timezone,
            created_by=user_id,
            source=source,
        )
        subscription.cron, subscription.timezone = schedule.cron, schedule.timezone
        subscription.quiet, subscription.active = schedule.quiet, True
        subscription.source = source
        subscription = crud.save_subscription(session=session, subscription=subscription)
        crud.record_event(
            session=session,
            kind="subscribed",
            actor=user_id,
            detail={
                "channel": channel_id,
                "cron": schedule.cron,
                "timezone": schedule.timezone,
                "quiet": schedule.quiet,
            },
        )
    return subscription


def unsubscribe(services: Services, *, channel_id: str, user_id: str) -> Subscription:
    _may_manage(services, user_id, "stop this channel's digest", channel_id)
    with unit_of_work(services.engine) as session:
        found = crud.get_subscription(session=session, channel_id=channel_id)
        if found is None or not found.active:
            raise NotSubscribed("This channel has no digest subscription; nothing to stop.")
        found.active = False
        crud.save_subscription(session=session, subscription=found)
        crud.record_event(
            session=session, kind="unsubscribed", actor=user_id, detail={"channel": channel_id}
        )
    return found


# How far ahead a schedule is walked to find its shortest gap: a year holds every pattern a
# 5-field cron can make but the 29th of February.
FREQUENCY_HORIZON = timedelta(days=366)


def check_frequency(schedule: Schedule, *, minutes: int, start: datetime | None = None) -> None:
    """Refuse a schedule that would post more often than every ``minutes``, or never."""
    gap, fires = shortest_gap(schedule, start=start or datetime.now(UTC), below=minutes)
    if fires == 0:
        raise BadSchedule(f"`{schedule.cron[:100]}` never comes within a year.")
    if gap is not None and gap < timedelta(minutes=minutes):
        every = max(int(gap.total_seconds() // 60), 1)
        raise BadSchedule(
            f"`{schedule.cron[:100]}` would post a digest every {every} minute(s); from Slack a "
            f"digest may come at most every {minutes} minutes (WSIMG_MIN_DIGEST_MINUTES). "
            "A digest is a full scan of every region: once or twice a day is plenty."
        )


def shortest_gap(
    schedule: Schedule, *, start: datetime, below: int, horizon: timedelta = FREQUENCY_HORIZON
) -> tuple[timedelta | None, int]:
    """(The shortest time between two digests within ``horizon`` of ``start``, the number of
    digests seen), walking no further once a gap under ``below`` minutes is found."""
    zone = ZoneInfo(schedule.timezone)
    walker = CronTrigger.from_crontab(schedule.cron, timezone=UTC)
    wall, end = _wall(start, zone), _wall(start + horizon, zone)
    previous: datetime | None = None
    shortest: timedelta | None = None
    fires = 0
    while (fire := walker.get_next_fire_time(None, wall)) is not None and fire <= end:
        wall = fire + timedelta(seconds=1)
        moment = fire.replace(tzinfo=zone).astimezone(UTC)
        if previous is not None:
            gap = moment - previous
            if gap <= timedelta(0):  # two wall times a DST change made one: posted once
                continue
            shortest = gap if shortest is None else min(shortest, gap)
            if gap < timedelta(minutes=below):
                return shortest, fires + 1
        previous, fires = moment, fires + 1
    return shortest, fires


def ensure_default_subscription(services: Services) -> None:
    """WSIMG_DIGEST_CHANNEL subscribes that channel once. A changed WSIMG_DIGEST_CRON or
    WSIMG_TIMEZONE updates it on the next start, unless someone changed or stopped the
    subscription from Slack since: what was said in Slack wins."""
    settings = services.settings
    if not settings.digest_channel:
        return
    schedule = parse_schedule([], default_cron=settings.digest_cron, default_zone=settings.timezone)
    with session_scope(services.engine) as session:
        found = crud.get_subscription(session=session, channel_id=settings.digest_channel)
    if found is not None and (
        found.source != "env"
        or not found.active
        or (found.cron, found.timezone) == (schedule.cron, schedule.timezone)
    ):
        return
    try:
        _save(
            services,
            channel_id=settings.digest_channel,
            user_id="WSIMG_DIGEST_CHANNEL",
            schedule=schedule,
            source="env",
        )
    except IntegrityError:  # another process inserted it first (unique channel): that is fine
        log.info("default subscription already created by another process")


# --- what a digest shows -----------------------------------------------------------------------


def build_digest(
    services: Services, *, user_id: str, channel_id: str | None, quiet: bool = False
) -> Digest:
    with session_scope(services.engine) as session:
        snoozed = crud.snoozed_keys(session=session)
    hidden: list[Image] = []

    def skip(image: Image) -> bool:
        if image_key(image.account_id, image.region, image.image_id) in snoozed:
            hidden.append(image)
            return True
        return False

    listing, offers = listings.make_listing(
        services, kind="digest", user_id=user_id, channel_id=channel_id, skip=skip
    )
    with session_scope(services.engine) as session:
        entries = listings.entries_for(session=session, offers=offers, channel_id=channel_id)
    limit = timedelta(days=OVERDUE_DAYS)
    now = utcnow()
    overdue = [e for e in entries if e.first_seen and now - e.first_seen > limit]
    return Digest(
        page=listings.load_page(services, listing_id=listing.id, page=1),
        groups=listings.group_summaries(entries, now=now),
        overdue=sorted(overdue, key=lambda e: e.first_seen or now),
        snoozed=len(hidden),
        quiet=quiet,
        entries=entries,
    )


def post_digest_now(services: Services, *, channel_id: str, user_id: str) -> int:
    """`/wsimg digest`: a digest manager posts this channel's digest now."""
    _may_manage(services, user_id, "post a digest", channel_id)
    return post_digest(services, channel_id=channel_id, user_id=user_id)


def post_digest(services: Services, *, channel_id: str, user_id: str, quiet: bool = False) -> int:
    """Build and post a digest to a channel now; the number of messages posted."""
    digest = build_digest(services, user_id=user_id, channel_id=channel_id, quiet=quiet)
    messages = services.notifier.post_digest(channel_id, digest)
    with unit_of_work(services.engine) as session:
        crud.record_event(
            session=session,
            kind="digest_posted",
            actor=user_id,
            detail={
                "channel": channel_id,
                "messages": messages,
                "images": digest.page.total_images,
                "listing": digest.page.listing.id,
            },
        )
    return messages


def snooze(
    services: Services, *, offer_key: str, user_id: str, channel_id: str | None = None
) -> ListingPage:
    """Hide an image's update from digests for a week; who did it is recorded and shown."""
    with session_scope(services.engine) as session:
        offer = crud.get_offer(session=session, key=offer_key)
    if offer is None or not listings.offered_here(offer, channel_id):
        raise StaleButton()
    if not services.policy.can_approve(user_id):
        raise NotAllowed()
    until = utcnow() + SNOOZE
    with unit_of_work(services.engine) as session:
        crud.add_snooze(
            session=session,
            snooze=Snooze(image_key=offer.image_key, until=until, snoozed_by=user_id),
        )
        crud.record_event(
            session=session,
            kind="snoozed",
            actor=user_id,
            detail={"image": offer.image_key, "until": until.isoformat()},
        )
    return listings.load_page(services, listing_id=offer.listing_id, page=offer.page)


# --- the schedule: each slot exactly once --------------------------------------------------------


def due_slots(schedule: Schedule, *, after: datetime, now: datetime) -> list[datetime]:
    """Fire times in (after, now], one per local wall-clock time (a repeated DST hour once).

    APScheduler's CronTrigger can step backwards across a fall-back change (it returns the
    same or an earlier time again), so the cron is walked in local wall-clock time, which
    never repeats, and each wall time is then placed on the real clock: an hour that happens
    twice counts at its first occurrence, a time skipped by spring-forward at the moment that
    replaced it (02:30 → 03:30 CEST).
    """
    zone = ZoneInfo(schedule.timezone)
    walker = CronTrigger.from_crontab(schedule.cron, timezone=UTC)
    wall = _wall(after - timedelta(hours=3), zone)
    end = _wall(now + timedelta(hours=3), zone)
    found: dict[str, datetime] = {}
    while (fire := walker.get_next_fire_time(None, wall)) is not None and fire <= end:
        moment = fire.replace(tzinfo=zone).astimezone(UTC)
        if after < moment <= now:
            found.setdefault(slot_key(moment, schedule.timezone), moment)
        wall = fire + timedelta(seconds=1)
    return sorted(found.values())


def _wall(moment: datetime, zone: ZoneInfo) -> datetime:
    """The local wall-clock time of `moment`, labelled UTC so it can be walked without DST."""
    return moment.astimezone(zone).replace(tzinfo=UTC)


def slot_key(moment: datetime, zone: str) -> str:
    return moment.astimezone(ZoneInfo(zone)).replace(tzinfo=None).isoformat(timespec="seconds")


@dataclass
class TickReport:
    posted: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


def run_due(
    services: Services, *, now: datetime | None = None, worker_id: str = WORKER_ID
) -> TickReport:
    """Post every subscription's due slot once (across processes); record missed ones."""
    now = now or datetime.now(UTC)
    report = TickReport()
    with session_scope(services.engine) as session:
        subscriptions = crud.active_subscriptions(session=session)
    for subscription in subscriptions:
        _run_subscription(services, subscription, now=now, worker_id=worker_id, report=report)
    return report


def _run_subscription(
    services: Services,
    subscription: Subscription,
    *,
    now: datetime,
    worker_id: str,
    report: TickReport,
) -> None:
    assert subscription.id is not None
    schedule = Schedule(subscription.cron, subscription.timezone, subscription.quiet)
    with session_scope(services.engine) as session:
        last = crud.last_slot(session=session, subscription_id=subscription.id)
    after = max(filter(None, (last, subscription.updated_at, now - LOOKBACK)))
    slots = due_slots(schedule, after=after, now=now)
    if not slots:
        return
    *missed, latest = slots
    for slot in missed:
        _claim(services, subscription, slot, "skipped", worker_id, "a later slot was due")
        report.skipped.append(slot_key(slot, schedule.timezone))
    if now - latest > GRACE:
        _claim(services, subscription, latest, "skipped", worker_id, "missed by over the grace")
        report.skipped.append(slot_key(latest, schedule.timezone))
        return
    if not _claim(services, subscription, latest, "claimed", worker_id, None):
        return  # another process has it
    key = slot_key(latest, schedule.timezone)
    try:
        sent = post_digest(
            services, channel_id=subscription.channel_id, user_id="wsimg", quiet=subscription.quiet
        )
    except WsimgError as exc:
        detail = exc.user_message
        log.warning("digest for %s at %s failed: %s", subscription.channel_id, key, detail)
        _finish(services, subscription, key, "failed", 0, detail[:1024])
        report.failed.append(key)
        return
    except Exception as exc:
        # Not left claimed: a claimed slot is never posted again, so it would read as in
        # progress forever. Recorded as failed with what went wrong; the traceback goes to
        # the log by the scheduler, which this re-raises to.
        detail = f"unexpected {type(exc).__name__}: see the process log"
        _finish(services, subscription, key, "failed", 0, detail)
        raise
    _finish(services, subscription, key, "posted", sent, None)
    report.posted.append(key)


def _claim(
    services: Services,
    subscription: Subscription,
    slot: datetime,
    state: str,
    worker_id: str,
    detail: str | None,
) -> bool:
    assert subscription.id is not None
    with unit_of_work(services.engine) as session:
        return crud.claim_slot(
            session=session,
            subscription_id=subscription.id,
            slot_local=slot_key(slot, subscription.timezone),
            slot_at=slot,
            state=state,
            claimed_by=worker_id[:64],
            detail=detail,
        )


def _finish(
    services: Services,
    subscription: Subscription,
    key: str,
    state: str,
    messages: int,
    detail: str | None,
) -> None:
    assert subscription.id is not None
    with unit_of_work(services.engine) as session:
        crud.finish_slot(
            session=session,
            subscription_id=subscription.id,
            slot_local=key,
            state=state,
            messages=messages,
            detail=detail,
        )
