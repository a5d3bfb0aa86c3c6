"""The fleet snapshot's queries: the scan's single-flight claim (compare-and-set on its one
row), the image rows it writes, and what a listing reads of them. Flush, never commit: the
caller's unit of work does.

A fleet holds thousands of images, so the scan writes its rows as plain rows, 1,000 to an
executemany, as AWS's pages come, and a listing reads only the images with an update (as plain
rows, not ORM objects), counts the rest in SQL and records their sightings in two statements:
loading and flushing 10,000 ORM objects cost seconds and tens of megabytes (wsimg bench)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Row, delete, distinct, func, literal, true, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from storage.crud import _insert, _rowcount
from storage.models import FleetImage, FleetScan, Sighting

SCAN_ID = "fleet"
INSERT_CHUNK = 1000  # rows per executemany: the plain rows of one chunk at a time in memory
FLEET_IMAGE = FleetImage.__table__  # type: ignore[attr-defined]  # SQLModel sets it
# What a listing reads of an image: named as bot/aws/gateway.py's Image fields are.
IMAGE_FIELDS = (
    "account_id",
    "region",
    "image_id",
    "name",
    "description",
    "state",
    "platform",
    "update_available",
    "update_description",
    "created",
)


def last_scan(*, session: Session) -> FleetScan | None:
    """The scan's row, if any scan was ever asked for (read only)."""
    return session.get(FleetScan, SCAN_ID)


def scan_row(*, session: Session) -> FleetScan:
    """The scan's row, created the first time it is asked for."""
    found = last_scan(session=session)
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


def stored_images(*, session: Session) -> dict[str, tuple[Any, ...]]:
    """Every stored image's ``IMAGE_FIELDS``, by image key: what a scan compares its own
    sightings with, to write only the images that changed."""
    query = select(FLEET_IMAGE.c.image_key, *(FLEET_IMAGE.c[name] for name in IMAGE_FIELDS))
    return {key: tuple(values) for key, *values in session.execute(query)}


def store_images(*, session: Session, worker: str, images: Sequence[Mapping[str, Any]]) -> bool:
    """Store images the running scan has seen (inserted, or replacing the row of the same
    image), only if ``worker`` still holds the claim; False, and nothing stored, if not.
    ``images``: plain rows of every FleetImage column (a SQLModel object costs about 0.2 ms
    and 2.4 KB to build, 10,000 of them seconds and 24 MB)."""
    held = session.execute(select(FleetScan.running_by).where(col(FleetScan.id) == SCAN_ID))
    if held.scalar_one_or_none() != worker:
        return False
    statement = _insert(session, FleetImage)
    statement = statement.on_conflict_do_update(
        index_elements=["image_key"],
        set_={
            c.name: statement.excluded[c.name] for c in FLEET_IMAGE.columns if c.name != "image_key"
        },
    )
    for start in range(0, len(images), INSERT_CHUNK):
        session.execute(statement, list(images[start : start + INSERT_CHUNK]))
    return True


def finish_scan(
    *,
    session: Session,
    worker: str,
    started_at: datetime,
    finished_at: datetime,
    failures: list[str],
    gone: Sequence[str],
) -> bool:
    """End the scan that began at ``started_at`` and free the claim, only if ``worker`` still
    holds it; ``gone``: the keys of the stored images it found no longer there."""
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
    for start in range(0, len(gone), INSERT_CHUNK):
        chunk = gone[start : start + INSERT_CHUNK]
        session.execute(delete(FleetImage).where(col(FleetImage.image_key).in_(chunk)))
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


def _in(region: str | None) -> ColumnElement[bool]:
    return true() if region is None else col(FleetImage.region) == region


def updates(*, session: Session, region: str | None = None) -> Sequence[Row[Any]]:
    """The images with an update available (in ``region``), as plain rows of
    ``IMAGE_FIELDS``, in the order listings show them."""
    query = (
        select(*(FLEET_IMAGE.c[name] for name in IMAGE_FIELDS))
        .where(col(FleetImage.update_available).is_(True), _in(region))
        .order_by(
            col(FleetImage.account_id),
            col(FleetImage.region),
            col(FleetImage.name),
            col(FleetImage.image_id),
        )
    )
    return session.execute(query).all()


def update_totals(*, session: Session) -> tuple[int, int]:
    """How many stored images have an update available, and in how many regions."""
    query = select(func.count(), func.count(distinct(col(FleetImage.region)))).where(
        col(FleetImage.update_available).is_(True)
    )
    images, regions = session.execute(query).one()
    return int(images), int(regions)


def image_counts(*, session: Session, region: str | None = None) -> dict[str, int]:
    """How many images each account owns per region ("account:region" -> count)."""
    query = (
        select(FleetImage.account_id, FleetImage.region, func.count())
        .where(_in(region))
        .group_by(col(FleetImage.account_id), col(FleetImage.region))
    )
    return {f"{account}:{where}": count for account, where, count in session.execute(query)}


def record_sightings(*, session: Session, now: datetime, region: str | None = None) -> None:
    """For the images the last scan saw (in ``region``): each update available is remembered
    from when it was first seen (``now`` the first time, its last sighting moved to ``now``),
    and the images that are current are forgotten."""
    stamp = literal(now, type_=Sighting.__table__.c.first_seen_at.type)  # type: ignore[attr-defined]
    waiting = select(FleetImage.image_key, stamp, stamp).where(
        col(FleetImage.update_available).is_(True), _in(region)
    )
    # The SELECT has a WHERE clause, so SQLite reads ON CONFLICT as the upsert's, not a join's.
    statement = _insert(session, Sighting).from_select(
        ["image_key", "first_seen_at", "last_seen_at"], waiting
    )
    session.execute(
        statement.on_conflict_do_update(index_elements=["image_key"], set_={"last_seen_at": now})
    )
    current = select(FleetImage.image_key).where(
        col(FleetImage.update_available).is_(False), _in(region)
    )
    session.execute(delete(Sighting).where(col(Sighting.image_key).in_(current)))


def first_seen(*, session: Session, image_keys: Sequence[str]) -> dict[str, datetime]:
    """When each of these images' update was first seen (those wsimg has a sighting of)."""
    keys = set(image_keys)
    if not keys:
        return {}
    query = select(Sighting.image_key, Sighting.first_seen_at).where(
        col(Sighting.image_key).in_(keys)
    )
    return {key: seen for key, seen in session.execute(query)}
