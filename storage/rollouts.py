"""Rollout queries. Like storage.crud: keyword-only, flush and never commit, and every move a
compare-and-set, so of two clicks or two processes exactly one wins each step."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from storage.crud import _rowcount
from storage.models import Rollout, RolloutState, RolloutStep, StepState, utcnow


def get(*, session: Session, rollout_id: str) -> Rollout | None:
    return session.get(Rollout, rollout_id)


def create(*, session: Session, rollout: Rollout) -> bool:
    """Insert the rollout unless it exists: True for the one inserter."""
    try:
        with session.begin_nested():
            session.add(rollout)
    except IntegrityError:
        return False
    return True


def set_rollout(
    *,
    session: Session,
    rollout_id: str,
    where: dict[str, Any] | None = None,
    states: Iterable[RolloutState] | None = None,
    **values: Any,
) -> bool:
    """Compare-and-set: change ``values`` only where the columns in ``where`` hold those values
    (None: IS NULL) and the state is one of ``states``; True when the row changed."""
    statement = update(Rollout).where(col(Rollout.id) == rollout_id)
    for name, value in (where or {}).items():
        column = col(getattr(Rollout, name))
        statement = statement.where(column.is_(None) if value is None else column == value)
    if states is not None:
        statement = statement.where(col(Rollout.state).in_([s.value for s in states]))
    statement = statement.values(updated_at=utcnow(), **values)
    return _rowcount(session.execute(statement)) == 1


def in_states(*, session: Session, states: Iterable[RolloutState]) -> list[Rollout]:
    query = select(Rollout).where(col(Rollout.state).in_([s.value for s in states]))
    return list(session.exec(query.order_by(col(Rollout.created_at))))


def recent(*, session: Session, limit: int) -> list[Rollout]:
    query = select(Rollout).order_by(col(Rollout.updated_at).desc()).limit(limit)
    return list(session.exec(query))


def add_steps(*, session: Session, steps: Sequence[RolloutStep]) -> int:
    """Insert the steps a rollout does not have yet (the unique key keeps one of each)."""
    added = 0
    for step in steps:
        exists = session.exec(
            select(RolloutStep.id).where(
                RolloutStep.rollout_id == step.rollout_id,
                RolloutStep.kind == step.kind,
                RolloutStep.target == step.target,
            )
        ).first()
        if exists is not None:
            continue
        try:
            with session.begin_nested():
                session.add(step)
        except IntegrityError:
            continue
        added += 1
    return added


def steps(
    *,
    session: Session,
    rollout_id: str,
    kind: str | None = None,
    states: Iterable[StepState] | None = None,
) -> list[RolloutStep]:
    query = select(RolloutStep).where(RolloutStep.rollout_id == rollout_id)
    if kind is not None:
        query = query.where(RolloutStep.kind == kind)
    if states is not None:
        query = query.where(col(RolloutStep.state).in_([s.value for s in states]))
    return list(session.exec(query.order_by(col(RolloutStep.id))))


def move_step(
    *,
    session: Session,
    step_id: int,
    from_states: Iterable[StepState],
    to: StepState,
    held_by: str | None = None,
    claimed_before: datetime | None = None,
    **values: Any,
) -> bool:
    """Compare-and-set one step; with ``held_by`` it must still be claimed by that process,
    with ``claimed_before`` claimed before then (how a taker-over wins an orphan once)."""
    statement = update(RolloutStep).where(
        col(RolloutStep.id) == step_id,
        col(RolloutStep.state).in_([s.value for s in from_states]),
    )
    if held_by is not None:
        statement = statement.where(col(RolloutStep.claimed_by) == held_by)
    if claimed_before is not None:
        statement = statement.where(col(RolloutStep.claimed_at) < claimed_before)
    statement = statement.values(state=to.value, updated_at=utcnow(), **values)
    return _rowcount(session.execute(statement)) == 1


def note_steps(*, session: Session, notes: dict[int, str | None]) -> None:
    """Set the ``detail`` of waiting steps (why a WorkSpace is not rebuilt yet)."""
    for step_id, detail in notes.items():
        session.execute(
            update(RolloutStep)
            .where(
                col(RolloutStep.id) == step_id,
                col(RolloutStep.state) == StepState.waiting.value,
            )
            .values(detail=detail[:512] if detail else None)
        )
