"""A listing's offers written in bulk. A `/wsimg updates` over a fleet of thousands stores
hundreds of offers, and a digest thousands: built as SQLModel objects and flushed by the ORM's
unit of work they cost a few tenths of a millisecond each (pydantic's defaults, the identity
map, the flush plan), the better part of the listing's time; as plain rows in one executemany,
about 20 microseconds.
Flush, never commit: the caller's unit of work does."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import insert
from sqlmodel import Session

from storage.models import Offer

OFFERS = Offer.__table__  # type: ignore[attr-defined]  # SQLModel sets it on table models


def add_offers(*, session: Session, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert offers given as column → value rows (every column but ``id``, which the
    database numbers, and ``withdrawn_reason``)."""
    if rows:
        session.execute(insert(OFFERS), list(rows))
