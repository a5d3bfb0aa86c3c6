"""One shared scan of the fleet. Listings, digests and the Home tab read the images the last
scan saw (the ``fleet_image`` rows) instead of asking AWS each time; a scan runs when what
was seen is older than the asker accepts (WSIMG_SCAN_SECONDS by default, nothing for
`/wsimg updates refresh`), on the scheduler's tick, and never twice at once: concurrent
requests for a scan, in any thread of any process, share the one running (a compare-and-set
on the scan's row is the claim; the others wait for it to finish: in each process one thread
looks at the row, the rest wait for that thread). A click still re-checks
its image live (bot/domain/approval.py).

Whoever waits for a scan may watch it: ``progress`` is told how many account-region targets
are listed, as they are (from the scan's threads), or that a scan another request started is
being waited for.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import weakref
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
from storage.models import FleetImage, image_key, utcnow

log = logging.getLogger(__name__)

SCAN_LEASE = timedelta(minutes=10)  # a scan claimed longer ago than this: its process died
WAIT_STEP_S = 0.05  # how often a request that joined a running scan looks whether it is done
WAIT_MAX_S = 300.0
WRITE_ROWS = 250  # images a scan stores at a time, as their pages come


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


class _Flight:
    """The threads of one process (one ``Services``) that want a scan: one at a time looks at
    the scan's row, and runs or waits for the scan; the others wait for it here, without
    asking the database (250 listings waiting on a cold scan, each looking every 50 ms, held
    the GIL for a sixth of the scan's time; wsimg bench). ``done`` counts the scans seen to
    finish, so that a thread that came while one was run or waited for returns when it is;
    ``seen`` is when the newest scan known to have finished began, so that a thread for which
    that is recent enough returns at once, without waiting its turn to look."""

    def __init__(self) -> None:
        self.cond = threading.Condition(threading.Lock())
        self.busy = False  # a thread runs a scan, waits for another process's, or looks
        self.done = 0
        self.seen: datetime | None = None

    def board(
        self, *, asked: datetime, max_age: timedelta, deadline: float, progress: Watcher | None
    ) -> bool:
        """False: this thread is now the one that looks (``land`` after); True: a scan recent
        enough for it has finished, or the one running when it came has."""
        joined: int | None = None
        while True:
            with self.cond:
                if self.seen is not None and asked - self.seen <= max_age:
                    return True
                if joined is not None and self.done > joined:
                    return True
                if not self.busy:
                    self.busy = True
                    return False
                if joined is None:
                    joined = self.done
                self.cond.wait(timeout=max(0.0, min(1.0, deadline - time.monotonic())))
                waiting = self.busy and self.done == joined
            if waiting and time.monotonic() >= deadline:
                raise ScanTimedOut()
            if waiting and progress is not None:
                progress(Progress(joined=True))  # outside the lock: it may post to Slack

    def saw(self, started_at: datetime | None) -> None:
        """A scan that began at ``started_at`` has finished (None: nothing known)."""
        if started_at is not None:
            with self.cond:
                if self.seen is None or started_at > self.seen:
                    self.seen = started_at

    def land(self, *, finished: bool) -> None:
        with self.cond:
            self.busy = False
            self.done += finished
            self.cond.notify_all()


_flights: dict[int, _Flight] = {}
_flights_lock = threading.Lock()


def _flight(services: Services) -> _Flight:
    key = id(services)
    with _flights_lock:
        found = _flights.get(key)
        if found is None:
            found = _flights[key] = _Flight()
            weakref.finalize(services, _flights.pop, key, None)
        return found


def fresh(services: Services, *, max_age: timedelta, progress: Watcher | None = None) -> None:
    """Make sure a scan begun at most ``max_age`` before now has finished (joining one that
    runs, here or in another process, or running one). ``progress`` (default: the
    ``watching`` block's) hears how the scan goes; nothing when none is needed."""
    progress = progress or _watcher.get()
    asked = utcnow()
    deadline = time.monotonic() + WAIT_MAX_S
    flight = _flight(services)
    if flight.board(asked=asked, max_age=max_age, deadline=deadline, progress=progress):
        return
    finished = False
    try:
        finished = _fresh(
            services,
            flight,
            asked=asked,
            max_age=max_age,
            deadline=deadline,
            progress=progress,
        )
    finally:
        flight.land(finished=finished)


def _fresh(
    services: Services,
    flight: _Flight,
    *,
    asked: datetime,
    max_age: timedelta,
    deadline: float,
    progress: Watcher | None,
) -> bool:
    """``fresh`` for the thread holding its process's flight: True when a scan was seen to
    finish (run here, or joined), False when the last one was recent enough."""
    joined: datetime | None = None
    while time.monotonic() < deadline:
        with unit_of_work(services.engine) as session:
            row = store.scan_row(session=session)
        if row.finished_at is not None:
            flight.saw(row.started_at)
        if joined is not None and row.finished_at is not None and row.finished_at >= joined:
            return True  # the scan we joined has finished
        if row.running_by is None or (
            row.running_since is not None and row.running_since < utcnow() - SCAN_LEASE
        ):
            if (
                joined is None
                and row.started_at is not None
                and row.finished_at is not None
                and asked - row.started_at <= max_age
            ):
                return False  # seen recently enough
            with unit_of_work(services.engine) as session:
                won = store.claim_scan(
                    session=session,
                    worker=WORKER_ID,
                    now=utcnow(),
                    stale_before=utcnow() - SCAN_LEASE,
                )
            if won:
                flight.saw(_scan(services, progress=progress))
                return True
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


def _scan(services: Services, *, progress: Watcher | None = None) -> datetime | None:
    """Scan (the claim held) and store what was seen; when it began, or None when another
    scan replaced it meanwhile."""
    started = utcnow()
    writer = _Writer(services, started)
    try:
        found = services.gateway.list_images(progress=_relayed(progress), pages=writer.put)
        failed = {(f.target.account_id, f.target.region) for f in found.failures}
        stored = writer.close()
    except BaseException:
        writer.close(raising=False)
        with unit_of_work(services.engine) as session:
            store.release_scan(session=session, worker=WORKER_ID)
        raise
    if stored:
        with unit_of_work(services.engine) as session:
            stored = store.finish_scan(
                session=session,
                worker=WORKER_ID,
                started_at=started,
                finished_at=utcnow(),
                failures=[
                    f"{f.target.region} ({f.target.account_id}): {f.error.user_message}"
                    for f in found.failures
                ],
                gone=writer.gone(
                    {(t.account_id, t.region) for t in services.gateway.targets()} - failed
                ),
            )
    if not stored:
        log.warning("a fleet scan outlived its claim (%s); another one replaced it", SCAN_LEASE)
        return None
    return started


class _Writer:
    """Stores the images a scan's threads hand it, page by page, in a thread of its own while
    the scan waits for AWS's next pages, and only those that differ from what is stored: an
    unchanged fleet is not written again every WSIMG_SCAN_SECONDS, and at the scan's end at
    most its last ``WRITE_ROWS`` rows are left to write (2,500 rows written after the last
    page took 0.13 s of CPU; 2,500 rows in transactions of 25, 0.3 s, which the scan's threads
    wait for under the GIL; in transactions of 250, 0.12 s; wsimg bench)."""

    def __init__(self, services: Services, started: datetime) -> None:
        self._engine = services.engine
        self._started = started
        self._pages: queue.SimpleQueue[list[Image] | None] = queue.SimpleQueue()
        self._stored = True  # the claim was still held at every write
        self._error: BaseException | None = None
        self._known: dict[str, tuple[object, ...]] = {}  # what was stored when the scan began
        self._seen: set[str] = set()
        self._thread = threading.Thread(target=self._run, name="wsimg-scan-writer", daemon=True)
        self._thread.start()

    def put(self, page: list[Image]) -> None:
        self._pages.put(page)

    def close(self, *, raising: bool = True) -> bool:
        """Wait for every page handed in to be stored: False if the claim was lost meanwhile
        (what was left was not stored); a write that failed is raised here."""
        self._pages.put(None)
        self._thread.join()
        if self._error is not None and raising:
            raise self._error
        return self._stored

    def gone(self, targets: set[tuple[str, str]]) -> list[str]:
        """After ``close()``: the images stored in ``targets`` (the account-regions the scan
        read whole) that it did not see. Only the scan holding the claim writes images, so
        what was stored when it began, and what it wrote, is all there is."""
        return [
            key
            for key, (account_id, region, *_) in self._known.items()
            if (account_id, region) in targets and key not in self._seen
        ]

    def _run(self) -> None:
        try:  # while the scan's first calls are on their way
            with session_scope(self._engine) as session:
                self._known = known = store.stored_images(session=session)
        except BaseException as exc:  # noqa: BLE001 (raised again by close(), in the scan's thread)
            self._error = exc
        batch: list[dict[str, object]] = []
        while (page := self._pages.get()) is not None:
            for image in page:
                row = _row(image, self._started)
                key = str(row["image_key"])
                self._seen.add(key)
                if known.get(key) != tuple(row[name] for name in store.IMAGE_FIELDS):
                    batch.append(row)
            if len(batch) >= WRITE_ROWS:
                self._store(batch)
                batch = []
        self._store(batch)

    def _store(self, rows: list[dict[str, object]]) -> None:
        if not rows or not self._stored or self._error is not None:
            return
        try:
            with unit_of_work(self._engine) as session:
                self._stored = store.store_images(session=session, worker=WORKER_ID, images=rows)
        except BaseException as exc:  # noqa: BLE001 (raised again by close(), in the scan's thread)
            self._error = exc


def _row(image: Image, started: datetime) -> dict[str, object]:
    # A plain row, not a FleetImage: the rows are only read, for an executemany
    # (storage/fleet.py store_images), and SQLAlchemy's per-attribute instrumentation of a mapped
    # instance cost 0.3 s of CPU for 2,500 rows, against 0.03 s for model_construct, which a
    # plain row also saves.
    return {
        "image_key": image_key(image.account_id, image.region, image.image_id),
        "account_id": image.account_id,
        "region": image.region,
        "image_id": image.image_id,
        "name": image.name[:255],
        "description": (image.description or None) and image.description[:512],
        "state": image.state[:32],
        "platform": image.platform,
        "update_available": image.update_available,
        "update_description": (image.update_description or None) and image.update_description[:512],
        "created": image.created,
        "scanned_at": started,
    }


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
