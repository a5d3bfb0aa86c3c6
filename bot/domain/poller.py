"""The poller: resume requests a dead process left, follow pending images, and claim and
record follow-ups (bot/jobs/followups.py posts them). Safe in several processes at once."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import groupby

from bot.aws.gateway import Image
from bot.domain.context import Services
from bot.domain.identity import WORKER_ID, is_dead_here
from bot.domain.ports import Delivery
from bot.domain.requests import SYSTEM, move, note
from bot.domain.submit import create_image, submit
from bot.errors import AwsError, WsimgError
from storage import crud
from storage.db import session_scope, unit_of_work
from storage.models import (
    State,
    UpdateRequest,
    utcnow,
)

log = logging.getLogger(__name__)

# A request left in `approved` or `submitting` longer than this is taken to be orphaned by a
# process that died. It must outlast the slowest call the gateway can make: 5 attempts x
# (5 s connect + 30 s read timeouts) plus at most 20 s back-off between them, about 4.5
# minutes, after an STS AssumeRole bounded the same way.
ORPHAN_AFTER = timedelta(minutes=15)
# Describe can miss an image created a moment ago; only after this is it taken as gone.
NOT_FOUND_GRACE = timedelta(minutes=5)
# A build still PENDING (or not seen, its region unreachable) this long after its create
# gives its build slot up: it is still followed, but no longer holds back the queue.
SLOT_HELD_MAX = timedelta(hours=12)


# --- the poller: resume orphans, follow pending images, post follow-ups ---------------------


@dataclass
class PollReport:
    resumed: int = 0
    checked: int = 0
    finished: int = 0
    started: int = 0  # queued requests submitted as build slots freed
    followups: int = 0  # posted by the job


def poll(services: Services) -> PollReport:
    """Resume orphans and follow pending images (the follow-ups themselves are posted by the
    job, bot/jobs/followups.py). Safe to run in several processes at once.

    Each request (and each region's check) is handled on its own: one that fails, however it
    fails, is logged and retried on the next pass and does not hold up the others.
    """
    report = PollReport()
    _resume_orphans(services, report)
    _check_pending(services, report)
    _free_stuck_slots(services)
    start_queued(services, report)
    return report


@contextmanager
def on_its_own(what: str) -> Iterator[None]:
    try:
        yield
    except WsimgError as exc:
        log.warning("%s failed: %s", what, exc.user_message)
    except Exception:  # logged with its traceback; the next pass tries this one again
        log.exception("%s failed", what)


def _resume_orphans(services: Services, report: PollReport) -> None:
    """Requests a dead process left in `approved` or `submitting`: the holder is known dead
    (a process of this host that no longer runs) or has not touched the row in ORPHAN_AFTER."""
    cutoff = utcnow() - ORPHAN_AFTER
    with session_scope(services.engine) as session:
        held = crud.requests_in(session=session, states=[State.approved, State.submitting])
    for request in held:
        if request.worker_id is None:
            continue  # queued, held by nobody: start_queued submits it when a slot frees
        stale = request.updated_at < cutoff
        if not (stale or is_dead_here(request.worker_id)):
            continue
        report.resumed += 1
        with on_its_own(f"resuming request {request.short_id}"):
            if request.state == State.approved:
                submit(services, request_id=request.id)
            else:
                _reconcile_submitting(services, request, cutoff if stale else None)


QUEUE_READ = 5000  # queued requests read per pass, to take them in turn


def _in_turn(queued: list[UpdateRequest]) -> list[UpdateRequest]:
    """Round-robin between batches, each single approval a batch of its own, in the order
    they were approved: a batch of 700 does not hold back an approval made after it."""
    groups: dict[str, list[UpdateRequest]] = {}
    for request in queued:
        groups.setdefault(request.batch_id or request.id, []).append(request)
    deepest = max((len(group) for group in groups.values()), default=0)
    return [group[n] for n in range(deepest) for group in groups.values() if n < len(group)]


def start_queued(services: Services, report: PollReport | None = None) -> int:
    """Submit approved requests waiting for a build slot while slots are free
    (WSIMG_MAX_CONCURRENT_UPDATES builds at once), batches in turn; how many started."""
    started = 0
    with session_scope(services.engine) as session:
        queued = crud.queued_requests(session=session, limit=QUEUE_READ)
    for request in _in_turn(queued):
        with on_its_own(f"starting queued request {request.short_id}"):
            if submit(services, request_id=request.id).state == State.approved:
                break  # every slot is held again
            started += 1
    if report is not None:
        report.started += started
    return started


def _reconcile_submitting(
    services: Services, request: UpdateRequest, stale_before: datetime | None
) -> None:
    """A process died during the call: look our Name up before anything is called again."""
    # Take the orphan over: the row becomes fresh and ours, so a second poller that read the
    # same orphan fails this compare-and-set and leaves it alone.
    if not move(
        services,
        request.id,
        from_states=[State.submitting],
        to=State.submitting,
        event="reconciling",
        actor=SYSTEM,
        detail={"name": request.new_image_name, "held_by": request.worker_id},
        stale_before=stale_before,
        held_by=None if stale_before else request.worker_id,
        worker_id=WORKER_ID,
    ):
        return
    assert request.new_image_name is not None
    try:
        image = services.gateway.find_owned_image_by_name(
            account_id=request.account_id, region=request.region, name=request.new_image_name
        )
    except AwsError as exc:
        log.warning("could not reconcile request %s: %s", request.short_id, exc.user_message)
        return
    if image is None:
        note(services, request.id, "resubmitted", {"name": request.new_image_name})
        create_image(services, request_id=request.id)
        return
    move(
        services,
        request.id,
        from_states=[State.submitting],
        to=State.pending,
        event="reconciled",
        actor=SYSTEM,
        detail={"new_image_id": image.image_id, "name": request.new_image_name},
        new_image_id=image.image_id,
    )


def _check_pending(services: Services, report: PollReport) -> None:
    with session_scope(services.engine) as session:
        pending = crud.requests_in(session=session, states=[State.pending])
    by_target = groupby(
        sorted(pending, key=lambda r: (r.account_id, r.region)),
        key=lambda r: (r.account_id, r.region),
    )
    for (account_id, region), group in by_target:
        requests = {r.new_image_id: r for r in group if r.new_image_id}
        try:
            images = services.gateway.describe_images(
                account_id=account_id, region=region, image_ids=list(requests)
            )
        except WsimgError as exc:
            log.warning("could not check pending images in %s: %s", region, exc.user_message)
            continue
        report.checked += len(requests)
        found = {image.image_id: image for image in images}
        for image_id, request in requests.items():
            image = found.get(image_id)
            if image is not None and image.state == "PENDING":
                continue
            if image is None and not _long_gone(request):
                continue  # a brand-new image can be missing from Describe for a moment
            with on_its_own(f"finishing request {request.short_id}"):
                report.finished += _finish(services, request, image)


def _free_stuck_slots(services: Services) -> None:
    """Builds pending past SLOT_HELD_MAX give their slot up (and say so in the log): one stuck
    build, or a region that cannot be reached, must not stall every update everywhere."""
    with unit_of_work(services.engine) as session:
        for request in crud.slots_held_since(session=session, before=utcnow() - SLOT_HELD_MAX):
            crud.set_fields(session=session, request_id=request.id, slot=None)
            crud.record_event(
                session=session,
                kind="slot_released",
                actor=SYSTEM,
                request_id=request.id,
                detail={"slot": request.slot, "pending_since": str(request.submitted_at)},
            )
            log.warning(
                "request %s: still pending after %s; its build slot goes to the next",
                request.short_id,
                SLOT_HELD_MAX,
            )


def _long_gone(request: UpdateRequest) -> bool:
    since = request.submitted_at or request.updated_at
    return since is None or utcnow() - since > NOT_FOUND_GRACE


def _finish(services: Services, request: UpdateRequest, image: Image | None) -> int:
    values: dict[str, object]
    if image is None:
        to, values = (
            State.error,
            {
                "error_code": "ImageNotFound",
                "error_message": f"{request.new_image_id} no longer exists in {request.region}.",
            },
        )
    elif image.state == "AVAILABLE":
        to, values = State.available, {}
    else:
        to, values = (
            State.error,
            {
                "error_code": image.error_code or "Unknown",
                "error_message": image.error_message or "WorkSpaces gave no reason.",
                "error_details": [[code, message] for code, message in image.error_details],
            },
        )
    detail = {"new_image_id": request.new_image_id, **values}
    moved = move(
        services,
        request.id,
        from_states=[State.pending],
        to=to,
        event=to.value,
        actor=SYSTEM,
        detail=detail,
        **values,
    )
    return int(moved)


@dataclass(frozen=True)
class DueFollowUp:
    """A finished build whose follow-up this process has claimed. ``taken_over``: the claim
    was another (dead or stale) poller's, which may have posted before it died."""

    request: UpdateRequest
    taken_over: bool


def claim_followups(services: Services) -> list[DueFollowUp]:
    """Claim every follow-up that is due and not held by a live poller (compare-and-set on
    its holder: of two pollers one wins each). The job posts them and reports back."""
    stale = utcnow() - ORPHAN_AFTER
    with session_scope(services.engine) as session:
        due = crud.followups_due(session=session)
    claimed = []
    for request in due:
        claimed_at = request.followup_claimed_at
        if not (
            claimed_at is None or claimed_at < stale or is_dead_here(request.followup_claimed_by)
        ):
            continue  # a live poller is posting it
        with on_its_own(f"claiming the follow-up of request {request.short_id}"):
            with unit_of_work(services.engine) as session:
                won = crud.claim_followup(
                    session=session,
                    request_id=request.id,
                    held_by=request.followup_claimed_by,
                    claimant=WORKER_ID,
                )
            if won:
                claimed.append(DueFollowUp(request=request, taken_over=claimed_at is not None))
    return claimed


def followup_found(services: Services, due: DueFollowUp) -> bool:
    """The thread already holds the follow-up (its poller died before recording it). True
    when this poller recorded it (it still held the claim)."""
    with unit_of_work(services.engine) as session:
        if not crud.finish_followup(
            session=session, request_id=due.request.id, posted=True, held_by=WORKER_ID
        ):
            return False
        crud.record_event(
            session=session,
            kind="followup_found",
            actor=SYSTEM,
            request_id=due.request.id,
            detail={"held_by": due.request.followup_claimed_by},
        )
    return True


def followup_done(services: Services, due: DueFollowUp, delivery: Delivery) -> bool:
    """Record what became of a follow-up: posted (or undeliverable, recorded as such) ends
    it; a passing failure frees the claim for the next pass. True when it was posted and
    recorded by this poller (one whose claim was taken over meanwhile records nothing)."""
    request = due.request
    with unit_of_work(services.engine) as session:
        if not crud.finish_followup(
            session=session,
            request_id=request.id,
            posted=delivery is not Delivery.retry,
            held_by=WORKER_ID,
        ):
            return False
        if delivery is Delivery.undeliverable:
            detail = {"channel": request.channel_id, "approver": request.approved_by}
            crud.record_event(
                session=session,
                kind="followup_undeliverable",
                actor=SYSTEM,
                request_id=request.id,
                detail=detail,
            )
    return delivery is Delivery.posted
