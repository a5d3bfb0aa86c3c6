"""One shared scan of the fleet. Listings, digests and the Home tab read the images the last
scan saw (the ``fleet_image`` rows) instead of asking AWS each time; a scan runs when what
was seen is older than the asker accepts (WSIMG_SCAN_SECONDS by default, nothing for
`/wsimg updates refresh`), on the scheduler's tick, and never twice at once: concurrent
requests for a scan, in any thread of any process, share the one running (a compare-and-set
on the scan's row is the claim; the others wait for it to finish). A click still re-checks
its image live (bot/domain/approval.py).

Whoever waits for a scan may watch it: ``progress`` is told how many account-region targets
are listed, as they are (from the scan's threads), or that a scan another request started is
being waited for.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.aws.gateway import Image, ScanProgress
from bot.domain.context import Services
from bot.domain.identity import WORKER_ID
from bot.errors import WsimgError
from storage import fleet as store
from storage.db import session_scope, unit_of_work
from storage.models import FleetImage, utcnow

log = logging.getLogger(__name__)

SCAN_LEASE = timedelta(minutes=10)  # a scan claimed longer ago than this: its process died
WAIT_STEP_S = 0.05  # how often a request that joined a running scan looks whether it is done
WAIT_MAX_S = 300.0


class ScanTimedOut(WsimgError):
    def __init__(self) -> None:
        super().__init__(
            "The fleet scan another request started has not finished in 5 minutes. "
            "Try again; if it keeps happening, the bot's log says why."
        )


@dataclass(frozen=True)
class Progress:
    """How far the scan someone waits for has come."""

    done: int = 0  # account-region targets listed (or failed)
    total: int = 0  # targets in all
    accounts: int = 1
    images: int = 0  # images seen so far
    joined: bool = False  # another request's scan: nothing more is known of it here


Watcher = Callable[[Progress], None]

# The watcher of the scans this thread runs or joins, for callers that reach the scan through
# a listing (bot/domain/listing.py) rather than calling ``snapshot`` themselves.
_watcher: ContextVar[Watcher | None] = ContextVar("wsimg_scan_watcher", default=None)


@contextmanager
def watching(progress: Watcher) -> Iterator[None]:
    """Within the block, the scans this thread runs or joins report to ``progress``."""
    token = _watcher.set(progress)
    try:
        yield
    finally:
        _watcher.reset(token)


@dataclass(frozen=True)
class Snapshot:
    images: list[Image]
    failures: list[str]  # "<region> (<account>): <sentence>" of the parts the scan missed
    scanned_at: datetime | None  # when the scan that saw them began


def snapshot(
    services: Services,
    *,
    region: str | None = None,
    max_age: timedelta | None = None,
    progress: Watcher | None = None,
) -> Snapshot:
    """The fleet as the last scan saw it, scanned again first when that scan began longer
    than ``max_age`` ago (default WSIMG_SCAN_SECONDS); a scan already running is joined."""
    if max_age is None:
        max_age = timedelta(seconds=services.settings.scan_seconds)
    fresh(services, max_age=max_age, progress=progress)
    with session_scope(services.engine) as session:
        row = store.scan_row(session=session)
        rows = store.images(session=session, region=region)
    failures = [f for f in row.failures if region is None or f.startswith(f"{region} ")]
    return Snapshot(images=[_image(r) for r in rows], failures=failures, scanned_at=row.started_at)


def fresh(services: Services, *, max_age: timedelta, progress: Watcher | None = None) -> None:
    """Make sure a scan begun at most ``max_age`` before now has finished (joining one that
    runs, or running one). ``progress`` (default: the ``watching`` block's) hears how the scan
    goes; nothing when none is needed."""
    progress = progress or _watcher.get()
    asked = utcnow()
    deadline = time.monotonic() + WAIT_MAX_S
    joined: datetime | None = None
    while time.monotonic() < deadline:
        with unit_of_work(services.engine) as session:
            row = store.scan_row(session=session)
        if joined is not None and row.finished_at is not None and row.finished_at >= joined:
            return  # the scan we joined has finished
        if row.running_by is None or (
            row.running_since is not None and row.running_since < utcnow() - SCAN_LEASE
        ):
            if (
                joined is None
                and row.started_at is not None
                and row.finished_at is not None
                and asked - row.started_at <= max_age
            ):
                return  # seen recently enough
            with unit_of_work(services.engine) as session:
                won = store.claim_scan(
                    session=session,
                    worker=WORKER_ID,
                    now=utcnow(),
                    stale_before=utcnow() - SCAN_LEASE,
                )
            if won:
                _scan(services, progress=progress)
                return
        elif joined is None:
            joined = row.running_since
        if joined is not None and progress is not None:
            progress(Progress(joined=True))
        time.sleep(WAIT_STEP_S)
    raise ScanTimedOut()


def _relayed(progress: Watcher | None) -> Callable[[ScanProgress], None] | None:
    """``progress`` as the gateway's scan calls it."""
    if progress is None:
        return None
    return lambda seen: progress(Progress(seen.done, seen.total, seen.accounts, seen.images))


def _scan(services: Services, *, progress: Watcher | None = None) -> None:
    started = utcnow()
    try:
        found = services.gateway.list_images(progress=_relayed(progress))
        failed = {(f.target.account_id, f.target.region) for f in found.failures}
        targets = [
            (t.account_id, t.region)
            for t in services.gateway.targets()
            if (t.account_id, t.region) not in failed
        ]
    except BaseException:
        with unit_of_work(services.engine) as session:
            store.release_scan(session=session, worker=WORKER_ID)
        raise
    now = utcnow()
    rows = [_row(image, now) for image in found.images]
    with unit_of_work(services.engine) as session:
        stored = store.finish_scan(
            session=session,
            worker=WORKER_ID,
            started_at=started,
            finished_at=now,
            failures=[
                f"{f.target.region} ({f.target.account_id}): {f.error.user_message}"
                for f in found.failures
            ],
            images=rows,
            scanned_targets=targets,
        )
    if not stored:
        log.warning("a fleet scan outlived its claim (%s); another one replaced it", SCAN_LEASE)


def _row(image: Image, now: datetime) -> FleetImage:
    # model_construct, not FleetImage(...): the rows are only read, for one executemany
    # (storage/fleet.py finish_scan), and SQLAlchemy's per-attribute instrumentation of a mapped
    # instance cost 0.3 s of CPU for 2,500 rows, against 0.03 s (a session would refuse these
    # rows outright: UnmappedInstanceError).
    return FleetImage.model_construct(
        image_key=f"{image.account_id}:{image.region}:{image.image_id}",
        account_id=image.account_id,
        region=image.region,
        image_id=image.image_id,
        name=image.name[:255],
        description=(image.description or None) and image.description[:512],
        state=image.state[:32],
        platform=image.platform,
        update_available=image.update_available,
        update_description=(image.update_description or None) and image.update_description[:512],
        created=image.created,
        scanned_at=now,
    )


def _image(row: FleetImage) -> Image:
    return Image(
        account_id=row.account_id,
        region=row.region,
        image_id=row.image_id,
        name=row.name,
        description=row.description,
        state=row.state,
        platform=row.platform,
        update_available=row.update_available,
        update_description=row.update_description,
        created=row.created,
    )
