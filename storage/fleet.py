"""The fleet snapshot's queries: the scan's single-flight claim (compare-and-set on its one
row) and the image rows it writes. Flush, never commit: the caller's unit of work does."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from storage.crud import _rowcount
from storage.models import FleetImage, FleetScan

SCAN_ID = "fleet"


def scan_row(*, session: Session) -> FleetScan:
    """The scan's row, created the first time it is asked for."""
    found = session.get(FleetScan, SCAN_ID)
    if found is not None:
        return found
    try:
        with session.begin_nested():
            session.add(FleetScan(id=SCAN_ID))
    except IntegrityError:
        pass  # another process made it meanwhile
    found = session.get(FleetScan, SCAN_ID)
    assert found is not None
    return found


def claim_scan(*, session: Session, worker: str, now: datetime, stale_before: datetime) -> bool:
    """Become the one scanning: nobody is, or the one who was started before
    ``stale_before`` (it died). True for the one winner."""
    statement = (
        update(FleetScan)
        .where(
            col(FleetScan.id) == SCAN_ID,
            col(FleetScan.running_by).is_(None) | (col(FleetScan.running_since) < stale_before),
        )
        .values(running_by=worker, running_since=now)
    )
    return _rowcount(session.execute(statement)) == 1


def finish_scan(
    *,
    session: Session,
    worker: str,
    started_at: datetime,
    finished_at: datetime,
    failures: list[str],
    images: Sequence[FleetImage],
    scanned_targets: Sequence[tuple[str, str]],
) -> bool:
    """Store what the scan saw and free the claim, only if ``worker`` still holds it. The
    rows of every (account, region) it read are replaced; those it could not read are kept."""
    statement = (
        update(FleetScan)
        .where(col(FleetScan.id) == SCAN_ID, col(FleetScan.running_by) == worker)
        .values(
            running_by=None,
            running_since=None,
            started_at=started_at,
            finished_at=finished_at,
            failures=failures,
        )
    )
    if _rowcount(session.execute(statement)) != 1:
        return False
    for account_id, region in scanned_targets:
        session.execute(
            delete(FleetImage).where(
                col(FleetImage.account_id) == account_id, col(FleetImage.region) == region
            )
        )
    session.add_all(images)
    session.flush()
    return True


def release_scan(*, session: Session, worker: str) -> None:
    """Give the claim back (the scan failed as a whole)."""
    session.execute(
        update(FleetScan)
        .where(col(FleetScan.id) == SCAN_ID, col(FleetScan.running_by) == worker)
        .values(running_by=None, running_since=None)
    )


def images(*, session: Session, region: str | None = None) -> list[FleetImage]:
    query = select(FleetImage)
    if region is not None:
        query = query.where(FleetImage.region == region)
    return list(
        session.exec(
            query.order_by(
                col(FleetImage.account_id),
                col(FleetImage.region),
                col(FleetImage.name),
                col(FleetImage.image_id),
            )
        )
    )
